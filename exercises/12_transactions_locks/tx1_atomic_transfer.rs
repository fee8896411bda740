// tx1_atomic_transfer: all or nothing
//
// A transfer is three statements: debit one account, credit another, write a ledger row. If
// the second or third fails after the first succeeded, money has vanished. A transaction makes
// the statements one unit: `commit()` makes all of them permanent at once, and if anything
// fails first, none of them happened. In rusqlite, `conn.transaction()` starts one, and a
// `Transaction` that is dropped without `commit()` rolls back, so `?` is always safe.
//
// Why it matters: this is the textbook bug, and it still ships. A payments service debited the
// customer, then crashed on the ledger insert (a memo too long for its column); support spent
// a week finding the missing money by hand. Checking the inputs first does not save you: a
// trigger, a full disk or a lock can still fail the second statement.
//
// Where SQLite differs from PostgreSQL: in SQLite a statement that fails on a constraint or a
// trigger's RAISE(ABORT) undoes only itself (the default ON CONFLICT ABORT); the transaction
// stays open with the earlier statements in it, and a COMMIT would make the half-done transfer
// permanent. PostgreSQL marks the whole transaction as failed, and its COMMIT then rolls back.
// In both, the safe habit is the same: after an error, never commit; return, and let the
// dropped `Transaction` roll back.
//
// What to do: run the three statements in a transaction in `transfer`: start it with
// `conn.transaction()?`, run every statement on it, and `commit()` at the end.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, params};

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("no account with id {0}")]
    UnknownAccount(i64),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

pub fn open() -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE TABLE accounts (
             id      INTEGER PRIMARY KEY,
             balance INTEGER NOT NULL CHECK (balance >= 0)
         );
         CREATE TABLE ledger (
             id      INTEGER PRIMARY KEY,
             from_id INTEGER NOT NULL,
             to_id   INTEGER NOT NULL,
             amount  INTEGER NOT NULL CHECK (amount > 0),
             memo    TEXT NOT NULL CHECK (length(memo) <= 20)
         );
         INSERT INTO accounts (id, balance) VALUES (1, 100), (2, 50), (3, 0);",
    )?;
    Ok(conn)
}

/// Moves `amount` from `from` to `to` and records it in the ledger: all of it, or none.
pub fn transfer(
    conn: &mut Connection,
    from: i64,
    to: i64,
    amount: i64,
    memo: &str,
) -> Result<(), TransferError> {
    // TODO: if a statement fails after the debit, the debit stays. Start a transaction
    // (`let tx = conn.transaction()?;`), run every statement on `tx`, and commit at the end.
    let debited = conn.execute(
        "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2",
        params![amount, from],
    )?;
    if debited == 0 {
        return Err(TransferError::UnknownAccount(from));
    }
    let credited = conn.execute(
        "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2",
        params![amount, to],
    )?;
    if credited == 0 {
        return Err(TransferError::UnknownAccount(to));
    }
    conn.execute(
        "INSERT INTO ledger (from_id, to_id, amount, memo) VALUES (?1, ?2, ?3, ?4)",
        params![from, to, amount, memo],
    )?;
    Ok(())
}

