// pg_quiz: a transfer service on PostgreSQL
//
// Everything of this track in one service. Each customer may overdraw one of their accounts
// as long as all their accounts together stay at or above zero. A transfer checks that rule,
// moves the money and writes an audit entry (`jsonb`) in one transaction:
// - two transfers between the same two accounts in opposite directions must not deadlock:
//   lock both rows up front, the smaller id first (pg5);
// - two transfers from two accounts of the same customer lock different rows, yet together
//   they can break the rule (write skew): run at SERIALIZABLE, and retry a transaction that
//   fails with 40001 (serialization_failure) or 40P01 (deadlock_detected) from BEGIN, a
//   bounded number of times (pg3);
// - the audit is searched by containment (`entry @> '{"from": 7}'`): give it a GIN index
//   with `jsonb_path_ops` (pg1).
//
// Why it matters: each of these failures shows up only under concurrent load, long after the
// tests with one user at a time went green.
//
// Production caveat: a retried transaction must not have done anything outside the database
// (no e-mail sent, no HTTP call made) before its commit, or the retry does it twice: keep side
// effects after the commit, or in an outbox row inside the transaction (`jobs5_outbox`).
//
// What to do: the three TODOs: the index in `create_schema`, the isolation level and the row
// locks in `attempt`, and the retry loop in `transfer`.
// Run `backlings hint` if you are stuck.

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, IsolationLevel};

pub const MAX_TRIES: u32 = 4;

/// What `transfer` reports as it goes (the tests run the other sessions from there).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Attempt `attempt` (from 1) has checked the rule and debited `from`; the credit is next.
    Debited { attempt: u32 },
    /// Attempt `attempt` failed with SQLSTATE `code` and will be retried.
    Retry { attempt: u32, code: String },
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("the customer's accounts would go below zero")]
    Insufficient,
    #[error("still failing after {MAX_TRIES} tries")]
    TooManyRetries,
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
}

pub async fn create_schema(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(
            "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT NOT NULL,
                                    balance BIGINT NOT NULL);
             CREATE TABLE audit (id BIGSERIAL PRIMARY KEY, entry JSONB NOT NULL);",
            // TODO: the index `audit_entry_gin` that serves `entry @> ...` (see pg1).
        )
        .await
}

/// The SQLSTATE of a failure that a retry from BEGIN may cure.
fn retryable(e: &TransferError) -> Option<&'static str> {
    let TransferError::Db(e) = e else { return None };
    match e.code() {
        Some(&SqlState::T_R_SERIALIZATION_FAILURE) => Some("40001"),
        Some(&SqlState::T_R_DEADLOCK_DETECTED) => Some("40P01"),
        _ => None,
    }
}

async fn attempt(
    client: &mut Client,
    (from, to, amount): (i32, i32, i64),
    attempt: u32,
    on: &mut impl AsyncFnMut(Event),
) -> Result<(), TransferError> {
    // TODO: an isolation level that stops a write skew (see pg3), and both rows locked up
    // front in one global order (see pg5).
    let tx = client.transaction().await?;
    let total: i64 = tx
        .query_one(
            "SELECT coalesce(sum(balance), 0)::bigint FROM accounts
             WHERE owner = (SELECT owner FROM accounts WHERE id = $1)",
            &[&from],
        )
        .await?
        .get(0);
    if total < amount {
        return Err(TransferError::Insufficient);
    }
    let moves = "UPDATE accounts SET balance = balance + $1 WHERE id = $2";
    tx.execute(moves, &[&-amount, &from]).await?;
    on(Event::Debited { attempt }).await;
    tx.execute(moves, &[&amount, &to]).await?;
    tx.execute(
        "INSERT INTO audit (entry) VALUES (jsonb_build_object('from', $1::int, 'to', $2::int,
                                                             'amount', $3::bigint))",
        &[&from, &to, &amount],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Moves `amount` from account `from` to account `to`, with an audit entry.
pub async fn transfer(
    client: &mut Client,
    from: i32,
    to: i32,
    amount: i64,
    on: &mut impl AsyncFnMut(Event),
) -> Result<(), TransferError> {
    // TODO: retry an attempt that failed with a `retryable` code from BEGIN, reporting
    // `Event::Retry` first; at most MAX_TRIES tries, then TooManyRetries.
    attempt(client, (from, to, amount), 1, on).await
}

