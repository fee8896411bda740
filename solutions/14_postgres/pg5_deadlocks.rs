// pg5_deadlocks: take row locks in one global order
//
// A transfer updates two rows: first the payer, then the payee. Each UPDATE locks its row
// until COMMIT. Transfer A (1 → 2) locks row 1; transfer B (2 → 1) locks row 2; now A waits
// for row 2 and B for row 1, for ever. PostgreSQL checks for such a cycle once a lock wait has
// lasted `deadlock_timeout` (1 s by default; 50 ms on the server backlings starts), and aborts
// one of the transactions with SQLSTATE 40P01 (`deadlock_detected`). The cure is a global lock
// order: lock both rows up front, always the smaller id first
// (`SELECT … ORDER BY id FOR UPDATE`). Then B waits for A at its first lock, holding nothing,
// and both transfers go through.
//
// Why it matters: a wallet service logged a few "deadlock detected" errors an hour, each one a
// failed payment with a 1 s stall before it. Every one was two users paying each other at the
// same moment, with the rows locked in argument order.
//
// Production caveat: the order must hold across the whole code base (every path that locks two
// accounts), and rows are locked in the order the query returns them. Without an ORDER BY
// that is the plan's scan order, which nothing guarantees, so the ORDER BY is what makes
// `FOR UPDATE` safe (PostgreSQL manual, 13.3.4 "Deadlocks": "the best defense against
// deadlocks is generally to avoid them by being certain that all applications using a database
// acquire locks on multiple objects in a consistent order"). A 40P01 that still happens can be
// retried like a 40001.
//
// What to do: in `transfer`, before the first UPDATE, lock both accounts' rows in id order
// with one `SELECT … FOR UPDATE`. Keep `between` where it is.
// Run `backlings hint` if you are stuck.

use tokio_postgres::Client;

pub async fn create_schema(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute("CREATE TABLE accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL)")
        .await
}

