// tx2_optimistic_version: compare-and-set with a version column
//
// Two editors load document 7 at version 3, both change it, both save. With a plain
// `UPDATE … WHERE id = ?`, the second save silently overwrites the first: a lost update. Give
// each row a `version`, and save with `… WHERE id = ?1 AND version = ?2`, bumping
// `version = version + 1` in the same statement. The check and the write are one atomic
// statement, so exactly one save of version 3 matches a row; the other matches 0 rows, and 0
// rows means "someone else won": report a conflict, and let the caller re-read and retry.
// HTTP says the same thing with `ETag` + `If-Match` and answers `412 Precondition Failed`.
//
// Why it matters: a support tool let two agents edit the same ticket. Each saved the whole
// ticket it had loaded, so the second agent's save erased the first agent's refund note, and
// the customer was refunded twice. Nobody held a lock for minutes while typing, and nobody
// needed to: a version check at save time found the race.
//
// Production caveat: on PostgreSQL at READ COMMITTED the same statement is still safe: a
// second UPDATE waits for the first writer's commit, then re-evaluates its WHERE clause on the
// new row version, so `version = 3` no longer matches and it updates 0 rows. Reading the
// version with a SELECT first and then writing without the predicate is NOT safe there (or
// here): another commit can land in between.
//
// What to do: in `save`, make the UPDATE check and bump the version, and turn 0 rows into
// `SaveError::Conflict`.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, params};

#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub id: i64,
    pub body: String,
    pub version: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("the document changed since it was read; re-read it and retry")]
    Conflict,
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

pub fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS docs (
             id      INTEGER PRIMARY KEY,
             body    TEXT NOT NULL,
             version INTEGER NOT NULL DEFAULT 1
         );",
    )
}

pub fn load(conn: &Connection, id: i64) -> rusqlite::Result<Doc> {
    conn.query_row(
        "SELECT id, body, version FROM docs WHERE id = ?1",
        [id],
        |r| {
            Ok(Doc {
                id: r.get(0)?,
                body: r.get(1)?,
                version: r.get(2)?,
            })
        },
    )
}

/// Saves `doc` if nobody saved since it was loaded; returns the new version.
pub fn save(conn: &Connection, doc: &Doc) -> Result<i64, SaveError> {
    // Check and write in one statement: only a row still at the version we read matches.
    let changed = conn.execute(
        "UPDATE docs SET body = ?1, version = version + 1 WHERE id = ?2 AND version = ?3",
        params![doc.body, doc.id, doc.version],
    )?;
    if changed == 0 {
        return Err(SaveError::Conflict);
    }
    Ok(doc.version + 1)
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
        fn new(body: &str) -> TempDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("backlings-tx2-{}-{n}.db", std::process::id());
            let db = TempDb(std::env::temp_dir().join(name));
            db.remove();
            let conn = db.open();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            create_schema(&conn).unwrap();
            conn.execute("INSERT INTO docs (id, body) VALUES (7, ?1)", [body])
                .unwrap();
            db
        }

        /// A second session: its own connection, which never waits for a lock.
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

    const CASES: [(&str, &str, &str); 2] = [
        ("draft", "alice: refund sent", "bob: closed"),
        ("v0", "title fixed", "typo fixed"),
    ];

    #[test]
    fn saves_bump_the_version_one_at_a_time() {
        for (start, first, second) in CASES {
            let db = TempDb::new(start);
            let conn = db.open();
            let mut doc = load(&conn, 7).unwrap();
            assert_eq!(doc.version, 1, "a new document starts at version 1");
            for (i, body) in [first, second, start].into_iter().enumerate() {
                doc.body = body.to_string();
                let v = save(&conn, &doc).expect("a save of the latest version succeeds");
                let expected = i as i64 + 2;
                assert_eq!(
                    v,
                    expected,
                    "save number {} returns version {expected}",
                    i + 1
                );
                doc = load(&conn, 7).unwrap();
                assert_eq!(
                    (doc.body.as_str(), doc.version),
                    (body, expected),
                    "the row holds the saved body at version {expected}"
                );
            }
        }
    }

    #[test]
    fn the_stale_session_gets_a_conflict_and_nothing_is_lost() {
        for (start, first, second) in CASES {
            let db = TempDb::new(start);
            let (alice, bob) = (db.open(), db.open());
            // Both sessions read version 1.
            let mut a = load(&alice, 7).unwrap();
            let mut b = load(&bob, 7).unwrap();
            a.body = first.to_string();
            assert_eq!(save(&alice, &a).expect("the first save wins"), 2);
            // Bob saves what he read at version 1: he must be told, not silently win.
            b.body = second.to_string();
            let res = save(&bob, &b);
            assert!(
                matches!(res, Err(SaveError::Conflict)),
                "bob saved a stale version 1 after alice saved version 2: expected \
                 Err(Conflict), got {res:?}"
            );
            let now = load(&alice, 7).unwrap();
            assert_eq!(
                (now.body.as_str(), now.version),
                (first, 2),
                "alice's save must survive bob's stale one (a lost update otherwise)"
            );
        }
    }

    #[test]
    fn a_retry_after_re_reading_succeeds() {
        for (start, first, second) in CASES {
            let db = TempDb::new(start);
            let (alice, bob) = (db.open(), db.open());
            let mut a = load(&alice, 7).unwrap();
            let mut b = load(&bob, 7).unwrap();
            a.body = first.to_string();
            save(&alice, &a).unwrap();
            b.body = second.to_string();
            assert!(matches!(save(&bob, &b), Err(SaveError::Conflict)));
            // Bob re-reads (now version 2), re-applies his change, and saves again.
            let mut b = load(&bob, 7).unwrap();
            b.body = format!("{} + {second}", b.body);
            let v = save(&bob, &b).expect("a save after re-reading succeeds");
            assert_eq!(v, 3, "the retried save returns version 3");
            let now = load(&alice, 7).unwrap();
            assert_eq!(
                (now.body, now.version),
                (format!("{first} + {second}"), 3),
                "both changes are in the row at version 3"
            );
            // And alice, still holding version 2, is now the stale one.
            assert!(
                matches!(save(&alice, &a), Err(SaveError::Conflict)),
                "alice's version 2 is stale after bob saved version 3: expected Conflict"
            );
        }
    }

    #[test]
    fn a_missing_document_is_not_saved() {
        let db = TempDb::new("x");
        let conn = db.open();
        let ghost = Doc {
            id: 8,
            body: "ghost".into(),
            version: 1,
        };
        assert!(
            matches!(save(&conn, &ghost), Err(SaveError::Conflict)),
            "no row matches id 8: expected Err(Conflict)"
        );
        let n: i64 = conn
            .query_row("SELECT count(*) FROM docs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "saving must never insert a row");
    }
}
