// pg3_isolation_levels: write skew, and SERIALIZABLE with a retry
//
// The hospital's rule: at least one doctor stays on call. `go_off_call` checks it (count the
// doctors on call) and then takes one doctor off call. Alice and Bob, both on call, ask at the
// same moment. At REPEATABLE READ each transaction reads its own snapshot: both count 2, both
// update a *different* row, so no row lock ever conflicts, both commit, and nobody is on call.
// That anomaly is write skew. Of the isolation levels only SERIALIZABLE prevents it (explicit
// locks on the rows read are the manual's alternative, 13.4): PostgreSQL then tracks what each
// transaction read, and fails one of the two with SQLSTATE 40001 (`serialization_failure`).
// Retrying that transaction from BEGIN reads the other's commit: one doctor is left, and the
// retry refuses.
//
// Why it matters: a booking service checked "seats left > 0" and inserted a booking, at
// PostgreSQL's default READ COMMITTED. Under load two requests both saw one seat left, and the
// flight was overbooked every Friday. The check and the write were right; the isolation was not.
//
// Production caveat: SERIALIZABLE may fail transactions that did not really conflict. Predicate
// locks are taken per tuple, page or whole relation (a sequential scan locks the relation), so
// "applications using this level must be prepared to retry transactions due to serialization
// failures" (PostgreSQL manual, 13.2.3). Retry the whole transaction, a bounded number of
// times, and never act on what a failed attempt read.
//
// What to do: run each attempt at `IsolationLevel::Serializable`, and in `go_off_call` retry
// an attempt that failed with `SqlState::T_R_SERIALIZATION_FAILURE`, at most `MAX_TRIES` tries.
// Run `backlings hint` if you are stuck.

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, IsolationLevel};

pub const MAX_TRIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum OffCallError {
    #[error("the last doctor on call must stay on call")]
    LastOnCall,
    #[error("still a serialization failure after {MAX_TRIES} tries")]
    TooManyRetries,
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
}

pub async fn create_schema(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute("CREATE TABLE doctors (name TEXT PRIMARY KEY, on_call BOOLEAN NOT NULL)")
        .await
}

fn is_serialization_failure(e: &OffCallError) -> bool {
    matches!(e, OffCallError::Db(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE))
}

