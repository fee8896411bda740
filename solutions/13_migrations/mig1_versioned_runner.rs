// mig1_versioned_runner: migrations are an append-only list, and the database knows its place
//
// A schema changes through an ordered list of migrations that is only ever appended to. The
// database records how far it got, here in `PRAGMA user_version` (an integer in the file
// header, 0 in a new database: https://sqlite.org/pragma.html#pragma_user_version). A runner
// reads that number, refuses a database newer than the code, and applies only the migrations
// past it. Each migration commits together with its version bump: SQLite DDL is transactional,
// so a migration that fails halfway leaves neither its table nor the bump behind, and the next
// run starts exactly where this one stopped.
//
// Why it matters: a deploy ran its migrations on start. One failed at its second statement, the
// first (a CREATE TABLE) had already committed, and every restart after that died on "table
// already exists" until someone fixed the schema by hand at night.
//
// Production caveat: PostgreSQL DDL is transactional too (CREATE/ALTER TABLE roll back with
// the transaction), except a few commands such as `CREATE INDEX CONCURRENTLY`, which cannot run
// inside a transaction block (PostgreSQL manual, CREATE INDEX). MySQL is not: each DDL
// statement commits implicitly (MySQL manual, "Statements That Cause an Implicit Commit"), so
// there a failed migration can leave half its tables behind and must be written to be re-runnable.
//
// What to do: finish `migrate`: read the version, refuse a newer database, and run each
// remaining migration in one transaction with its version bump. Return how many were applied.

use rusqlite::Connection;

/// The shop's migrations, in order. Append only: version N is `MIGRATIONS[N - 1]`.
pub const MIGRATIONS: &[&str] = &[
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);",
    "ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id));",
];

