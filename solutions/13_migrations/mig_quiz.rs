// mig_quiz: the shop's migrations, with checksums that refuse an edited history
//
// Combines the topic. The shop's schema grows through four migrations: a table; a NOT NULL
// column with a default (existing rows get the default); an index; and a data migration that
// fills a new column from an old one. The runner applies those past `PRAGMA user_version`,
// each in one transaction with its version bump and a row in `schema_migrations` holding the
// SHA-256 of its SQL. Before applying anything, it checks every already-applied migration's
// checksum: a migration edited after it ran would mean this database and a fresh one built from
// the same code differ, so the runner refuses with `Edited { version }` and changes nothing.
//
// Why it matters: someone "fixed a typo" in migration 2 after it had shipped. New test
// databases got the fix, production never did, and the two schemas drifted for months.
//
// Production caveat: on PostgreSQL, `CREATE INDEX` blocks writes to the table while it builds;
// `CREATE INDEX CONCURRENTLY` does not, but cannot run inside a transaction block
// (PostgreSQL manual, CREATE INDEX), so a runner that wraps each migration in a transaction
// needs a way to run that one outside it. And since PostgreSQL 11, `ADD COLUMN ... NOT NULL
// DEFAULT 'EUR'` is metadata-only, with no table rewrite (manual, ALTER TABLE, Notes).
//
// What to do: complete migrations 2 to 4 in `MIGRATIONS`, and the checksum check and
// recording in `migrate`.

use rusqlite::Connection;
use sha2::{Digest, Sha256};

pub const MIGRATIONS: &[&str] = &[
    "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL);",
    // Every product, old and new, has a currency.
    "ALTER TABLE products ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR';",
    "CREATE INDEX products_by_name ON products (name);",
    // Data migration: a URL slug from the name, for every existing row.
    "ALTER TABLE products ADD COLUMN slug TEXT;
     UPDATE products SET slug = lower(replace(trim(name), ' ', '-'));",
];

#[derive(Debug)]
pub enum MigrateError {
    TooNew {
        db: i64,
        known: usize,
    },
    /// Migration `version` was changed after this database applied it.
    Edited {
        version: i64,
    },
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        MigrateError::Sql(e)
    }
}

pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

