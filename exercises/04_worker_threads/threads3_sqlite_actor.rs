// threads3_sqlite_actor: one owner thread, many callers
//
// A `rusqlite::Connection` is `Send` but not `Sync`: it may move to another thread, but two
// threads must never use it at once. The actor pattern gives it one owner: a thread that holds
// the connection and handles commands from a channel, one at a time. A caller sends a command
// that carries a `oneshot::Sender` for the answer, then awaits the answer. No locks, no
// sharing, and the thread ends when the last handle is dropped. Erlang processes and Akka
// actors work this way.
//
// Why it matters: this is how a synchronous resource (SQLite, a C library, a device) sits
// behind an async service. The callers must cope with the actor going away: a crashed or
// stopped actor must give them an error, not a panic and not a request that waits forever.
//
// Production caveat: a caller that stops waiting does not cancel its command. If a timeout
// drops the answer's receiver after the command was queued, the actor still runs the statement
// (the write lands) and only its `reply.send` fails. Check the outcome before you retry a write.
//
// What to do: write `Db::request`, the round trip that `put` and `get` use. Run
// `backlings hint` if you are stuck.

use rusqlite::{Connection, OptionalExtension, params};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Where the actor sends its one answer to a command.
pub type Reply<T> = oneshot::Sender<rusqlite::Result<T>>;

pub enum Command {
    Put {
        key: String,
        value: String,
        reply: Reply<()>,
    },
    Get {
        key: String,
        reply: Reply<Option<String>>,
    },
}

#[derive(Debug)]
pub enum DbError {
    /// The actor is gone: its mailbox is closed, or it dropped the command without answering.
    ActorGone,
    /// The actor ran the statement, and SQLite refused it.
    Sql(rusqlite::Error),
}

/// The owner of the connection: runs until every `Db` handle is dropped. Values are bound as
/// parameters (`?1`), never pasted into the SQL text.
fn actor_loop(conn: Connection, mut commands: mpsc::Receiver<Command>) {
    while let Some(command) = commands.blocking_recv() {
        // A failed `send` means the caller gave up waiting: nothing to do about it here.
        match command {
            Command::Put { key, value, reply } => {
                let sql = "INSERT INTO kv (key, value) VALUES (?1, ?2)
                           ON CONFLICT (key) DO UPDATE SET value = excluded.value";
                let _ = reply.send(conn.execute(sql, params![key, value]).map(|_| ()));
            }
            Command::Get { key, reply } => {
                let sql = "SELECT value FROM kv WHERE key = ?1";
                let _ = reply.send(conn.query_row(sql, [key], |r| r.get(0)).optional());
            }
        }
    }
}

/// A cheap, cloneable handle to the actor.
#[derive(Clone)]
pub struct Db {
    commands: mpsc::Sender<Command>,
}

/// Starts the actor thread with an in-memory database.
pub fn start() -> rusqlite::Result<(Db, JoinHandle<()>)> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")?;
    let (tx, rx) = mpsc::channel(64);
    let thread = std::thread::spawn(move || actor_loop(conn, rx));
    Ok((Db::new(tx), thread))
}

impl Db {
    /// A handle on whatever owns the other end of `commands`.
    pub fn new(commands: mpsc::Sender<Command>) -> Self {
        Db { commands }
    }

    /// The round trip: `command` wraps a fresh reply sender into a `Command`; send it to the
    /// actor, then await its answer.
    async fn request<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, DbError> {
        // TODO: the round trip. Make a reply channel, send `command(reply)` to the actor, and
        // await the answer. An actor that is gone (its mailbox is closed, or it dropped the
        // command unanswered) is `DbError::ActorGone`; SQLite's own error is `DbError::Sql`.
        todo!("the round trip to the actor")
    }