/// Moves `amount` from account `from` to account `to` in one transaction. `between` runs
/// between the two updates (the tests run the other transfers from there).
pub async fn transfer(
    client: &mut Client,
    from: i32,
    to: i32,
    amount: i64,
    between: impl Future<Output = ()>,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // One global order: both rows locked up front, the smaller id first.
    tx.query(
        "SELECT id FROM accounts WHERE id IN ($1, $2) ORDER BY id FOR UPDATE",
        &[&from, &to],
    )
    .await?;
    tx.execute(
        "UPDATE accounts SET balance = balance - $1 WHERE id = $2",
        &[&amount, &from],
    )
    .await?;
    between.await;
    tx.execute(
        "UPDATE accounts SET balance = balance + $1 WHERE id = $2",
        &[&amount, &to],
    )
    .await?;
    tx.commit().await
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
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

    /// A database of its own for each test, with accounts 1..=n at their `opening` balances,
    /// stored largest id first, so that the table's own order is not id order.
    struct TestDb {
        admin: Client,
        name: String,
    }

    impl TestDb {
        async fn new(n: i32) -> TestDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let k = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("t_pg5_{}_{k}", std::process::id());
            let admin = connect("postgres").await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let db = TestDb { admin, name };
            let c = db.session().await;
            create_schema(&c).await.unwrap();
            c.execute(
                "INSERT INTO accounts SELECT i, 100 * ($1 + 1 - i)
                 FROM generate_series($1, 1, -1) AS i",
                &[&n],
            )
            .await
            .unwrap();
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

    /// Account i opens with 100 × (n + 1 − i): the larger the id, the smaller the balance.
    fn opening(n: i32) -> Vec<i64> {
        (1..=n).map(|i| 100 * i64::from(n + 1 - i)).collect()
    }

    /// The balances after `transfers`, from the opening ones.
    fn after(n: i32, transfers: &[(i32, i32, i64)]) -> Vec<i64> {
        let mut b = opening(n);
        for &(from, to, amount) in transfers {
            b[from as usize - 1] -= amount;
            b[to as usize - 1] += amount;
        }
        b
    }

    async fn balances(c: &Client) -> Vec<i64> {
        let rows = c
            .query("SELECT balance FROM accounts ORDER BY id", &[])
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

    /// Backends among `pids` that wait on a lock right now.
    async fn blocked(monitor: &Client, pids: &[i32]) -> Vec<i32> {
        let sql =
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1) AND wait_event_type = 'Lock'";
        let rows = monitor.query(sql, &[&pids]).await.unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// Polls until every session in `others` is ready, or waits on a lock.
    async fn wait_for(monitor: &Client, others: &[(i32, &Cell<bool>)], what: &str) {
        for _ in 0..POLLS {
            let pids: Vec<i32> = others
                .iter()
                .filter(|(_, ready)| !ready.get())
                .map(|(pid, _)| *pid)
                .collect();
            if pids.is_empty() || blocked(monitor, &pids).await.len() == pids.len() {
                return;
            }
        }
        panic!("waited {POLLS} polls for {what}: it never came");
    }

    fn guard<F: Future>(f: F) -> tokio::time::Timeout<F> {
        tokio::time::timeout(Duration::from_secs(20), f)
    }

    /// Why the order matters: updates in opposite orders deadlock, and PostgreSQL aborts one
    /// of the two transactions with 40P01 (after deadlock_timeout) so the other can go on.
    #[tokio::test]
    async fn opposite_orders_deadlock_and_one_side_gets_40p01() {
        let db = TestDb::new(2).await;
        let (monitor, a, b) = (db.session().await, db.session().await, db.session().await);
        let pid_a = pid(&a).await;
        let up = "UPDATE accounts SET balance = balance + 1 WHERE id = $1";
        for c in [&a, &b] {
            c.batch_execute("BEGIN").await.unwrap();
        }
        a.execute(up, &[&1]).await.unwrap();
        b.execute(up, &[&2]).await.unwrap();
        let a_second = async {
            let r = a.execute(up, &[&2]).await;
            let end = if r.is_ok() { "COMMIT" } else { "ROLLBACK" };
            a.batch_execute(end).await.unwrap();
            r
        };
        let b_second = async {
            let a_waits = Cell::new(false);
            wait_for(&monitor, &[(pid_a, &a_waits)], "A to wait for row 2").await;
            let r = b.execute(up, &[&1]).await;
            let end = if r.is_ok() { "COMMIT" } else { "ROLLBACK" };
            b.batch_execute(end).await.unwrap();
            r
        };
        let (ra, rb) = guard(futures::future::join(a_second, b_second))
            .await
            .expect("the deadlock detector breaks the cycle");
        let codes: Vec<_> = [&ra, &rb]
            .iter()
            .map(|r| r.as_ref().err().and_then(|e| e.code()).cloned())
            .collect();
        assert!(
            codes.contains(&None) && codes.contains(&Some(SqlState::T_R_DEADLOCK_DETECTED)),
            "one side fails with 40P01, the other completes: got {ra:?} and {rb:?}"
        );
        let sum = opening(2).iter().sum::<i64>() + 2;
        assert_eq!(balances(&monitor).await.iter().sum::<i64>(), sum);
        db.drop().await;
    }

    /// Runs the transfers at once. Each waits, between its two updates, until every other
    /// transfer has reached that point too, or waits on a lock, or has ended.
    async fn run_at_once(db: &TestDb, transfers: &[(i32, i32, i64)]) -> Vec<String> {
        let monitor = db.session().await;
        let mut clients = vec![];
        for _ in transfers {
            clients.push(db.session().await);
        }
        let mut pids = vec![];
        for c in &clients {
            pids.push(pid(c).await);
        }
        let ready: Vec<Cell<bool>> = transfers.iter().map(|_| Cell::new(false)).collect();
        let halfway: Vec<Cell<u32>> = transfers.iter().map(|_| Cell::new(0)).collect();
        let (monitor, pids, ready, halfway) = (&monitor, &pids, &ready, &halfway);
        let runs = clients.iter_mut().zip(transfers).enumerate().map(
            |(i, (client, &(from, to, amount)))| async move {
                let between = async move {
                    halfway[i].set(halfway[i].get() + 1);
                    ready[i].set(true);
                    let others: Vec<(i32, &Cell<bool>)> = (0..pids.len())
                        .filter(|&j| j != i)
                        .map(|j| (pids[j], &ready[j]))
                        .collect();
                    wait_for(monitor, &others, "the other transfers").await;
                };
                let res = transfer(client, from, to, amount, between).await;
                ready[i].set(true);
                match res {
                    Ok(()) => String::from("ok"),
                    Err(e) => match e.code() {
                        Some(c) => format!("error {}", c.code()),
                        None => format!("error {e}"),
                    },
                }
            },
        );
        let results = guard(futures::future::join_all(runs))
            .await
            .expect("the transfers finish");
        for (i, h) in halfway.iter().enumerate() {
            assert_eq!(h.get(), 1, "transfer {i} reaches `between` exactly once");
        }
        results
    }

    #[tokio::test]
    async fn opposite_transfers_both_go_through() {
        for (a, b) in [(30, 50), (7, 100)] {
            let db = TestDb::new(2).await;
            let results = run_at_once(&db, &[(1, 2, a), (2, 1, b)]).await;
            assert_eq!(
                results,
                ["ok", "ok"],
                "1 → 2 and 2 → 1 at once: with both rows locked in id order the second waits \
                 for the first; \"error 40P01\" is a deadlock"
            );
            let expected = after(2, &[(1, 2, a), (2, 1, b)]);
            assert_eq!(balances(&db.session().await).await, expected);
            db.drop().await;
        }
    }

    #[tokio::test]
    async fn a_cycle_of_three_transfers_goes_through() {
        for (transfers, expected) in [
            ([(1, 2, 10), (2, 3, 20), (3, 1, 30)], [320, 190, 90]),
            ([(3, 2, 5), (2, 1, 6), (1, 3, 7)], [299, 199, 102]),
        ] {
            let db = TestDb::new(3).await;
            let results = run_at_once(&db, &transfers).await;
            assert_eq!(
                results,
                ["ok", "ok", "ok"],
                "{transfers:?} at once: a global lock order leaves no cycle"
            );
            assert_eq!(balances(&db.session().await).await, expected);
            db.drop().await;
        }
    }

    #[tokio::test]
    async fn unrelated_transfers_do_not_wait_for_each_other() {
        for (first, second) in [((1, 2, 10), (3, 4, 20)), ((4, 1, 5), (2, 3, 6))] {
            let db = TestDb::new(4).await;
            let monitor = db.session().await;
            let (mut a, mut b) = (db.session().await, db.session().await);
            let pid_b = pid(&b).await;
            let never = Cell::new(false);
            let (monitor, b_waits) = (&monitor, [(pid_b, &never)]);
            // The second transfer runs to its end while the first holds its locks.
            let between = async {
                let res = tokio::select! {
                    res = transfer(&mut b, second.0, second.1, second.2, async {}) => res,
                    () = wait_for(monitor, &b_waits, "the second transfer") => panic!(
                        "{second:?} waited on a lock while {first:?} was in flight: row locks \
                         must not block unrelated accounts"
                    ),
                };
                assert!(res.is_ok(), "{second:?}: {res:?}");
            };
            let res = guard(transfer(&mut a, first.0, first.1, first.2, between))
                .await
                .expect("the transfer finishes");
            assert!(res.is_ok(), "{first:?}: {res:?}");
            assert_eq!(balances(monitor).await, after(4, &[first, second]));
            db.drop().await;
        }
    }

    /// Another session holds the payer's row (the larger id). The transfer must already hold
    /// the payee's row (the smaller id) while it waits: it locked the smaller id first.
    #[tokio::test]
    async fn the_smaller_id_is_locked_first() {
        for (n, from, to, amount) in [(2, 2, 1, 40), (5, 5, 3, 15)] {
            let db = TestDb::new(n).await;
            let (monitor, holder) = (db.session().await, db.session().await);
            let mut a = db.session().await;
            let pid_a = pid(&a).await;
            holder.batch_execute("BEGIN").await.unwrap();
            let hold = "SELECT id FROM accounts WHERE id = $1 FOR UPDATE";
            holder.query(hold, &[&from]).await.unwrap();
            let probe = async {
                let a_waits = Cell::new(false);
                wait_for(&monitor, &[(pid_a, &a_waits)], "the transfer to wait").await;
                let probe = "SELECT id FROM accounts WHERE id = $1 FOR SHARE NOWAIT";
                let res = monitor.query(probe, &[&to]).await;
                holder.batch_execute("COMMIT").await.unwrap();
                let code = res.as_ref().err().and_then(|e| e.code());
                assert_eq!(
                    code,
                    Some(&SqlState::LOCK_NOT_AVAILABLE),
                    "{from} → {to} waits for row {from}; by then it must hold row {to}, the \
                     smaller id, locked for update (got {res:?})"
                );
            };
            let (res, ()) = guard(futures::future::join(
                transfer(&mut a, from, to, amount, async {}),
                probe,
            ))
            .await
            .expect("the transfer finishes once the row is free");
            assert!(res.is_ok(), "{from} → {to}: {res:?}");
            let expected = after(n, &[(from, to, amount)]);
            assert_eq!(balances(&monitor).await, expected);
            db.drop().await;
        }
    }
}