pub fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<usize, MigrateError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, sha256 TEXT NOT NULL);",
    )?;
    let current = version(conn)?;
    if current > migrations.len() as i64 {
        return Err(MigrateError::TooNew {
            db: current,
            known: migrations.len(),
        });
    }
    // The applied history must be the one in the code, byte for byte.
    for (i, sql) in migrations[..current as usize].iter().enumerate() {
        let v = i as i64 + 1;
        let stored: String = conn.query_row(
            "SELECT sha256 FROM schema_migrations WHERE version = ?1",
            [v],
            |r| r.get(0),
        )?;
        if stored != checksum(sql) {
            return Err(MigrateError::Edited { version: v });
        }
    }
    let pending = &migrations[current as usize..];
    for (i, sql) in pending.iter().enumerate() {
        let v = current + i as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, sha256) VALUES (?1, ?2)",
            (v, checksum(sql)),
        )?;
        tx.pragma_update(None, "user_version", v)?;
        tx.commit()?;
    }
    Ok(pending.len())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = 4;

    fn db_at(start: usize) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, &MIGRATIONS[..start]).unwrap(), start);
        if (1..N).contains(&start) {
            conn.execute_batch(
                "INSERT INTO products (name, price_cents) VALUES ('  Red Mug ', 900), ('Tea Pot', 2500);",
            )
            .unwrap();
        }
        conn
    }

    fn stored(conn: &Connection) -> Vec<(i64, String)> {
        let mut st = conn
            .prepare("SELECT version, sha256 FROM schema_migrations ORDER BY version")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn expected_checksums(upto: usize) -> Vec<(i64, String)> {
        (0..upto)
            .map(|i| (i as i64 + 1, checksum(MIGRATIONS[i])))
            .collect()
    }

    #[test]
    fn checksum_is_the_sha256_of_the_sql() {
        assert_eq!(
            checksum(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "SHA-256 of the empty string, lowercase hex"
        );
        assert_eq!(
            checksum("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn every_starting_version_reaches_the_latest_with_its_data() {
        for start in 0..=N {
            let mut conn = db_at(start);
            assert_eq!(
                migrate(&mut conn, MIGRATIONS).unwrap(),
                N - start,
                "from v{start}"
            );
            assert_eq!(
                version(&conn).unwrap(),
                N as i64,
                "from v{start}: user_version {N}"
            );
            assert_eq!(
                stored(&conn),
                expected_checksums(N),
                "from v{start}: one checksum per migration"
            );
            assert_eq!(
                migrate(&mut conn, MIGRATIONS).unwrap(),
                0,
                "a re-run is a no-op"
            );
            conn.execute(
                "INSERT INTO products (name, price_cents, slug) VALUES ('Spoon', 150, 'spoon')",
                [],
            )
            .expect("a new INSERT that omits currency works");
            let mut st = conn
                .prepare("SELECT currency, slug FROM products ORDER BY id")
                .unwrap();
            let rows: Vec<(String, Option<String>)> = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let mut want = vec![("EUR".to_string(), Some("spoon".to_string()))];
            if (1..N).contains(&start) {
                want.insert(0, ("EUR".into(), Some("tea-pot".into())));
                want.insert(0, ("EUR".into(), Some("red-mug".into())));
            }
            assert_eq!(
                rows, want,
                "from v{start}: currency defaults to EUR, slugs filled"
            );
            let null = conn.execute(
                "INSERT INTO products (name, price_cents, currency) VALUES ('x', 1, NULL)",
                [],
            );
            assert!(null.is_err(), "currency is NOT NULL");
            let plan: String = conn
                .query_row(
                    "EXPLAIN QUERY PLAN SELECT id FROM products WHERE name = 'Tea Pot'",
                    [],
                    |r| r.get(3),
                )
                .unwrap();
            assert!(
                plan.contains("INDEX products_by_name"),
                "from v{start}: expected the index, got {plan}"
            );
        }
    }

    #[test]
    fn an_edited_applied_migration_is_refused_from_every_version() {
        for start in 0..=N {
            for edited in 0..N {
                let mut conn = db_at(start);
                let changed = MIGRATIONS[edited].replace(';', " ;");
                let mut list = MIGRATIONS.to_vec();
                list[edited] = &changed;
                let result = migrate(&mut conn, &list);
                if edited < start {
                    match result {
                        Err(MigrateError::Edited { version }) => {
                            assert_eq!(
                                version,
                                edited as i64 + 1,
                                "v{start}: migration {} was edited",
                                edited + 1
                            )
                        }
                        other => panic!(
                            "v{start}, migration {} edited after it ran: expected Edited, got {other:?}",
                            edited + 1
                        ),
                    }
                    assert_eq!(
                        version(&conn).unwrap(),
                        start as i64,
                        "refused: nothing applied"
                    );
                    assert_eq!(
                        stored(&conn),
                        expected_checksums(start),
                        "refused: checksums unchanged"
                    );
                } else {
                    let applied =
                        result.expect("editing a migration that has not run here is fine");
                    assert_eq!(applied, N - start);
                }
            }
        }
    }

    #[test]
    fn a_failing_migration_leaves_version_checksums_and_schema_consistent() {
        for start in [0, 2] {
            let mut conn = db_at(start);
            let mut list = MIGRATIONS[..3].to_vec();
            list.push("ALTER TABLE products ADD COLUMN slug TEXT; UPDATE nowhere SET x = 1;");
            assert!(
                matches!(migrate(&mut conn, &list), Err(MigrateError::Sql(_))),
                "migration 4 fails"
            );
            assert_eq!(version(&conn).unwrap(), 3, "from v{start}: stopped at v3");
            assert_eq!(
                stored(&conn),
                expected_checksums(3),
                "from v{start}: no checksum for 4"
            );
            let slug: i64 = conn
                .query_row(
                    "SELECT count(*) FROM pragma_table_info('products') WHERE name = 'slug'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(
                slug, 0,
                "from v{start}: the half-applied slug column was rolled back"
            );
            assert_eq!(
                migrate(&mut conn, MIGRATIONS).unwrap(),
                1,
                "the fixed release applies 4"
            );
            assert_eq!(stored(&conn), expected_checksums(N));
        }
    }

    #[test]
    fn each_migration_commits_once_with_its_version_and_checksum() {
        for start in [0, 2] {
            let mut conn = db_at(start);
            let commits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = commits.clone();
            conn.commit_hook(Some(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                false
            }))
            .unwrap();
            migrate(&mut conn, MIGRATIONS).unwrap();
            let got = commits.load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!(
                got,
                N - start,
                "from v{start}: expected {} commits, each holding one migration's schema change, \
                 its user_version and its checksum row; got {got} (a second commit is a window \
                 where a crash leaves them out of step)",
                N - start
            );
        }
    }

    #[test]
    fn the_slug_migration_fills_whatever_rows_exist_and_stays_nullable() {
        let mut conn = db_at(3);
        conn.execute_batch(
            "INSERT INTO products (name, price_cents) VALUES ('Big Blue Bowl ', 1200), ('FORK', 100);",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn, MIGRATIONS).unwrap(), 1, "v3 gets 4");
        let mut st = conn
            .prepare("SELECT slug FROM products ORDER BY id")
            .unwrap();
        let slugs: Vec<Option<String>> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let want = ["red-mug", "tea-pot", "big-blue-bowl", "fork"].map(|s| Some(s.to_string()));
        assert_eq!(
            slugs, want,
            "each slug is computed from its row's name: lower case, trimmed, spaces to '-'"
        );
        let notnull: i64 = conn
            .query_row(
                "SELECT \"notnull\" FROM pragma_table_info('products') WHERE name = 'slug'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            notnull, 0,
            "slug is nullable (TODO 4): a NOT NULL DEFAULT '' would hide rows never filled"
        );
    }

    #[test]
    fn a_newer_database_is_refused() {
        for db in [5, 9] {
            let mut conn = db_at(N);
            conn.pragma_update(None, "user_version", db).unwrap();
            assert!(
                matches!(migrate(&mut conn, MIGRATIONS), Err(MigrateError::TooNew { db: d, known: N }) if d == db),
                "a v{db} database: expected TooNew {{ db: {db}, known: {N} }}"
            );
        }
    }
}
