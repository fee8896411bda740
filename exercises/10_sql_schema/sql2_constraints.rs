// sql2_constraints: the schema is the last line of defence
//
// Checks in Rust protect one code path. A migration script, an admin's SQL console, a second
// service or next year's rewrite all write to the same tables without going through it. The
// schema is the one place every write must pass: `NOT NULL` for what must be there, `UNIQUE`
// for what must not repeat, `CHECK` for the rules of a value, and `FOREIGN KEY ... ON DELETE
// CASCADE` for rows that cannot outlive their parent. A refused write is an error with an
// extended code (`SQLITE_CONSTRAINT_UNIQUE`, `_CHECK`, `_FOREIGNKEY`, `_NOTNULL`), which the
// Rust code below turns into a domain error.
//
// Why it matters: a signup form checked that an email was free, then inserted it. Two clicks
// in the same second passed the check twice and made two accounts for one person. A UNIQUE
// index is the simplest sure way to close that race: the database checks and writes in one step.
//
// Limits of these rules: UNIQUE compares bytes (collation BINARY), so `Z@x` and `z@X` are two
// emails unless you store them lowercased or declare `COLLATE NOCASE`; a CHECK on `quantity >= 1`
// still takes `'lots'` in a table that is not STRICT (text sorts after numbers: the quiz closes
// that). A trigger could cascade deletes too; `ON DELETE CASCADE` says it in one clause.
//
// Production caveat: SQLite does not enforce foreign keys unless each connection runs
// `PRAGMA foreign_keys = ON` (https://sqlite.org/foreignkeys.html, section 2). The SQLite that
// rusqlite's `bundled` feature compiles turns them on by default (SQLITE_DEFAULT_FOREIGN_KEYS=1;
// this build reports 1), the SQLite of your OS does not, so say it explicitly. The pragma is a
// no-op inside a transaction. PostgreSQL enforces foreign keys on every connection, with no
// pragma to remember.
//
// What to do: complete `SCHEMA`: emails required and unique, names required, quantities at
// least 1, orders that need an existing user and vanish with it; and switch foreign keys on.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, ffi};

// TODO: this schema accepts anything. Add the rules from the header, and switch foreign keys
// on for the connection first.
pub const SCHEMA: &str = "
    CREATE TABLE users (
        id    INTEGER PRIMARY KEY,
        email TEXT,
        name  TEXT
    );
    CREATE TABLE orders (
        id       INTEGER PRIMARY KEY,
        user_id  INTEGER,
        quantity INTEGER
    );
";

pub fn init(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

#[derive(Debug, PartialEq)]
pub enum ShopError {
    DuplicateEmail,
    InvalidQuantity,
    UnknownUser,
    Other(String),
}

/// Tells the constraints apart by their extended result code.
fn classify(err: rusqlite::Error) -> ShopError {
    match err.sqlite_error().map(|e| e.extended_code) {
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE) => ShopError::DuplicateEmail,
        Some(ffi::SQLITE_CONSTRAINT_CHECK) => ShopError::InvalidQuantity,
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => ShopError::UnknownUser,
        _ => ShopError::Other(err.to_string()),
    }
}

pub fn add_user(conn: &Connection, email: &str, name: &str) -> Result<i64, ShopError> {
    let sql = "INSERT INTO users (email, name) VALUES (?1, ?2)";
    conn.execute(sql, (email, name)).map_err(classify)?;
    Ok(conn.last_insert_rowid())
}

