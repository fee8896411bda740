// idx_quiz: tune a busy API's three queries with the fewest indexes
//
// An API serves three queries on every request: sign-in looks a user up by e-mail, whatever
// its case; the activity feed shows a user's latest events; a dashboard counts a user's events
// by kind since a day. With no index, each one reads a whole table. Add the smallest set of
// indexes that turns every plan into a search:
// - an expression index: `lower(email) = lower(?1)` can only use an index on `lower(email)`;
//   an index on `email` itself stays unused;
// - a covering index: when an index holds every column a query reads, SQLite never visits the
//   table (`USING COVERING INDEX` in the plan). One index on events, with its columns in the
//   right order (equality, then sort/range, then what is only read), serves both event queries.
// Each index costs space and time on every write, so the tests require exactly those two,
// with no column that no query reads.
//
// Why it matters: sign-in slowed down as the user table grew. The column was indexed, but the
// query compared `lower(email)`, so the index was never used: only the plan shows that.
//
// Where PostgreSQL differs: the same expression index works there (`CREATE INDEX ON users
// (lower(email))`). A covering index gives an Index Only Scan, which still reads a table page
// unless the visibility map marks it all-visible, so it needs VACUUM to pay off
// (https://www.postgresql.org/docs/current/indexes-index-only-scans.html). SQLite uses an
// expression index only when the query's expression matches it exactly
// (https://sqlite.org/expridx.html).
//
// What to do: in `migrate`, add the indexes. Don't change the queries.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, OptionalExtension, params};

pub const USER_BY_EMAIL: &str = "SELECT id, name FROM users WHERE lower(email) = lower(?1)";
pub const RECENT_EVENTS: &str = "SELECT id, kind, created_at FROM events
     WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2";
pub const KIND_COUNTS: &str = "SELECT kind, count(*) FROM events
     WHERE user_id = ?1 AND created_at >= ?2 GROUP BY kind ORDER BY kind";

/// Creates the schema. Runs once, on an empty database.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE users (
             id INTEGER PRIMARY KEY,
             email TEXT NOT NULL,
             name TEXT NOT NULL
         );
         CREATE TABLE events (
             id INTEGER PRIMARY KEY,
             user_id INTEGER NOT NULL,
             kind TEXT NOT NULL,
             created_at INTEGER NOT NULL,
             payload TEXT NOT NULL
         );
         -- The same expression as the query: sign-in searches instead of scanning.
         CREATE INDEX idx_users_email_lower ON users(lower(email));
         -- Equality, then sort/range, then the column only read: it covers both event queries.
         CREATE INDEX idx_events_user_time ON events(user_id, created_at, kind);",
    )
}

