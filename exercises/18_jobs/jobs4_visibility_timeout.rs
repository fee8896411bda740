// jobs4_visibility_timeout: a claimed job is hidden, not removed
//
// A queue in a database table gives at-least-once delivery. A worker *claims* a job: the row
// stays in the table, but `locked_until` hides it from other workers for the visibility
// timeout. When the work is done the worker *acks* it (deletes the row). A worker that crashes
// never acks, its lease runs out, and the job becomes visible again: it is redelivered. The
// claim must be one atomic step. "SELECT a free job, then UPDATE it" lets two workers read the
// same free row before either writes; one `UPDATE … WHERE id = (SELECT …) RETURNING …` finds,
// locks and returns the job in one statement.
//
// Why it matters: a billing queue lost invoices. Its worker deleted each job when it took it,
// then crashed halfway; nothing brought the job back. Its fix, "select then mark as taken",
// sent the same invoice twice whenever two workers polled in the same millisecond.
//
// Production caveat: a job that runs longer than its lease is delivered again while the first
// run still works, so consumers must be idempotent. Amazon SQS's visibility timeout is the same
// lease (30 s by default); a long job calls `ChangeMessageVisibility`, which sets a new timeout
// counted from that call, not added to the old one.
//
// Where PostgreSQL differs: SQLite has one writer at a time, so one UPDATE with its sub-SELECT
// runs on a state no one else can change. PostgreSQL locks rows, and the sub-SELECT needs
// `FOR UPDATE SKIP LOCKED`: concurrent claimers then skip a row another one is locking instead
// of waiting for it.
//
// What to do: write `claim` as one `UPDATE … RETURNING` that takes the oldest visible job.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, OptionalExtension};

/// Milliseconds on some clock that only moves forward.
pub trait Clock: Send + 'static {
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub payload: String,
    /// How many times this job was claimed, this claim included.
    pub attempts: i64,
}

pub struct Queue<C> {
    conn: Connection,
    clock: C,
    visibility_ms: i64,
}