pub fn add_order(conn: &Connection, user_id: i64, quantity: i64) -> Result<i64, ShopError> {
    let sql = "INSERT INTO orders (user_id, quantity) VALUES (?1, ?2)";
    conn.execute(sql, (user_id, quantity)).map_err(classify)?;
    Ok(conn.last_insert_rowid())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    /// A connection that starts the way the SQLite of an OS does: foreign keys off.
    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        init(&conn).expect("SCHEMA runs");
        conn
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// Runs SQL the way a script or a console would, bypassing `add_user` and `add_order`,
    /// and returns the extended result code of the refusal.
    fn refused(conn: &Connection, sql: &str, name: &str, wanted: i32) {
        match conn.execute_batch(sql) {
            Ok(()) => panic!("{sql}\nwas accepted: the schema must refuse it with {name}"),
            Err(e) => {
                let code = e.sqlite_error().map(|e| e.extended_code);
                assert_eq!(
                    code,
                    Some(wanted),
                    "{sql}\nexpected {name} ({wanted}), got {e}"
                );
            }
        }
    }

    #[test]
    fn a_duplicate_email_is_refused_by_the_schema() {
        for (email, other) in [("ann@example.com", "bob@example.com"), ("x@y.z", "y@y.z")] {
            let conn = db();
            add_user(&conn, email, "First").unwrap();
            assert_eq!(
                add_user(&conn, email, "Second"),
                Err(ShopError::DuplicateEmail),
                "{email} is taken: expected DuplicateEmail from the UNIQUE constraint"
            );
            refused(
                &conn,
                &format!("INSERT INTO users (email, name) VALUES ('{email}', 'Script')"),
                "SQLITE_CONSTRAINT_UNIQUE",
                ffi::SQLITE_CONSTRAINT_UNIQUE,
            );
            assert_eq!(
                add_user(&conn, other, "First"),
                Ok(2),
                "another email is fine"
            );
            assert_eq!(count(&conn, "users"), 2, "expected 2 users");
        }
    }

    #[test]
    fn a_quantity_below_one_is_refused_by_the_schema() {
        for (bad, good) in [(0, 1), (-3, 7)] {
            let conn = db();
            let user = add_user(&conn, "ann@example.com", "Ann").unwrap();
            assert_eq!(
                add_order(&conn, user, bad),
                Err(ShopError::InvalidQuantity),
                "quantity {bad}: expected InvalidQuantity"
            );
            refused(
                &conn,
                &format!("INSERT INTO orders (user_id, quantity) VALUES ({user}, {bad})"),
                "SQLITE_CONSTRAINT_CHECK",
                ffi::SQLITE_CONSTRAINT_CHECK,
            );
            assert_eq!(
                add_order(&conn, user, good),
                Ok(1),
                "quantity {good} is fine"
            );
            refused(
                &conn,
                &format!("UPDATE orders SET quantity = {bad}"),
                "SQLITE_CONSTRAINT_CHECK",
                ffi::SQLITE_CONSTRAINT_CHECK,
            );
            let kept: i64 = conn
                .query_row("SELECT quantity FROM orders", [], |r| r.get(0))
                .unwrap();
            assert_eq!(kept, good, "the refused UPDATE left quantity {good}");
        }
    }

    #[test]
    fn an_order_for_an_unknown_user_is_refused_by_the_schema() {
        for (user, ghost) in [(1, 2), (1, 999)] {
            let conn = db();
            assert_eq!(
                add_user(&conn, "ann@example.com", "Ann"),
                Ok(user),
                "the first user of an empty table gets id {user}"
            );
            assert_eq!(
                add_order(&conn, ghost, 1),
                Err(ShopError::UnknownUser),
                "user {ghost} does not exist: expected UnknownUser (are foreign keys on?)"
            );
            refused(
                &conn,
                &format!("INSERT INTO orders (user_id, quantity) VALUES ({ghost}, 2)"),
                "SQLITE_CONSTRAINT_FOREIGNKEY",
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
            );
            assert_eq!(add_order(&conn, user, 2), Ok(1), "user {user} can order");
            refused(
                &conn,
                &format!("UPDATE orders SET user_id = {ghost}"),
                "SQLITE_CONSTRAINT_FOREIGNKEY",
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
            );
        }
    }

    #[test]
    fn missing_values_are_refused_by_the_schema() {
        let conn = db();
        add_user(&conn, "ann@example.com", "Ann").unwrap();
        for sql in [
            "INSERT INTO users (name) VALUES ('No Email')",
            "INSERT INTO users (email) VALUES ('noname@example.com')",
            "INSERT INTO orders (quantity) VALUES (1)",
            "INSERT INTO orders (user_id) VALUES (1)",
        ] {
            refused(
                &conn,
                sql,
                "SQLITE_CONSTRAINT_NOTNULL",
                ffi::SQLITE_CONSTRAINT_NOTNULL,
            );
        }
        assert_eq!(count(&conn, "users"), 1, "only Ann was stored");
        assert_eq!(count(&conn, "orders"), 0, "no order was stored");
    }

    #[test]
    fn deleting_a_user_deletes_their_orders() {
        for (ann_orders, bob_orders) in [(2, 1), (1, 3)] {
            let conn = db();
            let ann = add_user(&conn, "ann@example.com", "Ann").unwrap();
            let bob = add_user(&conn, "bob@example.com", "Bob").unwrap();
            for _ in 0..ann_orders {
                add_order(&conn, ann, 1).unwrap();
            }
            for _ in 0..bob_orders {
                add_order(&conn, bob, 2).unwrap();
            }
            conn.execute("DELETE FROM users WHERE id = ?1", [ann])
                .expect("deleting a user with orders succeeds (ON DELETE CASCADE)");
            let left: Vec<i64> = conn
                .prepare("SELECT user_id FROM orders")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(
                left,
                vec![bob; bob_orders],
                "Ann's {ann_orders} orders go with her; Bob's {bob_orders} stay"
            );
        }
    }

    #[test]
    fn init_switches_foreign_keys_on() {
        let conn = db();
        let on: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            on, 1,
            "after init, PRAGMA foreign_keys must be 1 even on a connection that started with 0"
        );
    }
}