pub fn user_by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<(i64, String)>> {
    let mut stmt = conn.prepare_cached(USER_BY_EMAIL)?;
    stmt.query_row([email], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

pub fn recent_events(
    conn: &Connection,
    user_id: i64,
    limit: i64,
) -> rusqlite::Result<Vec<(i64, String, i64)>> {
    let mut stmt = conn.prepare_cached(RECENT_EVENTS)?;
    let rows = stmt.query_map(params![user_id, limit], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    rows.collect()
}

pub fn kind_counts(
    conn: &Connection,
    user_id: i64,
    since: i64,
) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(KIND_COUNTS)?;
    let rows = stmt.query_map(params![user_id, since], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;
    use std::collections::BTreeMap;

    const KINDS: [&str; 5] = ["login", "view", "click", "purchase", "logout"];

    struct World {
        conn: Connection,
        users: Vec<(i64, String, String)>,
        events: Vec<(i64, i64, String, i64)>,
    }

    /// `users` users (some e-mails with capitals or a quote) and `events` events, from a
    /// seeded xorshift; user 1 is the busiest.
    fn world(users: i64, events: i64, seed: u64) -> World {
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).expect("migrate works");
        let tx = conn.unchecked_transaction().unwrap();
        let users: Vec<(i64, String, String)> = (1..=users)
            .map(|id| {
                let email = match id % 4 {
                    0 => format!("User{id}@Example.com"),
                    1 => format!("o'neil.{id}@example.COM"),
                    _ => format!("user{id}@example.com"),
                };
                (id, email, format!("name {id}"))
            })
            .collect();
        for u in &users {
            tx.execute(
                "INSERT INTO users VALUES (?1, ?2, ?3)",
                params![u.0, u.1, u.2],
            )
            .unwrap();
        }
        let n = users.len() as u64;
        let events: Vec<(i64, i64, String, i64)> = (1..=events)
            .map(|id| {
                let r = next();
                let user = if r % 5 == 0 { 1 } else { (r >> 3) % n + 1 } as i64;
                let kind = KINDS[(r >> 40) as usize % 5].to_string();
                (id, user, kind, (r >> 20) as i64 % 100_000)
            })
            .collect();
        for e in &events {
            tx.execute(
                "INSERT INTO events VALUES (?1, ?2, ?3, ?4, 'payload')",
                params![e.0, e.1, e.2, e.3],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        World {
            conn,
            users,
            events,
        }
    }

    const SETS: [(i64, i64, u64); 2] = [(2000, 10_000, 0x9E37_79B9_7F4A), (300, 6000, 42_424_242)];

    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = stmt.raw_query();
        let mut details = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            details.push(row.get::<_, String>(3).unwrap());
        }
        details
    }

    /// VmStep and FullscanStep of one run of `sql` with `args`; returns the row count too.
    fn cost(conn: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> (usize, i32, i32) {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.query_map(args, |_| Ok(())).unwrap().count();
        let vm = stmt.get_status(StatementStatus::VmStep);
        (n, vm, stmt.get_status(StatementStatus::FullscanStep))
    }

    #[test]
    fn every_plan_searches_an_index() {
        let w = world(50, 200, 7);
        let cases = [
            (
                USER_BY_EMAIL,
                "SEARCH users USING INDEX idx_users_email_lower (<expr>=?)",
            ),
            (
                RECENT_EVENTS,
                "SEARCH events USING COVERING INDEX idx_events_user_time (user_id=?)",
            ),
            (
                KIND_COUNTS,
                "SEARCH events USING COVERING INDEX idx_events_user_time (user_id=? AND created_at>?)",
            ),
        ];
        for (sql, want) in cases {
            let got = plan(&w.conn, sql);
            assert_eq!(
                got.first(),
                Some(&want.to_string()),
                "expected the plan of\n{sql}\nto start with `{want}`; got {got:?}"
            );
            assert!(
                !got.iter().any(|d| d.contains("FOR ORDER BY")),
                "{sql}: the index must deliver the order, got {got:?}"
            );
        }
    }

    #[test]
    fn sign_in_finds_any_case_and_quotes_in_a_few_steps() {
        for (users, events, seed) in SETS {
            let w = world(users, events, seed);
            for id in [1, 2, 4, users / 2, users] {
                let (_, email, name) = &w.users[id as usize - 1];
                for asked in [email.clone(), email.to_uppercase(), email.to_lowercase()] {
                    let got = user_by_email(&w.conn, &asked).unwrap();
                    assert_eq!(got, Some((id, name.clone())), "user_by_email({asked:?})");
                    let (_, vm, full) = cost(&w.conn, USER_BY_EMAIL, &[&asked]);
                    assert!(
                        full == 0 && vm <= 60,
                        "user_by_email({asked:?}) of {users} users: {vm} VM steps and \
                         {full} full-scan steps, expected at most 60 and 0"
                    );
                }
            }
            let nobody = user_by_email(&w.conn, "nobody@example.com").unwrap();
            assert_eq!(nobody, None, "no such user: expected None");
        }
    }

    #[test]
    fn the_feed_reads_only_the_rows_it_returns() {
        for (users, events, seed) in SETS {
            let w = world(users, events, seed);
            for (user, limit) in [(1, 20), (2, 5), (users, 50), (users + 1, 10)] {
                let mut want: Vec<_> = w.events.iter().filter(|e| e.1 == user).collect();
                want.sort_by_key(|e| std::cmp::Reverse((e.3, e.0)));
                let want: Vec<(i64, String, i64)> = want
                    .iter()
                    .take(limit as usize)
                    .map(|e| (e.0, e.2.clone(), e.3))
                    .collect();
                let got = recent_events(&w.conn, user, limit).unwrap();
                assert_eq!(
                    got, want,
                    "recent_events({user}, {limit}): newest first, by id on ties"
                );
                let (n, vm, full) = cost(&w.conn, RECENT_EVENTS, &[&user, &limit]);
                let budget = 30 * n as i32 + 60;
                assert!(
                    full == 0 && vm <= budget,
                    "recent_events({user}, {limit}) over {events} events: {vm} VM steps and \
                     {full} full-scan steps, expected at most {budget} and 0"
                );
            }
        }
    }

    #[test]
    fn the_dashboard_counts_from_the_covering_index() {
        for (users, events, seed) in SETS {
            let w = world(users, events, seed);
            for (user, since) in [(1, 0), (1, 90_000), (3, 50_000), (users, 0)] {
                let mut want = BTreeMap::new();
                let mine = w.events.iter().filter(|e| e.1 == user && e.3 >= since);
                for e in mine.clone() {
                    *want.entry(e.2.clone()).or_insert(0) += 1;
                }
                let got = kind_counts(&w.conn, user, since).unwrap();
                assert_eq!(
                    got,
                    want.into_iter().collect::<Vec<_>>(),
                    "kind_counts({user}, {since})"
                );
                let (_, vm, full) = cost(&w.conn, KIND_COUNTS, &[&user, &since]);
                let budget = 25 * mine.count() as i32 + 80;
                assert!(
                    full == 0 && vm <= budget,
                    "kind_counts({user}, {since}) over {events} events: {vm} VM steps and {full} \
                     full-scan steps, expected at most {budget} and 0"
                );
            }
        }
    }

    #[test]
    fn exactly_the_two_needed_indexes_with_only_the_columns_read() {
        let w = world(1, 1, 1);
        let names: Vec<String> = w
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            names,
            ["idx_events_user_time", "idx_users_email_lower"],
            "expected exactly these 2 indexes: each one slows every write, and the unused \
             idx_users_email must go"
        );
        let cols: Vec<Option<String>> = w
            .conn
            .prepare("SELECT name FROM pragma_index_info('idx_events_user_time') ORDER BY seqno")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let want = ["user_id", "created_at", "kind"].map(|c| Some(c.to_string()));
        assert_eq!(
            cols, want,
            "idx_events_user_time: equality, then sort/range, then the one column only read; \
             a column no query reads (payload) only makes the index bigger"
        );
    }
}
