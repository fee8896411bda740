// pg4_row_locks_skip_locked: workers claim different jobs
//
// A job queue in a table: each worker opens a transaction, claims the oldest pending job,
// works on it, marks it done and commits. `SELECT … FOR UPDATE` locks the claimed row until
// COMMIT, so no two workers run the same job; but the second worker then *waits* for the first
// one's row, and ten workers line up behind one job. `FOR UPDATE SKIP LOCKED` skips the rows
// other transactions hold, so each worker claims the next free job at once. A worker that
// crashes never commits: its transaction rolls back, the lock goes, and the job is pending again.
//
// Why it matters: a team moved its e-mail jobs from a broker into PostgreSQL. With plain
// `FOR UPDATE`, adding workers added nothing: they all waited for the same row, one at a time.
// With no lock at all, customers got every mail twice.
//
// Production caveat: SKIP LOCKED gives "an inconsistent view of the data", which suits a queue
// and nothing else (PostgreSQL manual, SELECT, "The Locking Clause"); and the row stays locked
// only while its transaction is open, so a long job holds a transaction (and a connection) all
// along. Long jobs store a `locked_until` lease instead and commit the claim, like SQS's
// visibility timeout (`jobs4_visibility_timeout`). SQLite has no row locks and no SKIP LOCKED.
//
// What to do: make `claim` lock the row it returns, and skip rows other workers hold.
// Run `backlings hint` if you are stuck.

use tokio_postgres::{Client, Transaction};

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i32,
    pub payload: String,
}

pub async fn create_schema(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(
            "CREATE TABLE jobs (id INT PRIMARY KEY, payload TEXT NOT NULL,
                                done BOOLEAN NOT NULL DEFAULT false)",
        )
        .await
}

/// Claims the oldest pending job for the worker running `tx`, or `None` if every pending job
/// is taken. The claim lasts until `tx` commits or rolls back.
pub async fn claim(tx: &Transaction<'_>) -> Result<Option<Job>, tokio_postgres::Error> {
    // The row stays locked until this transaction ends; rows locked by others are skipped.
    let row = tx
        .query_opt(
            "SELECT id, payload FROM jobs WHERE NOT done ORDER BY id LIMIT 1
             FOR UPDATE SKIP LOCKED",
            &[],
        )
        .await?;
    Ok(row.map(|r| Job {
        id: r.get(0),
        payload: r.get(1),
    }))
}