impl<C: Clock> Queue<C> {
    pub fn new(conn: Connection, clock: C, visibility_ms: i64) -> rusqlite::Result<Self> {
        // `locked_until` is NULL for a job never claimed; a job is visible when
        // `locked_until <= now`.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS jobs (
                 id           INTEGER PRIMARY KEY,
                 payload      TEXT NOT NULL,
                 attempts     INTEGER NOT NULL DEFAULT 0,
                 locked_until INTEGER
             );",
        )?;
        Ok(Queue {
            conn,
            clock,
            visibility_ms,
        })
    }

    pub fn enqueue(&self, payload: &str) -> rusqlite::Result<i64> {
        self.conn
            .execute("INSERT INTO jobs (payload) VALUES (?1)", [payload])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Takes the oldest visible job and hides it for the visibility timeout.
    pub fn claim(&self) -> rusqlite::Result<Option<Job>> {
        let now = self.clock.now_ms();
        // TODO: two workers can both SELECT the same free job before either UPDATEs it, and a
        // claimed job never becomes visible again. Make this one `UPDATE … RETURNING` whose
        // sub-SELECT takes the oldest job that is new or whose lease has run out.
        let sql = "SELECT id, payload, attempts FROM jobs WHERE locked_until IS NULL
                   ORDER BY id LIMIT 1";
        let found = self
            .conn
            .query_row(sql, [], |r| {
                Ok(Job {
                    id: r.get(0)?,
                    payload: r.get(1)?,
                    attempts: r.get::<_, i64>(2)? + 1,
                })
            })
            .optional()?;
        if let Some(job) = &found {
            let sql = "UPDATE jobs SET locked_until = ?2, attempts = ?3 WHERE id = ?1";
            let until = now + self.visibility_ms;
            self.conn.execute(sql, (job.id, until, job.attempts))?;
        }
        Ok(found)
    }

    /// The work is done: the job is gone for good.
    pub fn ack(&self, id: i64) -> rusqlite::Result<()> {
        self.conn.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
        Ok(())
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct FakeClock(Arc<AtomicI64>);

    impl Clock for FakeClock {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl FakeClock {
        fn set(&self, ms: i64) {
            self.0.store(ms, Ordering::SeqCst);
        }
    }

    /// Two visibility timeouts: SQS's default 30 s, and 5 minutes.
    const VISIBILITIES: [i64; 2] = [30_000, 300_000];

    fn queue(visibility_ms: i64) -> (Queue<FakeClock>, FakeClock) {
        let clock = FakeClock::default();
        let conn = Connection::open_in_memory().unwrap();
        (
            Queue::new(conn, clock.clone(), visibility_ms).unwrap(),
            clock,
        )
    }

    fn job(id: i64, payload: &str, attempts: i64) -> Option<Job> {
        let payload = payload.to_string();
        Some(Job {
            id,
            payload,
            attempts,
        })
    }

    #[test]
    fn a_crashed_workers_job_comes_back_when_its_lease_runs_out() {
        for vis in VISIBILITIES {
            let (q, clock) = queue(vis);
            let id = q.enqueue("send invoice 7").unwrap();
            // Claimed at 1000, taken again 250 ms after that lease ran out, then again right
            // at the end of the second lease. Each worker crashes: no ack.
            let late = 1_000 + vis + 250;
            for (attempts, at) in [(1, 1_000), (2, late), (3, late + vis)] {
                clock.set(at);
                let got = q.claim().unwrap();
                assert_eq!(
                    got,
                    job(id, "send invoice 7", attempts),
                    "at {at} ms the job is visible (new, or its lease ran out): attempt {attempts}"
                );
                for t in [at, at + vis / 2, at + vis - 1] {
                    clock.set(t);
                    let got = q.claim().unwrap();
                    assert_eq!(
                        got, None,
                        "claimed at {at} ms, the job is hidden at {t} ms: a lease of {vis} ms \
                         counts from the claim"
                    );
                }
            }
        }
    }

    #[test]
    fn an_acked_job_never_comes_back() {
        for vis in VISIBILITIES {
            let (q, clock) = queue(vis);
            let a = q.enqueue("resize photo 1").unwrap();
            let b = q.enqueue("resize photo 2").unwrap();
            assert_eq!(q.claim().unwrap(), job(a, "resize photo 1", 1));
            q.ack(a).unwrap();
            assert_eq!(q.claim().unwrap(), job(b, "resize photo 2", 1));
            // b's worker crashes; b comes back, and this time it is acked.
            clock.set(vis);
            let got = q.claim().unwrap();
            assert_eq!(
                got,
                job(b, "resize photo 2", 2),
                "b comes back, not the acked a"
            );
            q.ack(b).unwrap();
            for t in [vis, 2 * vis, 10 * vis] {
                clock.set(t);
                let got = q.claim().unwrap();
                assert_eq!(
                    got, None,
                    "at {t} ms: both jobs were acked, expected no job"
                );
            }
        }
    }

    #[test]
    fn jobs_are_claimed_oldest_first_and_each_by_one_claim() {
        for (vis, n) in [(30_000, 5), (300_000, 8)] {
            let (q, clock) = queue(vis);
            let ids: Vec<i64> = (0..n)
                .map(|i| q.enqueue(&format!("job {i}")).unwrap())
                .collect();
            clock.set(500);
            let claimed: Vec<i64> = (0..n)
                .map(|_| q.claim().unwrap().expect("a new job is visible").id)
                .collect();
            assert_eq!(
                claimed, ids,
                "{n} claims at one instant: each job once, oldest first"
            );
            assert_eq!(
                q.claim().unwrap(),
                None,
                "all {n} jobs are leased: expected none"
            );
            // Every other job is acked; the rest come back together, oldest first.
            for id in ids.iter().step_by(2) {
                q.ack(*id).unwrap();
            }
            clock.set(500 + vis);
            let back: Vec<i64> = ids.iter().skip(1).step_by(2).copied().collect();
            let again: Vec<i64> = back
                .iter()
                .map(|_| {
                    q.claim()
                        .unwrap()
                        .expect("an un-acked job is visible again")
                        .id
                })
                .collect();
            assert_eq!(
                again, back,
                "after the lease only the un-acked jobs come back"
            );
            assert_eq!(q.claim().unwrap(), None, "and each of them once");
        }
    }

    /// A uniquely named database file in WAL mode, shared by two workers; removed on drop.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new() -> TempDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("backlings-jobs4-{}-{n}.db", std::process::id());
            let db = TempDb(std::env::temp_dir().join(name));
            db.remove();
            let conn = db.open();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            db
        }

        fn open(&self) -> Connection {
            let conn = Connection::open(&self.0).unwrap();
            conn.busy_timeout(Duration::ZERO).unwrap();
            // No fsync: the test needs the locks, not durability.
            conn.pragma_update(None, "synchronous", "OFF").unwrap();
            conn
        }

        fn remove(&self) {
            for ext in ["", "-wal", "-shm"] {
                let mut p = self.0.clone().into_os_string();
                p.push(ext);
                let _ = std::fs::remove_file(p);
            }
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            self.remove();
        }
    }

    /// What worker B's claim returned when it ran in the middle of A's claim.
    #[derive(Debug)]
    enum Poll {
        Got(rusqlite::Result<Option<Job>>),
        /// B's claim waited more than 5 s for A's to finish.
        Blocked,
    }

    #[test]
    fn two_workers_never_hold_the_same_job() {
        for (vis, n) in [(30_000, 3), (300_000, 6)] {
            // Worker B polls, from its own thread and connection, after the k-th step of the
            // database engine inside A's claim; for each k, on a fresh database.
            for k in 1..=12 {
                let db = TempDb::new();
                let clock = FakeClock::default();
                let b = Arc::new(Mutex::new(
                    Queue::new(db.open(), clock.clone(), vis).unwrap(),
                ));
                let (armed, polled) =
                    (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(None)));
                let (b2, armed2, polled2, mut steps) =
                    (b.clone(), armed.clone(), polled.clone(), 0);
                let on_step = move || {
                    steps += armed2.load(Ordering::SeqCst) as usize;
                    if steps == k && armed2.load(Ordering::SeqCst) {
                        let (tx, rx) = mpsc::channel();
                        let b3 = b2.clone();
                        std::thread::spawn(move || tx.send(b3.lock().unwrap().claim()));
                        let got = rx.recv_timeout(Duration::from_secs(5));
                        *polled2.lock().unwrap() = Some(got.map_or(Poll::Blocked, Poll::Got));
                    }
                    false
                };
                let mut a_conn = db.open();
                a_conn.progress_handler(1, Some(on_step)).unwrap();
                let a = Queue::new(a_conn, clock.clone(), vis).unwrap();
                for i in 0..n {
                    a.enqueue(&format!("email {i}")).unwrap();
                }
                armed.store(true, Ordering::SeqCst);
                let a_job = a
                    .claim()
                    .expect("A's claim works")
                    .expect("A claims a new job");
                armed.store(false, Ordering::SeqCst);
                let mut held = vec![a_job.id];
                match polled.lock().unwrap().take() {
                    // A's claim took fewer than k steps: B did not poll this time.
                    None => assert!(k > 1, "expected B to poll during A's claim"),
                    Some(Poll::Got(Ok(Some(b_job)))) => {
                        assert_ne!(
                            b_job.id, a_job.id,
                            "B polled after step {k} of A's claim, and A and B hold the same job: \
                             a SELECT then a write lets both read the same free row; claim with \
                             one UPDATE … RETURNING"
                        );
                        held.push(b_job.id);
                    }
                    // The database was locked by A's write: B got nothing this time.
                    Some(Poll::Got(Err(e)))
                        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
                    Some(other) => panic!(
                        "B polled after step {k} of A's claim and got {other:?}: expected another \
                         job, or SQLITE_BUSY while A writes ({} of {n} jobs were free)",
                        n - 1
                    ),
                }
                // The rest, alternating A and B: every job is handed out exactly once.
                for turn in held.len()..n as usize {
                    let got = if turn % 2 == 0 {
                        a.claim()
                    } else {
                        b.lock().unwrap().claim()
                    };
                    held.extend(got.unwrap().map(|j| j.id));
                }
                assert_eq!(a.claim().unwrap(), None, "all {n} jobs are held");
                held.sort();
                let all: Vec<i64> = (1..=n).collect();
                assert_eq!(
                    held, all,
                    "{n} jobs, two workers: each job held exactly once (B polled at step {k})"
                );
            }
        }
    }
}
