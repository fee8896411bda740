// mutant: commits after the credit, then inserts the ledger row outside the transaction; a_failing_ledger_insert_changes_nothing expects the starting balances
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
// a week finding the missing money by hand.
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
    // Every statement runs on `tx`. An early return drops `tx`, which rolls everything back.
    let tx = conn.transaction()?;
    let debited = tx.execute(
        "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2",
        params![amount, from],
    )?;
    if debited == 0 {
        return Err(TransferError::UnknownAccount(from));
    }
    let credited = tx.execute(
        "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2",
        params![amount, to],
    )?;
    if credited == 0 {
        return Err(TransferError::UnknownAccount(to));
    }
    tx.commit()?;
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

    #[test]
    fn a_transfer_moves_money_and_writes_the_ledger() {
        let mut conn = open().unwrap();
        transfer(&mut conn, 1, 2, 30, "rent").expect("a valid transfer succeeds");
        assert_eq!(
            balances(&conn).unwrap(),
            vec![(1, 70), (2, 80), (3, 0)],
            "expected 1: 70, 2: 80 after moving 30 (was the transaction committed?)"
        );
        assert_eq!(ledger_len(&conn).unwrap(), 1, "expected one ledger row");
    }

    #[test]
    fn an_unknown_destination_changes_nothing() {
        let mut conn = open().unwrap();
        let err = transfer(&mut conn, 1, 99, 30, "rent").expect_err("account 99 does not exist");
        assert!(
            matches!(err, TransferError::UnknownAccount(99)),
            "expected UnknownAccount(99), got {err:?}"
        );
        assert_eq!(
            balances(&conn).unwrap(),
            START.to_vec(),
            "the debit of account 1 must be undone: expected the starting balances"
        );
        assert_eq!(ledger_len(&conn).unwrap(), 0, "expected no ledger row");
    }

    #[test]
    fn a_failing_ledger_insert_changes_nothing() {
        let mut conn = open().unwrap();
        let memo = "a memo that is far too long for the ledger";
        let err = transfer(&mut conn, 1, 2, 30, memo).expect_err("the ledger refuses long memos");
        assert!(
            matches!(err, TransferError::Db(_)),
            "expected a Db error, got {err:?}"
        );
        assert_eq!(
            balances(&conn).unwrap(),
            START.to_vec(),
            "the debit and the credit must be undone: expected the starting balances"
        );
    }

    #[test]
    fn money_is_conserved_and_the_connection_stays_usable() {
        let mut conn = open().unwrap();
        let attempts: [(i64, i64, i64, &str); 6] = [
            (1, 2, 10, "ok"),
            (2, 42, 5, "unknown"),
            (3, 1, 1, "overdraft"),
            (2, 3, 20, "ok"),
            (1, 3, 5, "this memo is much too long"),
            (1, 3, 5, "ok"),
        ];
        for (from, to, amount, memo) in attempts {
            let _ = transfer(&mut conn, from, to, amount, memo);
        }
        let total: i64 = balances(&conn).unwrap().iter().map(|(_, b)| b).sum();
        assert_eq!(
            total, 150,
            "money is neither created nor destroyed: expected 150 in total"
        );
        assert_eq!(
            balances(&conn).unwrap(),
            vec![(1, 85), (2, 40), (3, 25)],
            "only the three valid transfers happened: expected 1: 85, 2: 40, 3: 25"
        );
        assert_eq!(ledger_len(&conn).unwrap(), 3, "expected 3 ledger rows");
    }
}
