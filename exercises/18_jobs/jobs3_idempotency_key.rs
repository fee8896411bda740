// jobs3_idempotency_key: a retried request charges once
//
// A client that times out cannot know whether its `POST /charges` went through, so it sends
// it again with the same `Idempotency-Key` header, and the server answers the retry with the
// response it stored the first time. Store `(key, request_hash, response)` with the key
// UNIQUE, in the same transaction as the side effect (the charge): they commit together or
// not at all. Look the key up in that transaction: the same request hash returns the stored
// response; a different one means the key was reused for another request: `409 Conflict`.
//
// Why it matters: a mobile app retried payments on every timeout. The server checked the key,
// charged, then saved the key in a second step; two retries that arrived together both found
// no key, and the customer paid twice.
//
// Production caveat: this relies on SQLite's single writer: after `BEGIN IMMEDIATE`, a racing
// request waits for the lock for its connection's busy timeout (rusqlite sets 5 s when it opens
// one; with none it gets SQLITE_BUSY at once and must retry), and its lookup then sees the
// stored row. The busy timeout is connection setup, not something `submit` sets. In PostgreSQL
// (READ COMMITTED) two transactions can both look up, find nothing and charge; the UNIQUE index
// then fails the second INSERT of the key (after waiting for the first transaction to end), so
// it rolls back, but answers an error, not the stored response. There, insert the key first
// (`INSERT ... ON CONFLICT (key) DO NOTHING`) and charge only if you inserted it.
//
// What to do: in `submit`, run the lookup, the charge and the key's row in one
// `BEGIN IMMEDIATE` transaction, and answer `Conflict` when the stored hash differs.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq)]
pub struct ChargeRequest {
    pub account: String,
    pub amount: i64,
}

/// The response to a charge, with the balance right after it: a retry gets it back unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub charge_id: i64,
    pub balance: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The key was used for another request: `409 Conflict`.
    #[error("this idempotency key was used for a different request")]
    Conflict,
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0));
         CREATE TABLE charges (id INTEGER PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL);
         CREATE TABLE idempotency_keys (
             key TEXT PRIMARY KEY, request_hash TEXT NOT NULL, charge_id INTEGER, balance INTEGER
         );",
    )
}

