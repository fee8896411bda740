// tx3_snapshot_reads: one report, one snapshot
//
// A report runs two statements: `count(*)` and `sum(amount)`. Run bare, each statement is its
// own transaction and sees the database as of its own start, so a writer that commits between
// them makes the report lie: 3 orders that add up to 4 orders' money. In WAL mode a reader
// never blocks a writer and is never blocked by one; instead a read transaction keeps reading
// the one snapshot it started with, whatever commits meanwhile. So: open a transaction, run
// both reads in it, finish it. A DEFERRED transaction (rusqlite's `conn.transaction()`) takes
// its snapshot at its first read, not at BEGIN (sqlite.org/isolation.html, lang_transaction.html).
//
// Why it matters: a finance dashboard showed "average order value" as sum / count from two
// queries. At the end-of-month batch, imports committed between the two, and the average
// jumped by a third for a few seconds, long enough for a screenshot to reach the CFO.
//
// Production caveat: on PostgreSQL the default READ COMMITTED gives each *statement* its own
// snapshot, so a plain BEGIN does not help there: use `BEGIN ISOLATION LEVEL REPEATABLE READ`
// (or `READ ONLY`, `DEFERRABLE` at SERIALIZABLE for long reports). And a read transaction
// held open for long pins old data: in SQLite it stops WAL checkpoints from finishing, so the
// WAL file keeps growing (sqlite.org/wal.html).
//
// What to do: in `report`, run both reads on one transaction. `between` is how the tests let
// another session commit between the two reads: keep calling it there.
// Run `backlings hint` if you are stuck.

use rusqlite::Connection;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    pub orders: i64,
    pub total: i64,
}

pub fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS orders (
             id     INTEGER PRIMARY KEY,
             amount INTEGER NOT NULL
         );",
    )
}

/// Counts the orders and adds up their amounts, both as of one moment.
pub fn report(conn: &mut Connection, between: &mut dyn FnMut()) -> rusqlite::Result<Report> {
    // TODO: each bare statement sees its own snapshot. Run both reads on one transaction.
    let orders = conn.query_row("SELECT count(*) FROM orders", [], |r| r.get(0))?;
    between();
    let total = conn.query_row("SELECT coalesce(sum(amount), 0) FROM orders", [], |r| {
        r.get(0)
    })?;
    Ok(Report { orders, total })
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
        fn new(amounts: &[i64]) -> TempDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("backlings-tx3-{}-{n}.db", std::process::id());
            let db = TempDb(std::env::temp_dir().join(name));
            db.remove();
            let conn = db.open();
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            create_schema(&conn).unwrap();
            for a in amounts {
                conn.execute("INSERT INTO orders (amount) VALUES (?1)", [a])
                    .unwrap();
            }
            db
        }

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

    /// (orders at the start, the amount another session inserts between the reads)
    const CASES: [(&[i64], i64); 2] = [(&[10, 20, 30], 40), (&[5, 7], 1000)];

    fn insert(conn: &Connection, amount: i64) {
        conn.execute("INSERT INTO orders (amount) VALUES (?1)", [amount])
            .expect("in WAL mode a writer commits while a reader holds a snapshot");
    }

    #[test]
    fn a_commit_between_the_reads_does_not_tear_the_report() {
        for (amounts, late) in CASES {
            let db = TempDb::new(amounts);
            let (mut reader, writer) = (db.open(), db.open());
            let (mut calls, mut pinned) = (0, 0);
            let r = report(&mut reader, &mut || {
                calls += 1;
                insert(&writer, late);
                // A checkpoint that must empty the WAL is blocked (busy = 1) while a reader
                // still reads an older snapshot from it.
                let sql = "PRAGMA wal_checkpoint(TRUNCATE)";
                pinned = writer.query_row(sql, [], |r| r.get(0)).unwrap();
            })
            .unwrap();
            assert_eq!(
                pinned, 1,
                "while `between` runs, the report must hold a read snapshot (a transaction \
                 whose first read already ran); expected the checkpoint to be blocked"
            );
            assert_eq!(
                calls, 1,
                "report must call `between` once, between the two reads"
            );
            let expected = Report {
                orders: amounts.len() as i64,
                total: amounts.iter().sum(),
            };
            assert_eq!(
                r, expected,
                "an order of {late} committed between the reads: the report must describe \
                 one moment, expected {expected:?} (the state when the first read ran)"
            );
            assert!(
                reader.is_autocommit(),
                "report must finish its transaction; an open read transaction pins the snapshot"
            );
            let after = report(&mut reader, &mut || {}).unwrap();
            let expected = Report {
                orders: expected.orders + 1,
                total: expected.total + late,
            };
            assert_eq!(after, expected, "the next report sees the committed order");
        }
    }

    #[test]
    fn a_quiet_database_reports_its_totals() {
        for (amounts, _) in CASES {
            let db = TempDb::new(amounts);
            let mut conn = db.open();
            let r = report(&mut conn, &mut || {}).unwrap();
            let total: i64 = amounts.iter().sum();
            assert_eq!(
                r,
                Report {
                    orders: amounts.len() as i64,
                    total
                }
            );
        }
        let db = TempDb::new(&[]);
        let r = report(&mut db.open(), &mut || {}).unwrap();
        assert_eq!(
            r,
            Report {
                orders: 0,
                total: 0
            },
            "no orders: 0 orders, total 0"
        );
    }

    #[test]
    fn the_report_does_not_block_the_writer() {
        let db = TempDb::new(&[1, 2]);
        let (mut reader, writer) = (db.open(), db.open());
        report(&mut reader, &mut || {
            // A second writer commit, and a delete: none of it reaches the report.
            insert(&writer, 3);
            writer
                .execute("DELETE FROM orders WHERE amount = 1", [])
                .unwrap();
        })
        .map(|r| {
            assert_eq!(
                r,
                Report {
                    orders: 2,
                    total: 3
                }
            )
        })
        .unwrap();
    }

    /// What the bare version does: two statements, two snapshots. The report is torn.
    #[test]
    fn without_a_transaction_two_statements_straddle_a_commit() {
        let db = TempDb::new(&[10, 20, 30]);
        let (reader, writer) = (db.open(), db.open());
        let orders: i64 = reader
            .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
            .unwrap();
        insert(&writer, 40);
        let total: i64 = reader
            .query_row("SELECT sum(amount) FROM orders", [], |r| r.get(0))
            .unwrap();
        assert_eq!((orders, total), (3, 100), "3 orders, but 4 orders' money");
    }

    /// SQLite's rule: a DEFERRED transaction's snapshot starts at its first read, not at BEGIN.
    #[test]
    fn the_snapshot_starts_at_the_first_read() {
        let db = TempDb::new(&[10]);
        let (mut reader, writer) = (db.open(), db.open());
        let tx = reader.transaction().unwrap();
        insert(&writer, 5);
        let seen: i64 = tx
            .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            seen, 2,
            "BEGIN alone takes no snapshot: the first read sees the commit"
        );
    }
}