#[derive(Debug)]
pub enum MigrateError {
    /// The database was migrated by newer code than this: its version is past our list.
    TooNew {
        db: i64,
        known: usize,
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

/// Brings the database up to `migrations.len()` and returns how many migrations it applied.
pub fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<usize, MigrateError> {
    let current = version(conn)?;
    if current > migrations.len() as i64 {
        return Err(MigrateError::TooNew {
            db: current,
            known: migrations.len(),
        });
    }
    let pending = &migrations[current as usize..];
    for (i, sql) in pending.iter().enumerate() {
        // The migration and its version bump commit together, or neither does.
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", current + i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(pending.len())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    /// Migrations whose side effects are visible: each appends its number to `log`, and
    /// migration 1 creates `log` (so running it twice fails).
    const LOGGED: &[&str] = &[
        "CREATE TABLE log (step INTEGER NOT NULL); INSERT INTO log VALUES (1);",
        "CREATE TABLE items (id INTEGER PRIMARY KEY); INSERT INTO log VALUES (2);",
        "ALTER TABLE items ADD COLUMN label TEXT; INSERT INTO log VALUES (3);",
    ];

    fn log(conn: &Connection) -> Vec<i64> {
        let mut st = conn.prepare("SELECT step FROM log ORDER BY rowid").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn has_table(conn: &Connection, name: &str) -> bool {
        let sql = "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1";
        conn.query_row(sql, [name], |r| r.get::<_, i64>(0)).unwrap() == 1
    }

    /// A database that an older release left at `start`.
    fn db_at(start: usize) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        let applied = migrate(&mut conn, &LOGGED[..start]).expect("older code migrates");
        assert_eq!(
            applied, start,
            "a fresh database gets all {start} migrations"
        );
        assert_eq!(
            version(&conn).unwrap(),
            start as i64,
            "user_version = {start}"
        );
        conn
    }

    #[test]
    fn every_starting_version_ends_at_the_latest_applying_only_what_is_missing() {
        for start in 0..=3 {
            let mut conn = db_at(start);
            let applied = migrate(&mut conn, LOGGED).expect("migrating up succeeds");
            assert_eq!(
                applied,
                3 - start,
                "from v{start}, expected {} applied",
                3 - start
            );
            assert_eq!(
                version(&conn).unwrap(),
                3,
                "from v{start}, expected user_version 3"
            );
            assert_eq!(
                log(&conn),
                vec![1, 2, 3],
                "from v{start}: each migration ran exactly once, in order"
            );
        }
    }

    #[test]
    fn a_second_run_is_a_no_op() {
        for runs in [2, 4] {
            let mut conn = db_at(0);
            for run in 0..runs {
                let applied = migrate(&mut conn, LOGGED).expect("re-running succeeds");
                let want = if run == 0 { 3 } else { 0 };
                assert_eq!(applied, want, "run {run}: expected {want} applied");
            }
            assert_eq!(
                log(&conn),
                vec![1, 2, 3],
                "after {runs} runs, each ran once"
            );
        }
    }

    #[test]
    fn the_shop_migrations_apply_from_v1() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, &MIGRATIONS[..1]).unwrap(), 1);
        conn.execute("INSERT INTO users (email) VALUES ('ann@example.com')", [])
            .unwrap();
        assert_eq!(
            migrate(&mut conn, MIGRATIONS).unwrap(),
            2,
            "v1 gets 2 and 3"
        );
        let name: String = conn
            .query_row("SELECT name FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name, "", "Ann kept her row and got the default name");
        assert!(has_table(&conn, "orders"), "migration 3 made orders");
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version_and_no_half_made_table() {
        // The third migration creates a table, then fails on its second statement.
        for (start, table) in [(0, "half"), (2, "partial")] {
            let broken =
                format!("CREATE TABLE {table} (id INTEGER); INSERT INTO missing VALUES (1);");
            let list = [LOGGED[0], LOGGED[1], broken.as_str()];
            let mut conn = db_at(start);
            let err = migrate(&mut conn, &list).expect_err("migration 3 fails");
            assert!(
                matches!(err, MigrateError::Sql(_)),
                "expected Sql(..), got {err:?}"
            );
            assert_eq!(
                version(&conn).unwrap(),
                2,
                "from v{start}: 1 and 2 committed, 3 did not"
            );
            assert!(
                !has_table(&conn, table),
                "from v{start}: the failed migration's table `{table}` was rolled back with it"
            );
            assert_eq!(log(&conn), vec![1, 2], "from v{start}: 1 and 2 ran once");
            assert!(conn.is_autocommit(), "no transaction is left open");
            // Fixed in the next release: the run resumes at 3.
            assert_eq!(
                migrate(&mut conn, LOGGED).unwrap(),
                1,
                "the fix applies only 3"
            );
            assert_eq!(log(&conn), vec![1, 2, 3]);
        }
    }

    #[test]
    fn each_migration_commits_once_together_with_its_version_bump() {
        // N migrations = N commits: a bump outside the migration's transaction is a second
        // commit, and a crash between the two leaves a migrated schema at the old version.
        for start in [0, 1] {
            let mut conn = db_at(start);
            let commits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = commits.clone();
            conn.commit_hook(Some(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                false
            }))
            .unwrap();
            migrate(&mut conn, LOGGED).expect("migrating up succeeds");
            let got = commits.load(std::sync::atomic::Ordering::SeqCst);
            assert_eq!(
                got,
                3 - start,
                "from v{start}: expected {} commits, one per migration with its \
                 `PRAGMA user_version` inside it; got {got}",
                3 - start
            );
        }
    }

    #[test]
    fn a_database_newer_than_the_code_is_refused() {
        for db in [4, 5] {
            let mut conn = db_at(3);
            conn.pragma_update(None, "user_version", db).unwrap();
            match migrate(&mut conn, LOGGED) {
                Err(MigrateError::TooNew { db: got, known }) => {
                    assert_eq!(
                        (got, known),
                        (db, 3),
                        "expected TooNew {{ db: {db}, known: 3 }}"
                    )
                }
                other => panic!(
                    "a v{db} database with 3 known migrations: expected TooNew, got {other:?}"
                ),
            }
            assert_eq!(version(&conn).unwrap(), db, "the version is left alone");
            assert_eq!(log(&conn), vec![1, 2, 3], "nothing ran");
        }
    }
}