    pub async fn put(&self, key: &str, value: &str) -> Result<(), DbError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.request(|reply| Command::Put { key, value, reply })
            .await
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, DbError> {
        let key = key.to_string();
        self.request(|reply| Command::Get { key, reply }).await
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    const LIMIT: Duration = Duration::from_secs(2);

    async fn get(db: &Db, key: &str) -> Option<String> {
        let got = timeout(LIMIT, db.get(key))
            .await
            .expect("get never answered");
        got.unwrap_or_else(|e| panic!("get({key:?}) failed: {e:?}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_tasks_write_and_read_through_one_connection() {
        let (db, _thread) = start().unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.put(&format!("k{i}"), &format!("v{i}")).await.unwrap();
                    db.get(&format!("k{i}")).await.unwrap()
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let got = timeout(LIMIT, task)
                .await
                .expect("every task gets its answer");
            assert_eq!(
                got.unwrap(),
                Some(format!("v{i}")),
                "k{i} must read back v{i}"
            );
        }
        assert_eq!(get(&db, "k7").await, Some("v7".into()), "expected k7 = v7");
    }

    #[tokio::test]
    async fn quotes_in_keys_and_values_are_data_not_sql() {
        let (db, _thread) = start().unwrap();
        let pairs = [
            ("O'Brien", "it's \"quoted\""),
            ("x'); DROP TABLE kv; --", "still 'here'"),
        ];
        for (key, value) in pairs {
            timeout(LIMIT, db.put(key, value)).await.unwrap().unwrap();
        }
        for (key, value) in pairs {
            assert_eq!(
                get(&db, key).await,
                Some(value.into()),
                "expected {key:?} = {value:?}"
            );
        }
        assert_eq!(get(&db, "O'Brie").await, None, "a missing key is Ok(None)");
        assert_eq!(get(&db, "nobody").await, None, "a missing key is Ok(None)");
    }

    #[tokio::test]
    async fn a_put_overwrites() {
        let (db, _thread) = start().unwrap();
        db.put("a", "1").await.unwrap();
        db.put("a", "2").await.unwrap();
        assert_eq!(
            get(&db, "a").await,
            Some("2".into()),
            "expected the newer value, 2"
        );
    }

    #[tokio::test]
    async fn dropping_every_handle_ends_the_thread() {
        let (db, thread) = start().unwrap();
        let other = db.clone();
        drop(db);
        drop(other);
        let (done, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(thread.join().is_ok());
        });
        assert_eq!(
            ended.recv_timeout(LIMIT),
            Ok(true),
            "the actor thread must end cleanly once no handle is left"
        );
    }

    // The tests below play the actor themselves, as a task on the runtime, through `Db::new`.

    type Task = tokio::task::JoinHandle<Result<Option<String>, DbError>>;

    /// Runs `db.get(key)` as its own task, so that a panic in it can be reported.
    fn spawn_get(db: &Db, key: &str) -> Task {
        let (db, key) = (db.clone(), key.to_string());
        tokio::spawn(async move { db.get(&key).await })
    }

    async fn outcome(task: Task) -> String {
        match timeout(LIMIT, task).await {
            Err(_) => "no answer: the caller waits forever".into(),
            Ok(Err(e)) if e.is_panic() => "a panic in the caller".into(),
            Ok(joined) => format!("{:?}", joined.unwrap()),
        }
    }

    /// The next command in the mailbox, which must be a `Get`.
    async fn next_get(
        mailbox: &mut mpsc::Receiver<Command>,
    ) -> Option<(String, Reply<Option<String>>)> {
        match timeout(LIMIT, mailbox.recv()).await {
            Ok(Some(Command::Get { key, reply })) => Some((key, reply)),
            _ => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_answer_comes_back_on_the_reply_channel() {
        let (tx, mut mailbox) = mpsc::channel(4);
        let db = Db::new(tx);
        for (key, value) in [("k1", "from the actor"), ("k2", "again")] {
            let task = spawn_get(&db, key);
            let (got, reply) = next_get(&mut mailbox)
                .await
                .expect("expected a Command::Get in the mailbox");
            assert_eq!(got, key, "the command must carry the key {key:?}");
            let _ = reply.send(Ok(Some(value.into())));
            let want = format!("Ok(Some({value:?}))");
            assert_eq!(
                outcome(task).await,
                want,
                "expected the actor's answer, {want}"
            );
        }
        let task = spawn_get(&db, "bad");
        let (_, reply) = next_get(&mut mailbox)
            .await
            .expect("expected a Command::Get in the mailbox");
        let _ = reply.send(Err(rusqlite::Error::InvalidQuery));
        assert_eq!(
            outcome(task).await,
            "Err(Sql(InvalidQuery))",
            "an error from SQLite reaches the caller as DbError::Sql"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_gone_actor_is_an_error_not_a_hang_or_a_panic() {
        let (tx, mut mailbox) = mpsc::channel(4);
        let db = Db::new(tx);
        // The actor takes the command, then goes away without answering.
        let task = spawn_get(&db, "k");
        let command = next_get(&mut mailbox).await;
        drop((command, mailbox));
        assert_eq!(
            outcome(task).await,
            "Err(ActorGone)",
            "an actor that drops the command unanswered: expected Err(ActorGone)"
        );
        // Its mailbox is closed now: the next request cannot even be sent.
        assert_eq!(
            outcome(spawn_get(&db, "k")).await,
            "Err(ActorGone)",
            "an actor whose mailbox is closed: expected Err(ActorGone)"
        );
    }

    #[tokio::test]
    async fn an_actor_thread_that_ends_early_gives_an_error() {
        let (tx, mut mailbox) = mpsc::channel(4);
        let db = Db::new(tx);
        // A real actor thread that takes one command and ends without answering it.
        let actor = std::thread::spawn(move || drop(mailbox.blocking_recv()));
        assert_eq!(
            outcome(spawn_get(&db, "k")).await,
            "Err(ActorGone)",
            "the actor thread ended without answering: expected Err(ActorGone)"
        );
        actor.join().unwrap();
        assert_eq!(
            outcome(spawn_get(&db, "k")).await,
            "Err(ActorGone)",
            "the actor thread is gone: expected Err(ActorGone)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_mailbox_makes_callers_wait_not_fail() {
        let (tx, mut mailbox) = mpsc::channel(1);
        let db = Db::new(tx);
        let first = spawn_get(&db, "a");
        let second = spawn_get(&db, "b");
        // Let both callers run until they wait: the first command fills the mailbox.
        tokio::time::sleep(Duration::from_millis(1)).await;
        while let Some((key, reply)) = next_get(&mut mailbox).await {
            let _ = reply.send(Ok(Some(key.to_uppercase())));
        }
        assert_eq!(
            outcome(first).await,
            "Ok(Some(\"A\"))",
            "expected the first caller's answer"
        );
        assert_eq!(
            outcome(second).await,
            "Ok(Some(\"B\"))",
            "the second caller found the mailbox full: it must wait for room (send().await), not fail"
        );
    }
}
