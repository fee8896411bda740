// mutant: no .optional(): a missing key becomes Err(QueryReturnedNoRows); the test expects Ok(None)
// threads3_sqlite_actor: one owner thread, many callers
//
// A `rusqlite::Connection` is `Send` but not `Sync`: it can move to another thread, but two
// threads must never use it at once. The actor pattern gives it one owner: a thread that
// holds the connection and handles commands from a channel, one at a time. Callers send a
// command with a `oneshot` sender for the reply and await the answer. No locks, no sharing,
// and the thread ends when the last handle is dropped.
//
// Why it matters: this is how you put a synchronous resource (SQLite, a C library, a
// hardware device) behind an async service. Erlang processes and Akka actors work this way.
//
// What to do: in `actor_loop`, handle `Command::Get`: read the value for the key and send it
// back on the reply channel. Run `backlings hint` if you are stuck.

use rusqlite::{Connection, OptionalExtension, params};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

pub enum Command {
    Put {
        key: String,
        value: String,
        reply: oneshot::Sender<rusqlite::Result<()>>,
    },
    Get {
        key: String,
        reply: oneshot::Sender<rusqlite::Result<Option<String>>>,
    },
}

/// The owner of the connection: runs until every `Db` handle is dropped.
fn actor_loop(conn: Connection, mut commands: mpsc::Receiver<Command>) {
    while let Some(command) = commands.blocking_recv() {
        match command {
            Command::Put { key, value, reply } => {
                let done = conn
                    .execute(
                        "INSERT INTO kv (key, value) VALUES (?1, ?2)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        params![key, value],
                    )
                    .map(|_| ());
                let _ = reply.send(done);
            }
            Command::Get { key, reply } => {
                // The caller may have given up; a failed send is not the actor's problem.
                let found = conn
                    .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
                    .map(Some);
                let _ = reply.send(found);
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
    Ok((Db { commands: tx }, thread))
}

impl Db {
    pub async fn put(&self, key: &str, value: &str) -> rusqlite::Result<()> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Put {
            key: key.into(),
            value: value.into(),
            reply,
        };
        self.commands
            .send(command)
            .await
            .expect("the actor is gone");
        answer.await.expect("the actor dropped the reply")
    }

    pub async fn get(&self, key: &str) -> rusqlite::Result<Option<String>> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Get {
            key: key.into(),
            reply,
        };
        self.commands
            .send(command)
            .await
            .expect("the actor is gone");
        answer.await.expect("the actor dropped the reply")
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    const LIMIT: Duration = Duration::from_secs(5);

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
                .expect("every task gets its answer")
                .unwrap();
            assert_eq!(got, Some(format!("v{i}")), "k{i} must read back v{i}");
        }
        assert_eq!(
            timeout(LIMIT, db.get("k7")).await.unwrap().unwrap(),
            Some("v7".into()),
            "expected v7"
        );
        assert_eq!(
            timeout(LIMIT, db.get("nope")).await.unwrap().unwrap(),
            None,
            "a missing key is None"
        );
    }

    #[tokio::test]
    async fn a_put_overwrites() {
        let (db, _thread) = start().unwrap();
        db.put("a", "1").await.unwrap();
        db.put("a", "2").await.unwrap();
        assert_eq!(
            timeout(LIMIT, db.get("a")).await.unwrap().unwrap(),
            Some("2".into()),
            "expected the newer value"
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
        let ended = ended.recv_timeout(Duration::from_secs(5));
        assert_eq!(
            ended,
            Ok(true),
            "the actor thread must end cleanly once no handle is left"
        );
    }
}
