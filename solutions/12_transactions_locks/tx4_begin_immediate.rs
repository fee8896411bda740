// tx4_begin_immediate: take the write lock before you read
//
// `conn.transaction()` is DEFERRED: it reads under a snapshot and asks for the write lock only
// at its first write. If another connection committed in between, that write cannot be
// allowed (it was decided on stale data), and SQLite fails it with SQLITE_BUSY_SNAPSHOT
// (extended code 517) at the UPDATE, after your code already acted on the stale balance.
// `BEGIN IMMEDIATE` takes the write lock at BEGIN: either it fails right there with
// SQLITE_BUSY (5), before anything was read, where retrying is safe, or it succeeds and no
// other writer can commit until you do, so what you read stays true.
//
// Why it matters: a wallet service read the balance, checked it, and wrote the new one in a
// deferred transaction. Under load the write failed with "database is locked" half the time,
// and a retry of just the failed UPDATE used the balance read before the other commit.
//
// Production caveat: a retry must be bounded (a count, not "until it works"), and it retries
// the whole transaction from BEGIN. PostgreSQL has no database-wide write lock: it locks rows
// (`SELECT … FOR UPDATE` here), and at REPEATABLE READ / SERIALIZABLE it fails the loser with
// SQLSTATE 40001 (serialization_failure), which must also be retried as a whole transaction.
// At REPEATABLE READ it can also let two transactions commit a write skew, which SQLite, with
// one writer at a time, cannot.
//
// What to do: in `withdraw`, start the transaction with
// `conn.transaction_with_behavior(TransactionBehavior::Immediate)` and, when that fails with
// `ErrorCode::DatabaseBusy`, report `Event::Busy` and try again, at most `MAX_TRIES` times.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};

pub const MAX_TRIES: u32 = 4;

/// What `withdraw` reports to its caller (the tests drive the other session from here).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// Attempt number `attempt` (from 1) found another writer holding the lock.
    Busy { attempt: u32 },
    /// The balance was read, before the write.
    Read { balance: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum WithdrawError {
    #[error("insufficient funds")]
    Insufficient,
    #[error("the database stayed busy for {MAX_TRIES} tries")]
    Busy,
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

pub fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);",
    )
}

fn is_busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
}

