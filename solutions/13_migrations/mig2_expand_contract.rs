// mig2_expand_contract: change a live schema in steps that old and new code both survive
//
// During a rolling deploy, old and new code run side by side on one database, so a schema
// change cannot break either. Expand/contract splits it: (1) expand: add what the new code
// needs without breaking the old (a nullable column: old INSERTs that do not name it still
// work); (2) backfill the existing rows in small batches, each its own short transaction, so
// no write lock is held for the whole table; (3) switch reads to the new column; (4) contract:
// drop the old shape, but only once every row is backfilled. The batches walk the primary key
// (keyset: `WHERE id > last ORDER BY id LIMIT 100`), so each one starts where the last stopped,
// never re-reading rows already filled (every batch costs the same, the whole run is linear),
// and rows that old code inserts meanwhile, with higher ids, are met by a later batch.
//
// Why it matters: one `UPDATE users SET email_norm = lower(email)` over 40 million rows held
// the write lock for minutes, and every signup timed out until it finished.
//
// Production caveat: on PostgreSQL 11 and later, `ALTER TABLE ... ADD COLUMN` with a non-volatile
// default (or none) is metadata-only and does not rewrite the table; a volatile default still
// rewrites it (PostgreSQL manual, ALTER TABLE, Notes). It still takes an ACCESS EXCLUSIVE lock
// for that moment, so set a `lock_timeout`. In SQLite, ADD COLUMN edits the schema text only
// (https://sqlite.org/lang_altertable.html), but a writer anywhere blocks every other writer.
//
// What to do: write `EXPAND` and the keyset-batched `backfill`, 100 rows per transaction,
// calling `after_batch` after each commit, until no row is left.

use rusqlite::Connection;

pub const BATCH: i64 = 100;

pub const SCHEMA: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);";

/// Step 1: the new column, added so that old code keeps working.
pub const EXPAND: &str = "ALTER TABLE users ADD COLUMN email_norm TEXT;";