/// One attempt, in one transaction. `after_read(attempt)` runs right after the check (the
/// tests run the other session from there).
async fn attempt_off_call(
    client: &mut Client,
    name: &str,
    attempt: u32,
    after_read: &mut impl AsyncFnMut(u32),
) -> Result<(), OffCallError> {
    // TODO: REPEATABLE READ lets two of these commit a write skew. Which level does not?
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .await?;
    let on_call: i64 = tx
        .query_one("SELECT count(*) FROM doctors WHERE on_call", &[])
        .await?
        .get(0);
    after_read(attempt).await;
    if on_call < 2 {
        return Err(OffCallError::LastOnCall);
    }
    tx.execute(
        "UPDATE doctors SET on_call = false WHERE name = $1",
        &[&name],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Takes `name` off call, unless that would leave nobody on call.
pub async fn go_off_call(
    client: &mut Client,
    name: &str,
    after_read: &mut impl AsyncFnMut(u32),
) -> Result<(), OffCallError> {
    // TODO: retry an attempt that fails with a serialization failure (40001) from BEGIN, at
    // most MAX_TRIES tries, and return TooManyRetries when they are used up.
    attempt_off_call(client, name, 1, after_read).await
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio_postgres::NoTls;

    /// Polls of pg_stat_activity before a wait is declared stuck (no sleeps, no timing).
    const POLLS: usize = 2000;

    async fn connect(db: &str) -> Client {
        let host = std::env::var("PGHOST").expect("PGHOST: run this through backlings");
        let port = std::env::var("PGPORT").map_or(5432, |p| p.parse().unwrap());
        let user = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
        let (client, conn) = tokio_postgres::Config::new()
            .host_path(&host)
            .port(port)
            .user(&user)
            .dbname(db)
            .connect(NoTls)
            .await
            .expect("connect to the throwaway PostgreSQL");
        tokio::spawn(conn);
        client
    }

    /// A database of its own for each test, with `doctors` and their on-call flags.
    struct TestDb {
        admin: Client,
        name: String,
    }

    impl TestDb {
        async fn new(doctors: &[(&str, bool)]) -> TestDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("t_pg3_{}_{n}", std::process::id());
            let admin = connect("postgres").await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let db = TestDb { admin, name };
            let c = db.session().await;
            create_schema(&c).await.unwrap();
            for (d, on) in doctors {
                c.execute("INSERT INTO doctors VALUES ($1, $2)", &[d, on])
                    .await
                    .unwrap();
            }
            db
        }

        async fn session(&self) -> Client {
            connect(&self.name).await
        }

        async fn drop(self) {
            let sql = format!("DROP DATABASE {} WITH (FORCE)", self.name);
            self.admin.batch_execute(&sql).await.unwrap();
        }
    }

    async fn on_call(c: &Client) -> Vec<String> {
        let rows = c
            .query("SELECT name FROM doctors WHERE on_call ORDER BY name", &[])
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    async fn pid(c: &Client) -> i32 {
        c.query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Waits until `ready()` or until backend `pid` waits on a lock, polling pg_stat_activity.
    async fn wait_for(monitor: &Client, pid: i32, what: &str, ready: impl Fn() -> bool) {
        for _ in 0..POLLS {
            if ready() {
                return;
            }
            let row = monitor
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
                    &[&pid],
                )
                .await
                .unwrap();
            if row.get::<_, i64>(0) == 1 {
                return;
            }
        }
        panic!("waited {POLLS} polls for {what}: it never came");
    }

    /// Backend `pid` holds SIRead (predicate) locks: only a read at SERIALIZABLE takes them.
    async fn assert_predicate_locks(monitor: &Client, pid: i32, who: &str) {
        let sql = "SELECT count(*) FROM pg_locks WHERE pid = $1 AND mode = 'SIReadLock'";
        let n: i64 = monitor.query_one(sql, &[&pid]).await.unwrap().get(0);
        assert!(
            n > 0,
            "after its read, {who}'s transaction must hold SIReadLock predicate locks (pg_locks), \
             which only SERIALIZABLE takes: got {n}"
        );
    }

    fn guard<F: Future>(f: F) -> tokio::time::Timeout<F> {
        tokio::time::timeout(Duration::from_secs(20), f)
    }

    /// Why REPEATABLE READ is not enough: both checks pass on their snapshots, both commit.
    #[tokio::test]
    async fn write_skew_commits_at_repeatable_read() {
        let db = TestDb::new(&[("alice", true), ("bob", true)]).await;
        let (a, b) = (db.session().await, db.session().await);
        for c in [&a, &b] {
            c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                .await
                .unwrap();
            let n: i64 = c
                .query_one("SELECT count(*) FROM doctors WHERE on_call", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(n, 2, "each snapshot sees two doctors on call");
        }
        let off = "UPDATE doctors SET on_call = false WHERE name = $1";
        a.execute(off, &[&"alice"]).await.unwrap();
        b.execute(off, &[&"bob"]).await.unwrap();
        a.batch_execute("COMMIT").await.unwrap();
        b.batch_execute("COMMIT")
            .await
            .expect("REPEATABLE READ lets the write skew commit");
        assert_eq!(on_call(&a).await, Vec::<String>::new(), "nobody on call");
        db.drop().await;
    }

    /// What two racing sessions share: who has read, who is done, each one's attempts.
    struct Race<'a> {
        monitor: &'a Client,
        pids: [i32; 2],
        read: [Cell<bool>; 2],
        done: [Cell<bool>; 2],
        tries: [RefCell<Vec<u32>>; 2],
    }

    /// Session `i` runs `go_off_call`; after its read it waits until the other has read too (or
    /// waits on a lock, or is done); a retry waits until the other has finished.
    async fn session(
        race: &Race<'_>,
        i: usize,
        client: &mut Client,
        name: &str,
    ) -> Result<(), OffCallError> {
        let o = 1 - i;
        let mut hook = async |attempt: u32| {
            assert_predicate_locks(race.monitor, race.pids[i], name).await;
            race.tries[i].borrow_mut().push(attempt);
            race.read[i].set(true);
            let (what, read_is_enough) = match attempt {
                1 => ("the other session's read", true),
                _ => ("the other session's end", false),
            };
            wait_for(race.monitor, race.pids[o], what, || {
                (read_is_enough && race.read[o].get()) || race.done[o].get()
            })
            .await;
        };
        let res = go_off_call(client, name, &mut hook).await;
        race.done[i].set(true);
        res
    }

    #[tokio::test]
    async fn serializable_prevents_write_skew_and_the_retry_refuses() {
        type Doctors = &'static [(&'static str, bool)];
        let cases: [(Doctors, [&str; 2]); 2] = [
            (&[("alice", true), ("bob", true)], ["alice", "bob"]),
            (
                &[("carol", true), ("dave", false), ("erin", true)],
                ["erin", "carol"],
            ),
        ];
        for (doctors, pair) in cases {
            let db = TestDb::new(doctors).await;
            let monitor = db.session().await;
            let (mut c0, mut c1) = (db.session().await, db.session().await);
            let race = Race {
                monitor: &monitor,
                pids: [pid(&c0).await, pid(&c1).await],
                read: Default::default(),
                done: Default::default(),
                tries: Default::default(),
            };
            let both = futures::future::join(
                session(&race, 0, &mut c0, pair[0]),
                session(&race, 1, &mut c1, pair[1]),
            );
            let (r0, r1) = guard(both).await.expect("both sessions finish");
            let results = [&r0, &r1];
            let Some(w) = results.iter().position(|r| r.is_ok()) else {
                panic!("one of {pair:?} must go off call: got {r0:?} and {r1:?}");
            };
            let l = 1 - w;
            assert!(
                matches!(results[l], Err(OffCallError::LastOnCall)),
                "{} must be refused after its retry (LastOnCall), got {:?}: at SERIALIZABLE one \
                 of the two fails with 40001, and its retry sees the other's commit",
                pair[l],
                results[l]
            );
            assert_eq!(
                on_call(&monitor).await,
                vec![pair[l].to_string()],
                "exactly one of {pair:?} stays on call (no write skew)"
            );
            assert_eq!(
                *race.tries[w].borrow(),
                vec![1],
                "{} succeeds at once",
                pair[w]
            );
            // A retry that read before the winner's commit landed can fail once more.
            let tries = race.tries[l].borrow().clone();
            let retried: Vec<u32> = (1..=tries.len() as u32).collect();
            assert!(
                tries.len() >= 2 && tries == retried,
                "{} fails with 40001, then retries from BEGIN (attempts 1, 2, ...): {tries:?}",
                pair[l]
            );
            drop(race);
            db.drop().await;
        }
    }

    /// On each of its first `conflicts` attempts, right after the read, another SERIALIZABLE
    /// transaction reads the same rows and writes one `name` read: `name` then fails with 40001.
    async fn off_call_with_conflicts(
        db: &TestDb,
        name: &str,
        conflicts: u32,
    ) -> (Result<(), OffCallError>, Vec<u32>) {
        let (mut me, other) = (db.session().await, db.session().await);
        let my_pid = pid(&me).await;
        let mut tries = vec![];
        let mut hook = async |attempt: u32| {
            assert_predicate_locks(&other, my_pid, name).await;
            tries.push(attempt);
            if attempt <= conflicts {
                other
                    .batch_execute(
                        "BEGIN ISOLATION LEVEL SERIALIZABLE;
                         SELECT count(*) FROM doctors WHERE on_call;
                         UPDATE doctors SET on_call = on_call WHERE name = 'zed';
                         COMMIT;",
                    )
                    .await
                    .unwrap();
            }
        };
        let res = guard(go_off_call(&mut me, name, &mut hook))
            .await
            .expect("go_off_call finishes");
        (res, tries)
    }

    #[tokio::test]
    async fn a_serialization_failure_is_retried_until_it_succeeds() {
        for (name, conflicts) in [("amy", 1), ("ben", 2)] {
            let db = TestDb::new(&[("amy", true), ("ben", true), ("zed", true)]).await;
            let (res, tries) = off_call_with_conflicts(&db, name, conflicts).await;
            assert!(
                res.is_ok(),
                "after {conflicts} serialization failure(s) the next try succeeds: got {res:?}"
            );
            let expected: Vec<u32> = (1..=conflicts + 1).collect();
            assert_eq!(tries, expected, "one attempt per try, counted from 1");
            let mut left = vec!["amy", "ben", "zed"];
            left.retain(|d| *d != name);
            assert_eq!(on_call(&db.session().await).await, left);
            db.drop().await;
        }
    }

    #[tokio::test]
    async fn the_retry_is_bounded() {
        assert_eq!(MAX_TRIES, 3, "MAX_TRIES stays 3: give up after 3 tries");
        let db = TestDb::new(&[("amy", true), ("ben", true), ("zed", true)]).await;
        let (res, tries) = off_call_with_conflicts(&db, "amy", 100).await;
        assert!(
            matches!(res, Err(OffCallError::TooManyRetries)),
            "a 40001 on every try ends in TooManyRetries after MAX_TRIES = {MAX_TRIES}: got {res:?}"
        );
        let expected: Vec<u32> = (1..=MAX_TRIES).collect();
        assert_eq!(tries, expected, "exactly MAX_TRIES = {MAX_TRIES} attempts");
        assert_eq!(on_call(&db.session().await).await, ["amy", "ben", "zed"]);
        db.drop().await;
    }

    #[tokio::test]
    async fn other_errors_and_refusals_are_final() {
        let db = TestDb::new(&[("amy", true), ("ben", true), ("cat", false)]).await;
        let mut c = db.session().await;
        c.batch_execute(
            "ALTER TABLE doctors ADD CONSTRAINT ben_stays CHECK (on_call OR name <> 'ben')",
        )
        .await
        .unwrap();
        let mut tries = vec![];
        let res = go_off_call(&mut c, "ben", &mut async |a: u32| tries.push(a)).await;
        match &res {
            Err(OffCallError::Db(e)) => assert_eq!(e.code(), Some(&SqlState::CHECK_VIOLATION)),
            other => panic!("expected the check violation as Db(_), got {other:?}"),
        }
        assert_eq!(
            tries,
            [1],
            "a check violation is not a serialization failure: no retry"
        );
        tries.clear();
        let res = go_off_call(&mut c, "amy", &mut async |a: u32| tries.push(a)).await;
        assert!(res.is_ok(), "amy may go: ben stays on call, got {res:?}");
        tries.clear();
        let res = go_off_call(&mut c, "ben", &mut async |a: u32| tries.push(a)).await;
        assert!(
            matches!(res, Err(OffCallError::LastOnCall)),
            "ben is the last one on call: expected LastOnCall, got {res:?}"
        );
        assert_eq!(tries, [1], "a refusal is final: no retry");
        assert_eq!(on_call(&c).await, ["ben"]);
        assert!(
            c.query_one("SELECT 1", &[]).await.is_ok(),
            "the connection stays usable after a refusal"
        );
        db.drop().await;
    }
}