/// Ids of the audit entries that contain `filter`, in id order.
pub async fn audit_search(
    client: &Client,
    filter: &serde_json::Value,
) -> Result<Vec<i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id FROM audit WHERE entry @> $1::text::jsonb ORDER BY id",
            &[&filter.to_string()],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::cell::{Cell, RefCell};
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

    /// A database of its own for each test, with `accounts` as (id, owner, balance), stored
    /// last first (largest id first), so that the table's own order is not id order.
    struct TestDb {
        admin: Client,
        name: String,
        monitor: Client,
    }

    impl TestDb {
        async fn new(accounts: &[(i32, &str, i64)]) -> TestDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let k = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("t_pgq_{}_{k}", std::process::id());
            let admin = connect("postgres").await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let monitor = connect(&name).await;
            create_schema(&monitor).await.unwrap();
            for (id, owner, balance) in accounts.iter().rev() {
                monitor
                    .execute(
                        "INSERT INTO accounts VALUES ($1, $2, $3)",
                        &[id, owner, balance],
                    )
                    .await
                    .unwrap();
            }
            TestDb {
                admin,
                name,
                monitor,
            }
        }

        async fn session(&self) -> (Client, i32) {
            let c = connect(&self.name).await;
            let pid = c.query_one("SELECT pg_backend_pid()", &[]).await.unwrap();
            (c, pid.get(0))
        }

        async fn balances(&self) -> Vec<i64> {
            let rows = self
                .monitor
                .query("SELECT balance FROM accounts ORDER BY id", &[])
                .await
                .unwrap();
            rows.iter().map(|r| r.get(0)).collect()
        }

        async fn drop(self) {
            let sql = format!("DROP DATABASE {} WITH (FORCE)", self.name);
            self.admin.batch_execute(&sql).await.unwrap();
        }
    }

    /// Two transfers at once. After its debit each waits until the other has debited too (or
    /// waits on a lock, or is done); a retry waits until the other is done.
    struct Race<'a> {
        monitor: &'a Client,
        pids: [i32; 2],
        debited: [Cell<bool>; 2],
        done: [Cell<bool>; 2],
        events: [RefCell<Vec<Event>>; 2],
    }

    async fn waits_on_lock(monitor: &Client, pid: i32) -> bool {
        let sql =
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'";
        let row = monitor.query_one(sql, &[&pid]).await.unwrap();
        row.get::<_, i64>(0) == 1
    }

    async fn wait_for(race: &Race<'_>, o: usize, ready: impl Fn() -> bool) {
        for _ in 0..POLLS {
            if ready() || waits_on_lock(race.monitor, race.pids[o]).await {
                return;
            }
        }
        panic!("waited {POLLS} polls for the other transfer: it never came");
    }

    async fn racer(
        race: &Race<'_>,
        i: usize,
        client: &mut Client,
        (from, to, amount): (i32, i32, i64),
    ) -> Result<(), TransferError> {
        let o = 1 - i;
        let mut on = async |e: Event| {
            race.events[i].borrow_mut().push(e.clone());
            if let Event::Debited { attempt } = e {
                race.debited[i].set(true);
                let first = attempt == 1;
                wait_for(race, o, || {
                    (first && race.debited[o].get()) || race.done[o].get()
                })
                .await;
            }
        };
        let res = transfer(client, from, to, amount, &mut on).await;
        race.done[i].set(true);
        res
    }

    async fn race(
        db: &TestDb,
        a: (i32, i32, i64),
        b: (i32, i32, i64),
    ) -> ([Result<(), TransferError>; 2], [Vec<Event>; 2]) {
        let ((mut c0, p0), (mut c1, p1)) = (db.session().await, db.session().await);
        let race = Race {
            monitor: &db.monitor,
            pids: [p0, p1],
            debited: Default::default(),
            done: Default::default(),
            events: Default::default(),
        };
        let both = futures::future::join(racer(&race, 0, &mut c0, a), racer(&race, 1, &mut c1, b));
        let (r0, r1) = tokio::time::timeout(Duration::from_secs(20), both)
            .await
            .expect("both transfers finish");
        let [e0, e1] = race.events.map(RefCell::into_inner);
        assert_retries_reported(&e0);
        assert_retries_reported(&e1);
        ([r0, r1], [e0, e1])
    }

    /// Every retry is reported: `Debited { attempt: n }` for n > 1 comes right after
    /// `Retry { attempt: n - 1, .. }`.
    fn assert_retries_reported(events: &[Event]) {
        for (k, e) in events.iter().enumerate() {
            if let Event::Debited { attempt: n } = *e
                && n > 1
            {
                let before = k.checked_sub(1).map(|p| &events[p]);
                assert!(
                    matches!(before, Some(Event::Retry { attempt, .. }) if *attempt == n - 1),
                    "attempt {n} debited, but not right after Retry {{ attempt: {} }}: report \
                     every retry (events: {events:?})",
                    n - 1
                );
            }
        }
    }

    fn codes(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Retry { code, .. } => Some(code.clone()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn opposite_transfers_go_through_without_a_deadlock() {
        for (x, y) in [(30, 50), (100, 1)] {
            let db = TestDb::new(&[(1, "ann", 100), (2, "bob", 100)]).await;
            let ([r0, r1], events) = race(&db, (1, 2, x), (2, 1, y)).await;
            assert!(r0.is_ok() && r1.is_ok(), "both go through: {r0:?}, {r1:?}");
            for e in &events {
                assert!(
                    !codes(e).contains(&"40P01".to_string()),
                    "no deadlock may happen: lock both rows up front, the smaller id first \
                     (events: {events:?})"
                );
            }
            assert_eq!(db.balances().await, [100 - x + y, 100 + x - y]);
            db.drop().await;
        }
    }

    /// Another session holds the payer's row (the larger id). While the transfer waits for it,
    /// it must already hold the payee's row (the smaller id): it locked the smaller id first.
    #[tokio::test]
    async fn the_smaller_id_is_locked_first() {
        for (from, to, amount) in [(2, 1, 40), (4, 3, 15)] {
            let owners = ["ann", "bob", "cid", "dan"];
            let accounts: Vec<_> = (1..=4).zip(owners).map(|(id, o)| (id, o, 100)).collect();
            let db = TestDb::new(&accounts).await;
            let ((holder, _), (mut c, pid)) = (db.session().await, db.session().await);
            holder.batch_execute("BEGIN").await.unwrap();
            let hold = "SELECT id FROM accounts WHERE id = $1 FOR UPDATE";
            holder.query(hold, &[&from]).await.unwrap();
            let probe = async {
                for _ in 0..POLLS {
                    if waits_on_lock(&db.monitor, pid).await {
                        break;
                    }
                }
                let probe = "SELECT id FROM accounts WHERE id = $1 FOR SHARE NOWAIT";
                let res = db.monitor.query(probe, &[&to]).await;
                holder.batch_execute("COMMIT").await.unwrap();
                assert_eq!(
                    res.as_ref().err().and_then(|e| e.code()),
                    Some(&SqlState::LOCK_NOT_AVAILABLE),
                    "{from} → {to} waits for row {from}; by then it must hold row {to}, the \
                     smaller id, locked for update (got {res:?})"
                );
            };
            let mut events = vec![];
            let mut on = async |e: Event| events.push(e);
            let (res, ()) = tokio::time::timeout(
                Duration::from_secs(20),
                futures::future::join(transfer(&mut c, from, to, amount, &mut on), probe),
            )
            .await
            .expect("the transfer finishes once the row is free");
            assert!(res.is_ok(), "{from} → {to}: {res:?}");
            assert_eq!(events, [Event::Debited { attempt: 1 }], "one attempt");
            let mut expected = vec![100; 4];
            expected[from as usize - 1] -= amount;
            expected[to as usize - 1] += amount;
            assert_eq!(db.balances().await, expected);
            db.drop().await;
        }
    }

    #[tokio::test]
    async fn two_accounts_of_one_customer_cannot_overdraw_together() {
        for (b1, b2, amount) in [(50, 50, 80), (30, 70, 60)] {
            let db =
                TestDb::new(&[(1, "ann", b1), (2, "ann", b2), (3, "bob", 0), (4, "cid", 0)]).await;
            let ([r0, r1], events) = race(&db, (1, 3, amount), (2, 4, amount)).await;
            let results = [&r0, &r1];
            let Some(w) = results.iter().position(|r| r.is_ok()) else {
                panic!("one of the two goes through: {r0:?}, {r1:?}");
            };
            let l = 1 - w;
            assert!(
                matches!(results[l], Err(TransferError::Insufficient)),
                "the other one is refused after its retry: got {:?} (events {:?}); both read \
                 {} on ann's accounts, and only SERIALIZABLE makes one of them fail with 40001",
                results[l],
                events[l],
                b1 + b2
            );
            // A retry that read before the winner's commit landed can fail once more.
            let retries = codes(&events[l]);
            assert!(
                !retries.is_empty() && retries.iter().all(|c| c == "40001"),
                "serialization failures (40001), each followed by a retry: {retries:?}"
            );
            let balances = db.balances().await;
            assert_eq!(
                balances[0] + balances[1],
                b1 + b2 - amount,
                "ann's total: {balances:?}"
            );
            db.drop().await;
        }
    }

    #[tokio::test]
    async fn retries_are_bounded_and_the_last_one_can_succeed() {
        assert_eq!(MAX_TRIES, 4, "MAX_TRIES stays 4: give up after 4 tries");
        for (conflicts, expect_ok) in [(MAX_TRIES - 1, true), (MAX_TRIES + 5, false)] {
            let db = TestDb::new(&[(1, "ann", 100), (2, "bob", 0), (9, "zed", 0)]).await;
            let ((mut me, _), (other, _)) = (db.session().await, db.session().await);
            let mut events = vec![];
            let mut on = async |e: Event| {
                if let Event::Debited { attempt } = e
                    && attempt <= conflicts
                {
                    // Another serializable transaction reads the row we credit next, writes a
                    // row we read, and commits: our credit then fails with 40001.
                    other
                        .batch_execute(
                            "BEGIN ISOLATION LEVEL SERIALIZABLE;
                             SET LOCAL enable_seqscan = off;
                             SELECT balance FROM accounts WHERE id = 2;
                             UPDATE accounts SET balance = balance WHERE id = 9;
                             COMMIT;",
                        )
                        .await
                        .unwrap();
                }
                events.push(e);
            };
            let res = transfer(&mut me, 1, 2, 40, &mut on).await;
            assert_retries_reported(&events);
            let tries = conflicts.min(MAX_TRIES) + u32::from(expect_ok);
            let debited = events
                .iter()
                .filter(|e| matches!(e, Event::Debited { .. }))
                .count();
            assert_eq!(debited as u32, tries, "attempts made: {events:?}");
            if expect_ok {
                assert!(
                    res.is_ok(),
                    "the try after {conflicts} failures succeeds: {res:?}"
                );
                assert_eq!(db.balances().await, [60, 40, 0]);
            } else {
                assert!(
                    matches!(res, Err(TransferError::TooManyRetries)),
                    "after MAX_TRIES = {MAX_TRIES} failures: TooManyRetries, got {res:?}"
                );
                assert_eq!(db.balances().await, [100, 0, 0]);
            }
            db.drop().await;
        }
    }

    /// A CHECK violation at the credit, after the debit, is final: no retry, nothing moves.
    #[tokio::test]
    async fn other_database_errors_are_final() {
        for (cap, amount) in [(150, 60), (120, 30)] {
            let db = TestDb::new(&[(1, "ann", 100), (2, "bob", 100)]).await;
            let sql = format!("ALTER TABLE accounts ADD CHECK (balance <= {cap})");
            db.monitor.batch_execute(&sql).await.unwrap();
            let (mut c, _) = db.session().await;
            let mut events = vec![];
            let mut on = async |e: Event| events.push(e);
            let res = transfer(&mut c, 1, 2, amount, &mut on).await;
            let code = match &res {
                Err(TransferError::Db(e)) => e.code(),
                _ => None,
            };
            assert_eq!(
                code,
                Some(&SqlState::CHECK_VIOLATION),
                "the credit breaks balance <= {cap}: expected Err(Db(23514)), got {res:?}"
            );
            assert_eq!(
                events,
                [Event::Debited { attempt: 1 }],
                "23514 is not retryable: one attempt, no Retry"
            );
            assert_eq!(db.balances().await, [100, 100], "the debit is rolled back");
            db.drop().await;
        }
    }

    #[tokio::test]
    async fn a_refusal_is_final_and_the_audit_is_searched_through_the_gin_index() {
        let db = TestDb::new(&[(1, "ann", 100), (2, "bob", 0), (3, "cid", 0)]).await;
        let (mut c, _) = db.session().await;
        let mut events = vec![];
        let mut on = async |e: Event| events.push(e);
        transfer(&mut c, 1, 2, 60, &mut on).await.unwrap();
        let res = transfer(&mut c, 1, 3, 60, &mut on).await;
        assert!(matches!(res, Err(TransferError::Insufficient)), "{res:?}");
        transfer(&mut c, 2, 3, 25, &mut on).await.unwrap();
        transfer(&mut c, 1, 3, 40, &mut on)
            .await
            .expect("ann's accounts may go down to exactly zero");
        assert_eq!(codes(&events), Vec::<String>::new(), "nothing to retry");
        assert_eq!(db.balances().await, [0, 35, 65]);
        let rows = db
            .monitor
            .query(
                "SELECT am.amname::text, opc.opcname::text FROM pg_class c
                 JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_am am ON am.oid = c.relam
                 JOIN pg_opclass opc ON opc.oid = i.indclass[0]
                 WHERE c.relname = 'audit_entry_gin'",
                &[],
            )
            .await
            .unwrap();
        let index: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(
            index,
            [("gin".to_string(), "jsonb_path_ops".to_string())],
            "audit_entry_gin must be a GIN index with the jsonb_path_ops operator class (pg1)"
        );
        db.monitor
            .batch_execute(
                "INSERT INTO audit (entry) SELECT jsonb_build_object('from', 100 + i % 200,
                     'to', 100 + i % 300, 'amount', i) FROM generate_series(1, 20000) AS i",
            )
            .await
            .unwrap();
        // The new entries sit in the GIN index's pending list (fastupdate) until a VACUUM
        // merges it into the index; until then the planner counts its cost in every search.
        db.monitor
            .batch_execute("VACUUM (ANALYZE) audit")
            .await
            .unwrap();
        assert_eq!(
            audit_search(&c, &json!({"from": 1, "to": 2}))
                .await
                .unwrap(),
            [1]
        );
        assert_eq!(audit_search(&c, &json!({"to": 3})).await.unwrap(), [2, 3]);
        assert_eq!(audit_search(&c, &json!({"from": 1})).await.unwrap(), [1, 3]);
        for filter in [json!({"from": 2}), json!({"to": 150, "from": 150})] {
            let sql =
                format!("EXPLAIN (FORMAT JSON) SELECT id FROM audit WHERE entry @> '{filter}'");
            let rows = db.monitor.simple_query(&sql).await.unwrap();
            let text = rows
                .into_iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
                    _ => None,
                })
                .unwrap();
            let plan: Value = serde_json::from_str(&text).unwrap();
            let inner = &plan[0]["Plan"]["Plans"][0];
            assert_eq!(
                (inner["Node Type"].as_str(), inner["Index Name"].as_str()),
                (Some("Bitmap Index Scan"), Some("audit_entry_gin")),
                "entry @> {filter} is served by the GIN index audit_entry_gin: {}",
                plan[0]["Plan"]
            );
        }
        db.drop().await;
    }

    /// A deadlock victim's 40P01 is retried like a 40001; other errors are not.
    #[tokio::test]
    async fn deadlocks_and_serialization_failures_are_retryable() {
        let db = TestDb::new(&[(1, "ann", 100), (2, "bob", 100)]).await;
        let ((a, pid_a), (b, _)) = (db.session().await, db.session().await);
        let up = "UPDATE accounts SET balance = balance + 1 WHERE id = $1";
        for (c, id) in [(&a, 1), (&b, 2)] {
            c.batch_execute("BEGIN").await.unwrap();
            c.execute(up, &[&id]).await.unwrap();
        }
        let blocked = async {
            let sql =
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'";
            for _ in 0..POLLS {
                if db
                    .monitor
                    .query_one(sql, &[&pid_a])
                    .await
                    .unwrap()
                    .get::<_, i64>(0)
                    == 1
                {
                    return b.execute(up, &[&1]).await;
                }
            }
            panic!("session A never waited for row 2");
        };
        let (ra, rb) = tokio::time::timeout(
            Duration::from_secs(20),
            futures::future::join(a.execute(up, &[&2]), blocked),
        )
        .await
        .expect("the deadlock detector ends the wait");
        let victim = ra.err().or(rb.err()).expect("one side gets 40P01");
        assert_eq!(retryable(&TransferError::Db(victim)), Some("40P01"));
        let violation = a.batch_execute("ROLLBACK; SELECT 1 / 0").await.unwrap_err();
        assert_eq!(
            retryable(&TransferError::Db(violation)),
            None,
            "22012 is final"
        );
        assert_eq!(retryable(&TransferError::Insufficient), None);
        drop((a, b));
        db.drop().await;
    }
}