pub fn balances(conn: &Connection) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare("SELECT id, balance FROM accounts ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub fn ledger_len(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM ledger", [], |r| r.get(0))
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    const START: [(i64, i64); 3] = [(1, 100), (2, 50), (3, 0)];

    /// Opens the bank and adds an audit trigger: every balance change writes a row, the way a
    /// change-data-capture feed would see it. A rolled-back change leaves no audit row.
    fn bank() -> Connection {
        let conn = open().unwrap();
        conn.execute_batch(
            "CREATE TABLE audit (account INTEGER, old INTEGER, new INTEGER);
             CREATE TRIGGER audit_balance AFTER UPDATE OF balance ON accounts BEGIN
                 INSERT INTO audit VALUES (OLD.id, OLD.balance, NEW.balance);
             END;",
        )
        .unwrap();
        conn
    }

    /// A failure that no check up front can see: crediting `account` fails inside the
    /// database, after the debit already ran.
    fn freeze(conn: &Connection, account: i64) {
        conn.execute_batch(&format!(
            "CREATE TRIGGER frozen_{account} BEFORE UPDATE OF balance ON accounts
             WHEN NEW.id = {account} AND NEW.balance > OLD.balance BEGIN
                 SELECT RAISE(ABORT, 'account {account} is frozen');
             END;"
        ))
        .unwrap();
    }

    /// The ledger refuses rows of `amount` or more, after the debit and the credit ran.
    fn ledger_limit(conn: &Connection, amount: i64) {
        conn.execute_batch(&format!(
            "CREATE TRIGGER ledger_limit BEFORE INSERT ON ledger WHEN NEW.amount >= {amount}
             BEGIN SELECT RAISE(ABORT, 'ledger limit'); END;"
        ))
        .unwrap();
    }

    fn audit_len(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
            .unwrap()
    }

    /// After a failed transfer: the starting balances, no ledger row, no audit row.
    fn assert_untouched(conn: &Connection, what: &str) {
        assert_eq!(
            balances(conn).unwrap(),
            START.to_vec(),
            "{what}: the debit must be undone, expected the starting balances {START:?}"
        );
        assert_eq!(
            ledger_len(conn).unwrap(),
            0,
            "{what}: expected no ledger row"
        );
        assert_eq!(
            audit_len(conn),
            0,
            "{what}: expected no audit row; a debit that was undone by hand (a second UPDATE) \
             is still seen by every reader in between. Roll back instead"
        );
    }

    #[test]
    fn a_transfer_moves_money_and_writes_the_ledger() {
        let cases = [
            (1, 2, 30, "rent", vec![(1, 70), (2, 80), (3, 0)]),
            (2, 3, 50, "invoice 7", vec![(1, 100), (2, 0), (3, 50)]),
        ];
        for (from, to, amount, memo, expected) in cases {
            let mut conn = bank();
            transfer(&mut conn, from, to, amount, memo).expect("a valid transfer succeeds");
            assert_eq!(
                balances(&conn).unwrap(),
                expected,
                "after moving {amount} from {from} to {to}: expected {expected:?} \
                 (was the transaction committed?)"
            );
            assert_eq!(ledger_len(&conn).unwrap(), 1, "expected one ledger row");
            assert_eq!(
                audit_len(&conn),
                2,
                "expected 2 audit rows: debit and credit"
            );
        }
    }

    #[test]
    fn unknown_accounts_change_nothing() {
        for (from, to, unknown) in [(1, 99, 99), (2, 7, 7), (42, 1, 42)] {
            let mut conn = bank();
            let err = transfer(&mut conn, from, to, 30, "rent")
                .expect_err("a transfer with an unknown account fails");
            assert!(
                matches!(err, TransferError::UnknownAccount(id) if id == unknown),
                "expected UnknownAccount({unknown}), got {err:?}"
            );
            assert_untouched(&conn, &format!("transfer from {from} to {to}"));
        }
    }

    #[test]
    fn a_failing_credit_changes_nothing() {
        for (from, to) in [(1, 2), (2, 3)] {
            let mut conn = bank();
            freeze(&conn, to);
            let err = transfer(&mut conn, from, to, 20, "ok")
                .expect_err("the credit of a frozen account fails");
            assert!(
                matches!(err, TransferError::Db(_)),
                "expected a Db error from the frozen account, got {err:?}"
            );
            assert_untouched(&conn, &format!("crediting frozen account {to}"));
        }
    }

    #[test]
    fn a_failing_ledger_insert_changes_nothing() {
        for (from, to, amount, limit) in [(1, 2, 40, 40), (2, 3, 25, 10)] {
            let mut conn = bank();
            ledger_limit(&conn, limit);
            let err = transfer(&mut conn, from, to, amount, "ok")
                .expect_err("the ledger refuses the row");
            assert!(
                matches!(err, TransferError::Db(_)),
                "expected a Db error from the ledger, got {err:?}"
            );
            assert_untouched(&conn, &format!("a ledger insert of {amount} refused"));
        }
        let mut conn = bank();
        let memo = "a memo that is far too long for the ledger";
        let err = transfer(&mut conn, 1, 2, 30, memo).expect_err("the ledger refuses long memos");
        assert!(
            matches!(err, TransferError::Db(_)),
            "expected a Db error, got {err:?}"
        );
        assert_untouched(&conn, "a memo too long for the ledger");
    }

    #[test]
    fn money_is_conserved_and_the_connection_stays_usable() {
        let mut conn = bank();
        freeze(&conn, 2);
        let attempts: [(i64, i64, i64, &str, bool); 7] = [
            (1, 3, 10, "ok", true),
            (3, 2, 5, "frozen", false),
            (2, 42, 5, "unknown", false),
            (3, 1, 11, "overdraft", false),
            (2, 3, 20, "ok", true),
            (1, 3, 5, "this memo is much too long", false),
            (1, 3, 5, "ok", true),
        ];
        for (from, to, amount, memo, ok) in attempts {
            let result = transfer(&mut conn, from, to, amount, memo);
            assert_eq!(
                result.is_ok(),
                ok,
                "transfer {from} -> {to} of {amount} ({memo}): expected ok = {ok}, got \
                 {result:?} (an earlier failure must not leave a transaction open)"
            );
        }
        assert_eq!(
            balances(&conn).unwrap(),
            vec![(1, 85), (2, 30), (3, 35)],
            "only the three valid transfers happened: expected 1: 85, 2: 30, 3: 35"
        );
        assert_eq!(ledger_len(&conn).unwrap(), 3, "expected 3 ledger rows");
        assert_eq!(
            audit_len(&conn),
            6,
            "expected 6 audit rows, 2 per valid transfer"
        );
    }
}