/// SHA-256 of the request's canonical form, in hex: the request is compared, not stored.
pub fn request_hash(req: &ChargeRequest) -> String {
    let digest = Sha256::digest(format!("{}\n{}", req.account, req.amount));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The side effect: debits the account and records the charge.
fn charge(conn: &Connection, req: &ChargeRequest) -> rusqlite::Result<Receipt> {
    let balance: i64 = conn.query_row(
        "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2 RETURNING balance",
        params![req.amount, req.account],
        |r| r.get(0),
    )?;
    conn.execute(
        "INSERT INTO charges (account, amount) VALUES (?1, ?2)",
        params![req.account, req.amount],
    )?;
    let charge_id = conn.last_insert_rowid();
    Ok(Receipt { charge_id, balance })
}

/// The stored hash and receipt of `key`, if a request with it was charged.
fn lookup(conn: &Connection, key: &str) -> rusqlite::Result<Option<(String, Receipt)>> {
    let sql = "SELECT request_hash, charge_id, balance FROM idempotency_keys WHERE key = ?1";
    conn.query_row(sql, [key], |r| {
        let receipt = Receipt {
            charge_id: r.get(1)?,
            balance: r.get(2)?,
        };
        Ok((r.get(0)?, receipt))
    })
    .optional()
}

/// Charges `req` once per `key`: a retry with the same key gets the first receipt back.
pub fn submit(
    conn: &mut Connection,
    key: &str,
    req: &ChargeRequest,
) -> Result<Receipt, SubmitError> {
    let hash = request_hash(req);
    // TODO: a racing retry can pass the lookup before this request stores its key, and a
    // failure after the charge leaves it charged with no key. Run the three steps in one
    // `BEGIN IMMEDIATE` transaction, and refuse a stored key whose hash differs.
    if let Some((_stored_hash, receipt)) = lookup(conn, key)? {
        return Ok(receipt);
    }
    let receipt = charge(conn, req)?;
    conn.execute(
        "INSERT INTO idempotency_keys VALUES (?1, ?2, ?3, ?4)",
        params![key, hash, receipt.charge_id, receipt.balance],
    )?;
    Ok(receipt)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Duration;

    fn req(account: &str, amount: i64) -> ChargeRequest {
        ChargeRequest {
            account: account.to_string(),
            amount,
        }
    }

    fn setup(conn: &Connection) {
        migrate(conn).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (id, balance) VALUES ('alice', 100), ('bob', 50), ('carol', 20);",
        )
        .unwrap();
    }

    fn bank() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        setup(&conn);
        conn
    }

    fn charges(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM charges", [], |r| r.get(0))
            .unwrap()
    }

    fn balance(conn: &Connection, account: &str) -> i64 {
        let sql = "SELECT balance FROM accounts WHERE id = ?1";
        conn.query_row(sql, [account], |r| r.get(0)).unwrap()
    }

    fn keys(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM idempotency_keys", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_retry_with_the_same_key_and_body_gets_the_stored_receipt() {
        for (key, account, amount, other) in
            [("k-1", "alice", 30, "bob"), ("7f3a", "bob", 45, "alice")]
        {
            let mut conn = bank();
            let start = balance(&conn, account);
            let first =
                submit(&mut conn, key, &req(account, amount)).expect("the first submit charges");
            assert_eq!(
                first,
                Receipt {
                    charge_id: 1,
                    balance: start - amount
                },
                "first charge of {amount} on {account}"
            );
            // Another charge on the same account moves its balance on.
            let second = submit(&mut conn, "another key", &req(account, 1)).unwrap();
            assert_eq!(
                second,
                Receipt {
                    charge_id: 2,
                    balance: start - amount - 1
                }
            );
            submit(&mut conn, "third key", &req(other, 2)).unwrap();
            for retry in 1..=2 {
                let again =
                    submit(&mut conn, key, &req(account, amount)).expect("a retry succeeds");
                assert_eq!(
                    again, first,
                    "retry {retry} with key {key:?}: expected the stored receipt {first:?} (the balance as it was then), not a new charge or a recomputed one"
                );
            }
            assert_eq!(
                charges(&conn),
                3,
                "3 distinct keys: expected 3 charges, retries charge nothing"
            );
            assert_eq!(
                balance(&conn, account),
                start - amount - 1,
                "{account} is debited once for key {key:?}"
            );
        }
    }

    #[test]
    fn the_same_key_with_a_different_body_is_409() {
        for (key, account, amount) in [("k-1", "alice", 30), ("order-9", "bob", 45)] {
            let mut conn = bank();
            let first = submit(&mut conn, key, &req(account, amount)).unwrap();
            for other in [
                req(account, amount + 1),
                req("carol", amount),
                req(account, amount - 1),
            ] {
                let result = submit(&mut conn, key, &other);
                assert!(
                    matches!(result, Err(SubmitError::Conflict)),
                    "key {key:?} was used for {account} {amount}, then for {other:?}: expected \
                     Err(Conflict), answered with 409; got {result:?}"
                );
            }
            assert_eq!(charges(&conn), 1, "only the first request charged");
            let again = submit(&mut conn, key, &req(account, amount)).unwrap();
            assert_eq!(again, first, "the original request still gets its receipt");
        }
    }

    #[test]
    fn the_key_is_stored_with_a_sha256_of_the_request() {
        let cases = [
            (
                "alice",
                30,
                "ea4bb790d23e79cadc9909a1c43a0fdccea3f11924d84d7f217828427fa3b479",
            ),
            (
                "bob",
                45,
                "564518f08c22bba62f3c1e6b51872488bb3c406cb51161dcdb3cc1c46d0e142b",
            ),
        ];
        for (account, amount, expected) in cases {
            let mut conn = bank();
            submit(&mut conn, "k", &req(account, amount)).unwrap();
            let sql = "SELECT request_hash FROM idempotency_keys WHERE key = 'k'";
            let stored: String = conn.query_row(sql, [], |r| r.get(0)).unwrap();
            assert_eq!(
                stored, expected,
                "expected the hex SHA-256 of \"{account}\\n{amount}\", not the request itself"
            );
        }
    }

    /// Makes the insert of `key`'s row fail, after the charge ran.
    fn break_key(conn: &Connection, key: &str) {
        conn.execute_batch(&format!(
            "CREATE TRIGGER broken BEFORE INSERT ON idempotency_keys WHEN NEW.key = '{key}'
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
        ))
        .unwrap();
    }

    #[test]
    fn a_failed_request_charges_nothing_and_leaves_the_key_free() {
        for (key, account, amount) in [("k-1", "alice", 30), ("k-2", "bob", 45)] {
            let mut conn = bank();
            let start = balance(&conn, account);
            break_key(&conn, key);
            let err =
                submit(&mut conn, key, &req(account, amount)).expect_err("storing the key fails");
            assert!(
                matches!(err, SubmitError::Db(_)),
                "expected a Db error, got {err:?}"
            );
            assert_eq!(
                (charges(&conn), balance(&conn, account)),
                (0, start),
                "the key could not be stored: the charge must roll back with it"
            );
            conn.execute_batch("DROP TRIGGER broken").unwrap();
            let ok = submit(&mut conn, key, &req(account, amount)).expect("the retry charges");
            assert_eq!(ok.balance, start - amount);
            assert_eq!(charges(&conn), 1, "charged once");
        }
        // A charge that fails (carol has 20) stores no key: after a top-up the retry charges.
        let mut conn = bank();
        let err = submit(&mut conn, "k-3", &req("carol", 25)).expect_err("carol cannot pay 25");
        assert!(
            matches!(err, SubmitError::Db(_)),
            "expected a Db error, got {err:?}"
        );
        assert_eq!(keys(&conn), 0, "a failed charge stores no key");
        conn.execute_batch("UPDATE accounts SET balance = 40 WHERE id = 'carol'")
            .unwrap();
        let ok =
            submit(&mut conn, "k-3", &req("carol", 25)).expect("after a top-up the retry charges");
        assert_eq!(
            ok,
            Receipt {
                charge_id: 1,
                balance: 15
            }
        );
    }

    #[test]
    fn a_failure_inside_the_charge_rolls_back_the_debit() {
        for (key, account, amount) in [("k-1", "alice", 30), ("k-2", "bob", 45)] {
            let mut conn = bank();
            let start = balance(&conn, account);
            // The debit runs, then recording the charge fails.
            conn.execute_batch(
                "CREATE TRIGGER broken BEFORE INSERT ON charges
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
            let err = submit(&mut conn, key, &req(account, amount))
                .expect_err("recording the charge fails");
            assert!(
                matches!(err, SubmitError::Db(_)),
                "expected a Db error, got {err:?}"
            );
            assert_eq!(
                (balance(&conn, account), keys(&conn)),
                (start, 0),
                "{account} was debited, then recording the charge failed: expected the balance \
                 back at {start} and no key (debit, charge and key commit together or not at all)"
            );
            conn.execute_batch("DROP TRIGGER broken").unwrap();
            let ok = submit(&mut conn, key, &req(account, amount)).expect("the retry charges");
            let expected = Receipt {
                charge_id: 1,
                balance: start - amount,
            };
            assert_eq!(ok, expected, "the retry charges once");
        }
    }

    static NEXT: AtomicU32 = AtomicU32::new(0);

    /// A database file of its own, in WAL mode, removed on drop.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new() -> TempDb {
            let n = NEXT.fetch_add(1, Ordering::SeqCst);
            let path = std::env::temp_dir().join(format!("jobs3-{}-{n}.db", std::process::id()));
            let db = TempDb(path);
            db.remove();
            let conn = open(&db.0);
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            setup(&conn);
            db
        }
        fn open(&self) -> Connection {
            open(&self.0)
        }
        fn remove(&self) {
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", self.0.display()));
            }
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            self.remove();
        }
    }

    /// A connection with no busy timeout: a locked database answers SQLITE_BUSY at once.
    fn open(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.busy_timeout(Duration::ZERO).unwrap();
        conn
    }

    /// What a third connection sees: (key rows, key rows whose charge exists, charges).
    fn snapshot(path: &Path) -> Result<(i64, i64, i64), String> {
        let sql = "SELECT (SELECT count(*) FROM idempotency_keys),
            (SELECT count(*) FROM idempotency_keys WHERE charge_id IN (SELECT id FROM charges)),
            (SELECT count(*) FROM charges)";
        let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
        open(path)
            .query_row(sql, [], row)
            .map_err(|e| e.to_string())
    }

    type Outcome = Result<Receipt, SubmitError>;
    type Seen = Result<(i64, i64, i64), String>;

    /// Request A with `key` runs on one connection. Right after A has read the keys table,
    /// at the next statement A prepares, a third connection takes a snapshot, then request B
    /// with the same key runs to its end on a second connection while A waits: two requests in
    /// flight, B arriving just after A's lookup. Returns A's and B's outcomes and the snapshot.
    fn race(
        db: &TempDb,
        key: &str,
        a: ChargeRequest,
        b: ChargeRequest,
    ) -> (Outcome, Outcome, Option<Seen>) {
        let mut conn_a = db.open();
        let mut conn_b = Some(db.open());
        let during = Arc::new(Mutex::new(None));
        let (slot, key_b, b_after, path) =
            (during.clone(), key.to_string(), b.clone(), db.0.clone());
        let mut looked_up = false;
        let hook = move |ctx: AuthContext<'_>| {
            match ctx.action {
                AuthAction::Read {
                    table_name: "idempotency_keys",
                    ..
                }
                | AuthAction::Insert {
                    table_name: "idempotency_keys",
                } => looked_up = true,
                _ if looked_up => {
                    if let Some(mut conn) = conn_b.take() {
                        let seen = snapshot(&path);
                        let (done, out) = mpsc::channel();
                        let (key, b) = (key_b.clone(), b.clone());
                        std::thread::spawn(move || done.send(submit(&mut conn, &key, &b)));
                        let out_b = out.recv_timeout(Duration::from_secs(2)).ok();
                        *slot.lock().unwrap() = Some((seen, out_b));
                    }
                }
                _ => {}
            }
            Authorization::Allow
        };
        conn_a.authorizer(Some(hook)).unwrap();
        let out_a = submit(&mut conn_a, key, &a);
        conn_a
            .authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
            .unwrap();
        let Some((seen, out_b)) = during.lock().unwrap().take() else {
            // Code that never touched the keys table before its last statement meets B afterwards.
            return (out_a, submit(&mut db.open(), key, &b_after), None);
        };
        let out_b = out_b.expect(
            "request B was still waiting 2 s after it arrived, while A sat between its lookup and \
             its next step: the test runs B there and A goes on only when B is done. The test \
             opens its connections with no busy timeout, so a locked database answers \
             SQLITE_BUSY at once; a busy timeout set in `submit` makes B wait for A's lock. Set \
             it where connections are opened, not in `submit`. (A Mutex around `submit` waits \
             here too, and would only serialise one process, not two servers sharing the database.)",
        );
        (out_a, out_b, Some(seen))
    }

    #[test]
    fn two_racing_requests_with_one_key_charge_once() {
        let cases = [
            ("k-1", req("alice", 30), req("alice", 30)),
            ("k-2", req("bob", 45), req("bob", 44)),
        ];
        for (key, a, b) in cases {
            let db = TempDb::new();
            let (out_a, out_b, seen) = race(&db, key, a.clone(), b.clone());
            if let Some(seen) = seen {
                assert!(
                    matches!(seen, Ok((k, m, c)) if k == m && m == c),
                    "while A was in flight, a third connection saw (key rows, key rows with their \
                     charge, charges) = {seen:?}: expected them equal (none of A yet, or all of it). \
                     A key without its charge means they were not committed in one transaction; \
                     an error means readers were locked out"
                );
            }
            if let Ok(receipt) = &out_b {
                assert!(
                    a == b && out_a.as_ref().ok() == Some(receipt),
                    "request B got {receipt:?} while A got {out_a:?}: a receipt for B must be A's \
                     stored one, and only for the same body (never a made-up \"in progress\" one)"
                );
            }
            let mut conn = db.open();
            assert_eq!(
                charges(&conn),
                1,
                "request B with key {key:?} arrived right after A's lookup: expected 1 charge \
                 (A: {out_a:?}, B: {out_b:?})"
            );
            for (name, out) in [("A", &out_a), ("B", &out_b)] {
                let waited = matches!(out, Err(SubmitError::Db(rusqlite::Error::SqliteFailure(e, _)))
                    if e.extended_code == 5);
                assert!(
                    out.is_ok() || waited,
                    "request {name}: expected a receipt, or plain SQLITE_BUSY (code 5: \"wait and retry\", \
                     which a busy timeout waits out); got {out:?}. A UNIQUE violation means the lookup \
                     ran outside the transaction; SQLITE_BUSY_SNAPSHOT (517), that the transaction \
                     took its write lock too late (BEGIN IMMEDIATE)"
                );
            }
            // Both clients retry once the dust has settled.
            let first = submit(&mut conn, key, &a).expect("A's retry gets the stored receipt");
            let second = submit(&mut conn, key, &b);
            if a == b {
                assert_eq!(
                    second.ok(),
                    Some(first.clone()),
                    "B sent the same body: expected A's receipt {first:?}"
                );
            } else {
                assert!(
                    matches!(second, Err(SubmitError::Conflict)),
                    "B sent another body with key {key:?}: expected Conflict, got {second:?}"
                );
            }
            assert_eq!(charges(&conn), 1, "retries charge nothing");
        }
    }
}