/// Marks the claimed job done; it counts once `tx` commits.
pub async fn finish(tx: &Transaction<'_>, job: &Job) -> Result<(), tokio_postgres::Error> {
    tx.execute("UPDATE jobs SET done = true WHERE id = $1", &[&job.id])
        .await?;
    Ok(())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio_postgres::NoTls;
    use tokio_postgres::error::SqlState;

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

    /// A database of its own for each test, with jobs 1..=n (`done` for the ids in `done`),
    /// stored newest first, so that the table's own order is not the oldest-first order.
    struct TestDb {
        admin: Client,
        name: String,
        monitor: Client,
    }

    impl TestDb {
        async fn new(n: i32, done: &[i32]) -> TestDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let k = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("t_pg4_{}_{k}", std::process::id());
            let admin = connect("postgres").await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let monitor = connect(&name).await;
            create_schema(&monitor).await.unwrap();
            monitor
                .execute(
                    "INSERT INTO jobs SELECT i, 'mail ' || i, i = ANY($2)
                     FROM generate_series($1, 1, -1) AS i",
                    &[&n, &done],
                )
                .await
                .unwrap();
            TestDb {
                admin,
                name,
                monitor,
            }
        }

        /// A worker: its own connection, and its backend's pid.
        async fn worker(&self) -> (Client, i32) {
            let c = connect(&self.name).await;
            let pid = c.query_one("SELECT pg_backend_pid()", &[]).await.unwrap();
            (c, pid.get(0))
        }

        async fn done(&self) -> Vec<i32> {
            let rows = self
                .monitor
                .query("SELECT id FROM jobs WHERE done ORDER BY id", &[])
                .await
                .unwrap();
            rows.iter().map(|r| r.get(0)).collect()
        }

        async fn drop(self) {
            let sql = format!("DROP DATABASE {} WITH (FORCE)", self.name);
            self.admin.batch_execute(&sql).await.unwrap();
        }
    }

    /// Returns once backend `pid` waits on a lock.
    async fn wait_on_lock(monitor: &Client, pid: i32) {
        let sql =
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'";
        for _ in 0..POLLS {
            if monitor
                .query_one(sql, &[&pid])
                .await
                .unwrap()
                .get::<_, i64>(0)
                == 1
            {
                return;
            }
        }
        panic!("after {POLLS} polls, claim had neither returned nor waited on a lock");
    }

    /// Runs `claim` on worker `w`, and fails at once if it waits for another worker's lock.
    async fn claim_now(db: &TestDb, w: usize, pid: i32, tx: &Transaction<'_>) -> Option<u32> {
        let job = tokio::time::timeout(Duration::from_secs(20), async {
            tokio::select! {
                res = claim(tx) => res.unwrap_or_else(|e| panic!("worker {w}: claim failed: {e}")),
                () = wait_on_lock(&db.monitor, pid) => panic!(
                    "worker {w} waited for a row another worker holds: it should skip it and \
                     claim the next pending job"
                ),
            }
        })
        .await
        .expect("claim returns");
        let j = job?;
        assert_eq!(j.payload, format!("mail {}", j.id), "the job's own payload");
        // The claim is a row lock: another transaction cannot lock the row.
        let sql = "SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE NOWAIT";
        let err = db.monitor.query(sql, &[&j.id]).await.err();
        assert_eq!(
            err.as_ref().and_then(|e| e.code()),
            Some(&SqlState::LOCK_NOT_AVAILABLE),
            "worker {w} claimed job {}: its row must be locked FOR UPDATE until the worker's \
             transaction ends, so the monitor's FOR UPDATE NOWAIT fails with 55P03, got {err:?}",
            j.id
        );
        Some(j.id as u32)
    }

    #[tokio::test]
    async fn each_worker_claims_a_different_job_without_waiting() {
        // (jobs, already done, workers, what each worker claims in turn)
        type Case = (i32, &'static [i32], usize, &'static [Option<u32>]);
        let cases: [Case; 2] = [
            (3, &[], 4, &[Some(1), Some(2), Some(3), None]),
            (6, &[1, 4], 5, &[Some(2), Some(3), Some(5), Some(6), None]),
        ];
        for (n, done, workers, expected) in cases {
            let db = TestDb::new(n, done).await;
            let mut clients = vec![];
            for _ in 0..workers {
                clients.push(db.worker().await);
            }
            let mut txs = vec![];
            for (c, pid) in clients.iter_mut() {
                txs.push((c.transaction().await.unwrap(), *pid));
            }
            let mut claimed = vec![];
            for (w, (tx, pid)) in txs.iter().enumerate() {
                // Each worker claims while all the earlier ones still hold their jobs.
                claimed.push(claim_now(&db, w, *pid, tx).await);
            }
            assert_eq!(
                claimed, expected,
                "the oldest pending job that no other worker holds, then None"
            );
            for (tx, _) in txs {
                tx.commit().await.unwrap();
            }
            drop(clients);
            db.drop().await;
        }
    }

    #[tokio::test]
    async fn a_crashed_worker_gives_its_job_back() {
        for (n, crashed) in [(3, 0), (4, 1)] {
            let db = TestDb::new(n, &[]).await;
            let (mut a, pid_a) = db.worker().await;
            let (mut b, pid_b) = db.worker().await;
            let (mut c, pid_c) = db.worker().await;
            let ta = a.transaction().await.unwrap();
            let tb = b.transaction().await.unwrap();
            let first = [
                claim_now(&db, 0, pid_a, &ta).await,
                claim_now(&db, 1, pid_b, &tb).await,
            ];
            assert_eq!(first, [Some(1), Some(2)]);
            // One worker crashes: its connection dies in the middle of the transaction.
            let (lost, lost_pid, survivor) = match crashed {
                0 => (ta, pid_a, tb),
                _ => (tb, pid_b, ta),
            };
            let gone: bool = db
                .monitor
                .query_one("SELECT pg_terminate_backend($1, 10000)", &[&lost_pid])
                .await
                .unwrap()
                .get(0);
            assert!(gone, "the crashed worker's backend has exited");
            drop(lost);
            let tc = c.transaction().await.unwrap();
            let again = claim_now(&db, 2, pid_c, &tc).await;
            assert_eq!(
                again,
                Some(crashed + 1),
                "job {} was rolled back with the crashed worker: it is pending again and the \
                 oldest free one",
                crashed + 1
            );
            let job = Job {
                id: again.unwrap() as i32,
                payload: format!("mail {}", crashed + 1),
            };
            finish(&tc, &job).await.unwrap();
            tc.commit().await.unwrap();
            survivor.commit().await.unwrap();
            assert_eq!(db.done().await, [crashed as i32 + 1]);
            drop((a, b, c));
            db.drop().await;
        }
    }

    #[tokio::test]
    async fn two_workers_drain_the_queue_once() {
        // 12 jobs: 'mail 10' sorts before 'mail 2' as text.
        for n in [5, 12] {
            let db = TestDb::new(n, &[]).await;
            let mut workers = [db.worker().await, db.worker().await];
            let mut seen = vec![];
            'drain: loop {
                for (w, (client, pid)) in workers.iter_mut().enumerate() {
                    let tx = client.transaction().await.unwrap();
                    let Some(id) = claim_now(&db, w, *pid, &tx).await else {
                        break 'drain;
                    };
                    let job = Job {
                        id: id as i32,
                        payload: format!("mail {id}"),
                    };
                    finish(&tx, &job).await.unwrap();
                    tx.commit().await.unwrap();
                    seen.push(id);
                    assert!(
                        seen.len() <= n as usize,
                        "claimed more jobs than exist: {seen:?}"
                    );
                }
            }
            let all: Vec<u32> = (1..=n as u32).collect();
            assert_eq!(seen, all, "every job once, oldest first");
            assert_eq!(db.done().await.len(), n as usize);
            drop(workers);
            db.drop().await;
        }
    }
}