/// Takes `amount` from account `id` if the balance allows it; returns the new balance.
pub fn withdraw(
    conn: &mut Connection,
    id: i64,
    amount: i64,
    on: &mut dyn FnMut(Event),
) -> Result<i64, WithdrawError> {
    let mut attempt = 0;
    // IMMEDIATE fails at BEGIN, before any read, so retrying from here is safe; bounded.
    let tx = loop {
        attempt += 1;
        match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => break tx,
            Err(e) if is_busy(&e) => {
                on(Event::Busy { attempt });
                if attempt == MAX_TRIES {
                    return Err(WithdrawError::Busy);
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    let balance: i64 = tx.query_row("SELECT balance FROM accounts WHERE id = ?1", [id], |r| {
        r.get(0)
    })?;
    on(Event::Read { balance });
    if balance < amount {
        return Err(WithdrawError::Insufficient);
    }
    tx.execute(
        "UPDATE accounts SET balance = ?1 WHERE id = ?2",
        params![balance - amount, id],
    )?;
    tx.commit()?;
    Ok(balance - amount)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A uniquely named database file in WAL mode, removed on drop.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new(balance: i64) -> TempDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("backlings-tx4-{}-{n}.db", std::process::id());
            let db = TempDb(std::env::temp_dir().join(name));
            db.remove();
            let conn = db.open();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            create_schema(&conn).unwrap();
            conn.execute("INSERT INTO accounts VALUES (1, ?1)", [balance])
                .unwrap();
            db
        }

        /// A session that never waits on the clock for a lock: busy is reported at once.
        fn open(&self) -> Connection {
            let conn = Connection::open(&self.0).unwrap();
            conn.busy_timeout(Duration::ZERO).unwrap();
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

    fn balance(conn: &Connection) -> i64 {
        conn.query_row("SELECT balance FROM accounts WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap()
    }

    fn take(conn: &Connection, amount: i64) -> rusqlite::Result<usize> {
        conn.execute(
            "UPDATE accounts SET balance = balance - ?1 WHERE id = 1",
            [amount],
        )
    }

    /// Why DEFERRED is not enough: the write after a stale read fails with code 517.
    #[test]
    fn deferred_read_then_write_fails_with_busy_snapshot() {
        let db = TempDb::new(100);
        let (mut a, b) = (db.open(), db.open());
        let tx = a.transaction().unwrap();
        assert_eq!(balance(&tx), 100);
        take(&b, 30).expect("the other session commits: a deferred reader holds no lock");
        let err = take(&tx, 10).expect_err("the stale transaction cannot upgrade");
        assert_eq!(err.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
        let code = match err {
            rusqlite::Error::SqliteFailure(e, _) => e.extended_code,
            other => panic!("expected a SqliteFailure, got {other:?}"),
        };
        assert_eq!(
            code,
            rusqlite::ffi::SQLITE_BUSY_SNAPSHOT,
            "517 = SQLITE_BUSY_SNAPSHOT"
        );
    }

    #[test]
    fn the_lock_is_held_from_begin_so_the_read_stays_true() {
        for (start, amount, other) in [(100, 60, 30), (50, 20, 50)] {
            let db = TempDb::new(start);
            let (mut a, b) = (db.open(), db.open());
            let mut events = vec![];
            let mut other_result = None;
            let res = withdraw(&mut a, 1, amount, &mut |e| {
                events.push(e);
                // The other session tries to withdraw while we hold what we read.
                other_result = Some(take(&b, other).map_err(|e| e.sqlite_error_code()));
            });
            assert_eq!(
                res.unwrap(),
                start - amount,
                "withdraw {amount} from {start}"
            );
            assert_eq!(events, vec![Event::Read { balance: start }]);
            assert_eq!(
                other_result,
                Some(Err(Some(ErrorCode::DatabaseBusy))),
                "between our read and our write another writer must be locked out (BEGIN \
                 IMMEDIATE); it committed instead, so what we read was already stale"
            );
            assert_eq!(balance(&b), start - amount);
        }
    }

    #[test]
    fn busy_at_begin_is_retried_and_the_retry_reads_the_fresh_balance() {
        // (start, the other writer's withdrawal, ours, the retries the lock stays held)
        for (start, other, amount, held) in [(100, 30, 50, 1), (80, 10, 70, 3)] {
            let db = TempDb::new(start);
            let (mut a, b) = (db.open(), db.open());
            let other_tx = b.unchecked_transaction().unwrap();
            take(&b, other).unwrap();
            let mut other_tx = Some(other_tx);
            let mut events = vec![];
            let res = withdraw(&mut a, 1, amount, &mut |e| {
                events.push(e);
                assert!(
                    events.len() <= 8,
                    "attempts must count 1, 2, 3...: {events:?}"
                );
                if e == (Event::Busy { attempt: held }) {
                    other_tx.take().unwrap().commit().unwrap();
                }
            });
            let mut expected: Vec<Event> =
                (1..=held).map(|attempt| Event::Busy { attempt }).collect();
            expected.push(Event::Read {
                balance: start - other,
            });
            assert_eq!(
                events, expected,
                "BEGIN IMMEDIATE fails before reading while the other writer holds the lock; \
                 after it commits, the retry reads the fresh balance"
            );
            assert_eq!(res.unwrap(), start - other - amount);
            assert_eq!(
                balance(&b),
                start - other - amount,
                "both withdrawals happened"
            );
        }
    }

    #[test]
    fn the_fresh_balance_can_refuse_the_withdrawal() {
        for (start, other, amount) in [(100, 60, 50), (40, 1, 40)] {
            let db = TempDb::new(start);
            let (mut a, b) = (db.open(), db.open());
            let mut other_tx = Some(b.unchecked_transaction().unwrap());
            take(&b, other).unwrap();
            let res = withdraw(&mut a, 1, amount, &mut |e| {
                if let (Event::Busy { .. }, Some(tx)) = (e, other_tx.take()) {
                    tx.commit().unwrap();
                }
            });
            assert!(
                matches!(res, Err(WithdrawError::Insufficient)),
                "{start} - {other} leaves less than {amount}: expected Insufficient, got {res:?}"
            );
            assert_eq!(
                balance(&b),
                start - other,
                "a refused withdrawal changes nothing"
            );
            assert!(
                a.is_autocommit(),
                "the refused withdrawal must not stay open"
            );
        }
    }

    #[test]
    fn a_lock_that_is_never_released_gives_up_after_max_tries() {
        let db = TempDb::new(100);
        let (mut a, b) = (db.open(), db.open());
        let _held_forever = b.unchecked_transaction().unwrap();
        take(&b, 1).unwrap();
        let mut busy = 0;
        let res = withdraw(&mut a, 1, 10, &mut |e| {
            assert!(
                matches!(e, Event::Busy { .. }),
                "nothing may be read: {e:?}"
            );
            busy += 1;
            assert!(
                busy <= MAX_TRIES,
                "more than MAX_TRIES = {MAX_TRIES} tries: the retry must be bounded"
            );
        });
        assert!(
            matches!(res, Err(WithdrawError::Busy)),
            "expected Err(Busy), got {res:?}"
        );
        assert_eq!(
            busy, MAX_TRIES,
            "expected exactly MAX_TRIES = {MAX_TRIES} busy attempts"
        );
    }

    #[test]
    fn other_errors_are_not_retried() {
        let db = TempDb::new(100);
        let mut a = db.open();
        a.execute_batch(
            "CREATE TRIGGER no_overdraft BEFORE UPDATE ON accounts WHEN NEW.balance < 90
             BEGIN SELECT RAISE(ABORT, 'limit'); END;",
        )
        .unwrap();
        let mut events = vec![];
        let res = withdraw(&mut a, 1, 20, &mut |e| events.push(e));
        assert!(
            matches!(res, Err(WithdrawError::Db(_))),
            "expected a Db error, got {res:?}"
        );
        assert_eq!(
            events,
            vec![Event::Read { balance: 100 }],
            "a constraint error is final: one try"
        );
        assert_eq!(balance(&a), 100);
        assert!(
            a.is_autocommit(),
            "the failed withdrawal must be rolled back"
        );
        // A BEGIN that fails for another reason than busy is not retried either.
        a.execute_batch("BEGIN").unwrap();
        let mut events = vec![];
        let res = withdraw(&mut a, 1, 20, &mut |e| events.push(e));
        assert!(
            matches!(res, Err(WithdrawError::Db(_))),
            "BEGIN inside a transaction: {res:?}"
        );
        assert_eq!(
            events,
            vec![],
            "a BEGIN error that is not busy is final: no retry"
        );
    }
}