/// Step 2: fills `email_norm` for every row, in batches of `BATCH` rows in id order, one
/// transaction per batch; calls `after_batch` after each commit. Returns the number of batches.
pub fn backfill(
    conn: &mut Connection,
    after_batch: &mut dyn FnMut(&Connection),
) -> rusqlite::Result<usize> {
    let mut last = 0_i64;
    let mut batches = 0;
    loop {
        let tx = conn.transaction()?;
        // Keyset: start after the last id done; new rows from old code come later in id order.
        let ids: Vec<i64> = tx
            .prepare(
                "SELECT id FROM users WHERE id > ?1 AND email_norm IS NULL ORDER BY id LIMIT ?2",
            )?
            .query_map((last, BATCH), |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let Some(&end) = ids.last() else { break };
        tx.execute(
            "UPDATE users SET email_norm = lower(trim(email)) WHERE id > ?1 AND id <= ?2",
            (last, end),
        )?;
        tx.commit()?;
        last = end;
        batches += 1;
        after_batch(conn);
    }
    Ok(batches)
}

/// Step 3: the new code reads the new column.
pub fn find_id(conn: &Connection, email: &str) -> rusqlite::Result<Option<i64>> {
    let sql = "SELECT id FROM users WHERE email_norm = lower(trim(?1))";
    match conn.query_row(sql, [email], |r| r.get(0)) {
        Ok(id) => Ok(Some(id)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug)]
pub enum ContractError {
    /// This many rows still have no `email_norm`: contracting now would lose them.
    NotBackfilled(i64),
    Sql(rusqlite::Error),
}

/// Step 4: drops the old column, once no row needs it.
pub fn contract(conn: &mut Connection) -> Result<(), ContractError> {
    let tx = conn.transaction().map_err(ContractError::Sql)?;
    let missing: i64 = tx
        .query_row(
            "SELECT count(*) FROM users WHERE email_norm IS NULL",
            [],
            |r| r.get(0),
        )
        .map_err(ContractError::Sql)?;
    if missing > 0 {
        return Err(ContractError::NotBackfilled(missing));
    }
    tx.execute_batch("ALTER TABLE users DROP COLUMN email;")
        .map_err(ContractError::Sql)?;
    tx.commit().map_err(ContractError::Sql)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    /// What the old release does, unchanged during the whole migration.
    fn old_insert(conn: &Connection, email: &str) -> i64 {
        conn.execute("INSERT INTO users (email) VALUES (?1)", [email])
            .expect("old code's INSERT, which does not name email_norm, still works");
        conn.last_insert_rowid()
    }

    fn old_find(conn: &Connection, email: &str) -> i64 {
        conn.query_row("SELECT id FROM users WHERE email = ?1", [email], |r| {
            r.get(0)
        })
        .expect("old code's SELECT still works")
    }

    fn db(rows: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        for i in 1..=rows {
            old_insert(&conn, &format!(" User{i}@Example.COM "));
        }
        conn
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn missing(conn: &Connection) -> i64 {
        count(conn, "SELECT count(*) FROM users WHERE email_norm IS NULL")
    }

    #[test]
    fn the_old_code_still_works_after_expand() {
        for rows in [3, 250] {
            let conn = db(rows);
            conn.execute_batch(EXPAND).expect("EXPAND runs");
            assert_eq!(
                old_find(&conn, " User2@Example.COM "),
                2,
                "old SELECT finds row 2"
            );
            let id = old_insert(&conn, "new@example.com");
            assert_eq!(id, rows as i64 + 1, "old INSERT appends row {}", rows + 1);
            assert_eq!(
                missing(&conn),
                rows as i64 + 1,
                "expand adds an empty (NULL) column"
            );
        }
    }

    #[test]
    fn the_backfill_runs_in_batches_of_100_each_committed() {
        for (rows, want) in [(250, 3), (1000, 10)] {
            let mut conn = db(rows);
            conn.execute_batch(EXPAND).unwrap();
            let mut seen = 0_i64;
            let batches = backfill(&mut conn, &mut |c: &Connection| {
                seen += 1;
                assert!(
                    c.is_autocommit(),
                    "batch {seen}: its transaction is committed"
                );
                let done = (seen * 100).min(rows as i64);
                assert_eq!(
                    rows as i64 - missing(c),
                    done,
                    "after batch {seen} of {rows} rows, expected {done} rows backfilled"
                );
            })
            .expect("backfill succeeds");
            assert_eq!(
                (batches, seen),
                (want, want as i64),
                "{rows} rows: ⌈{rows}/100⌉ = {want} batches"
            );
            assert_eq!(missing(&conn), 0, "every row is backfilled");
            assert_eq!(
                find_id(&conn, "user77@example.com").unwrap(),
                Some(77),
                "the new read finds row 77"
            );
        }
    }

    #[test]
    fn each_batch_is_one_commit_and_costs_the_same_however_far_the_backfill_got() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        for (rows, want) in [(1000, 10), (1500, 15)] {
            let mut conn = db(rows);
            conn.execute_batch(EXPAND).unwrap();
            let (commits, steps) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let (c2, s2) = (commits.clone(), steps.clone());
            conn.commit_hook(Some(move || {
                c2.fetch_add(1, SeqCst);
                false
            }))
            .unwrap();
            conn.progress_handler(
                1,
                Some(move || {
                    s2.fetch_add(1, SeqCst);
                    false
                }),
            )
            .unwrap();
            let mut per_batch = Vec::new();
            let mut before = 0;
            let batches = backfill(&mut conn, &mut |_: &Connection| {
                let now = steps.load(SeqCst);
                per_batch.push(now - before);
                before = now;
            })
            .unwrap();
            assert_eq!(batches, want, "{rows} rows: {want} batches");
            let got = commits.load(SeqCst);
            assert_eq!(
                got, want,
                "{rows} rows: expected {want} commits, one per batch of 100 rows; got {got}"
            );
            let (first, worst) = (per_batch[0], *per_batch.iter().max().unwrap());
            assert!(
                worst <= first * 2,
                "{rows} rows: the first batch took {first} VM steps but one took {worst}; a \
                 batch must start after the last id done (keyset), not re-read the rows \
                 already filled, so every batch costs about the same: {per_batch:?}"
            );
        }
    }

    #[test]
    fn rows_inserted_by_old_code_during_the_backfill_are_backfilled() {
        for (rows, extra) in [(250, 5), (300, 120)] {
            let mut conn = db(rows);
            conn.execute_batch(EXPAND).unwrap();
            let mut batch = 0;
            backfill(&mut conn, &mut |c: &Connection| {
                batch += 1;
                // The old release keeps taking signups, even during the last batch.
                if batch == rows.div_ceil(100) {
                    for i in 0..extra {
                        old_insert(c, &format!("Late{i}@X.org"));
                    }
                }
            })
            .unwrap();
            assert_eq!(
                missing(&conn),
                0,
                "the {extra} late rows are backfilled too"
            );
            let id = (rows + extra) as i64;
            let last = format!("late{}@x.org", extra - 1);
            assert_eq!(
                find_id(&conn, &last).unwrap(),
                Some(id),
                "{last} is row {id}"
            );
        }
    }

    #[test]
    fn contract_refuses_while_a_row_is_not_backfilled() {
        for (rows, late) in [(120, 1), (30, 4)] {
            let mut conn = db(rows);
            conn.execute_batch(EXPAND).unwrap();
            match contract(&mut conn) {
                Err(ContractError::NotBackfilled(n)) => assert_eq!(n, rows as i64),
                other => {
                    panic!("before the backfill: expected NotBackfilled({rows}), got {other:?}")
                }
            }
            backfill(&mut conn, &mut |_: &Connection| {}).unwrap();
            for i in 0..late {
                old_insert(&conn, &format!("after{i}@x.org"));
            }
            match contract(&mut conn) {
                Err(ContractError::NotBackfilled(n)) => assert_eq!(n, late, "{late} late rows"),
                other => panic!(
                    "{late} rows inserted after the backfill: expected NotBackfilled({late}), got {other:?}"
                ),
            }
            assert_eq!(
                old_find(&conn, "after0@x.org"),
                rows as i64 + 1,
                "the old column is still there"
            );
            assert_eq!(
                backfill(&mut conn, &mut |_: &Connection| {}).unwrap(),
                1,
                "one batch for the late rows"
            );
            contract(&mut conn).expect("every row backfilled: contract runs");
            assert_eq!(
                count(
                    &conn,
                    "SELECT count(*) FROM pragma_table_info('users') WHERE name = 'email'"
                ),
                0,
                "email dropped"
            );
            assert_eq!(
                find_id(&conn, "USER3@example.com").unwrap(),
                Some(3),
                "the new read still works"
            );
        }
    }
}
