// sql1_bind_parameters: the SQL is a constant, the values travel apart
//
// SQL built with `format!` mixes code and data: a name such as `Robert'); DROP TABLE users;--`
// becomes part of the statement. A bound parameter (`?1` in the text, the value in `params![]`)
// is sent to SQLite next to the statement and is never parsed as SQL, whatever it contains.
// Reading back follows the same rules of the row: a `NULL` column is `Option::None` (not `""`),
// and "no such row" is `Ok(None)` through `.optional()`, while a real failure stays an `Err`.
//
// Why it matters: injection is still in the OWASP Top 10. A support tool searched customers
// with `format!("... WHERE name = '{q}'")`; a search for `x' OR '1'='1` listed every customer.
// Escaping quotes by hand is the fix that "works" until an input the escaper did not foresee.
//
// Where PostgreSQL differs: its placeholders are `$1`, `$2` (SQLite takes `?`, `?NNN`, `:AAA`,
// `@AAA` and `$AAA`: https://sqlite.org/lang_expr.html#varparam), and its `text` cannot hold
// the NUL character at all (PostgreSQL manual, "Character Types"), while SQLite stores it when
// it is bound. In both, a bound value is data and never SQL, and it does not count towards the
// length limit on SQL text (SQLITE_LIMIT_SQL_LENGTH), which a pasted value does.
//
// What to do: in `add_user` and `find_by_name`, put `?1`, `?2` in the SQL and pass the values
// with `params![]`; make a missing user `Ok(None)` with `.optional()`, and keep NULL as `None`.
// Run `backlings hint` if you are stuck.

use rusqlite::Connection;

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub bio: Option<String>,
}

pub fn open() -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE TABLE users (
             id   INTEGER PRIMARY KEY,
             name TEXT NOT NULL UNIQUE,
             bio  TEXT
         );",
    )?;
    Ok(conn)
}

/// Stores a user and returns its id. `name` and `bio` are stored exactly as given.
pub fn add_user(conn: &Connection, name: &str, bio: Option<&str>) -> rusqlite::Result<i64> {
    // TODO: never paste values into SQL. Put `?1`, `?2` in the text and bind with `params![]`.
    let bio = match bio {
        Some(bio) => format!("'{bio}'"),
        None => "NULL".to_string(),
    };
    conn.execute(
        &format!("INSERT INTO users (name, bio) VALUES ('{name}', {bio})"),
        [],
    )?;
    Ok(conn.last_insert_rowid())
}

/// The user with exactly this name, `Ok(None)` when there is none.
pub fn find_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<User>> {
    // TODO: bind `name` too; turn "no row" (and only that) into `Ok(None)`; keep NULL apart
    // from "".
    let sql = format!("SELECT id, name, bio FROM users WHERE name = '{name}'");
    conn.query_row(&sql, [], |row| {
        let bio: Option<String> = row.get(2)?;
        Ok(User {
            id: row.get(0)?,
            name: row.get(1)?,
            bio: Some(bio.unwrap_or_default()),
        })
    })
    .map(Some)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::limits::Limit;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .expect("the users table must still exist")
    }

    /// What the table holds, read by the tests themselves.
    fn stored(conn: &Connection, id: i64) -> (String, Option<String>) {
        conn.query_row("SELECT name, bio FROM users WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("the row add_user reported must exist")
    }

    fn user(id: i64, name: &str, bio: Option<&str>) -> User {
        User {
            id,
            name: name.into(),
            bio: bio.map(Into::into),
        }
    }

    #[test]
    fn hostile_names_are_stored_verbatim_and_the_table_survives() {
        let names = [
            "Robert'); DROP TABLE users;--",
            "O'Brien",
            "'; DELETE FROM users WHERE '1'='1",
            "plain",
        ];
        let conn = open().unwrap();
        for (i, name) in names.iter().enumerate() {
            let id = add_user(&conn, name, Some("it's me")).expect("any name can be stored");
            assert_eq!(
                stored(&conn, id),
                (name.to_string(), Some("it's me".to_string())),
                "the name {name:?} must be stored verbatim, bio \"it's me\""
            );
            assert_eq!(count(&conn), i as i64 + 1, "expected {} users", i + 1);
        }
        for (i, name) in names.iter().enumerate() {
            assert_eq!(
                find_by_name(&conn, name).unwrap(),
                Some(user(i as i64 + 1, name, Some("it's me"))),
                "find_by_name({name:?}) must find user {}",
                i + 1
            );
        }
    }

    #[test]
    fn a_nul_byte_is_data_too() {
        // Doubling quotes by hand cannot carry this name inside SQL text: the parser stops at
        // the NUL. A bound value is never parsed, so it arrives whole.
        for (name, bio) in [("nul\0byte", Some("a\0b")), ("x\0'", None)] {
            let conn = open().unwrap();
            add_user(&conn, "someone", None).unwrap();
            let id = add_user(&conn, name, bio).expect("a name with a NUL byte is data");
            assert_eq!(id, 2, "the second user gets id 2");
            assert_eq!(
                stored(&conn, 2),
                (name.to_string(), bio.map(Into::into)),
                "expected {name:?} and {bio:?} stored whole"
            );
            assert_eq!(
                find_by_name(&conn, name).unwrap(),
                Some(user(2, name, bio)),
                "find_by_name({name:?}) must find user 2"
            );
        }
    }

    #[test]
    fn a_lookup_cannot_be_widened() {
        let conn = open().unwrap();
        add_user(&conn, "alice", None).unwrap();
        add_user(&conn, "bob", Some("builder")).unwrap();
        for probe in ["x' OR '1'='1", "' OR name LIKE '%", "bob' --", "alice'"] {
            assert_eq!(
                find_by_name(&conn, probe).unwrap(),
                None,
                "find_by_name({probe:?}): no user has that name, expected None"
            );
        }
        assert_eq!(count(&conn), 2, "expected 2 users");
    }

    #[test]
    fn a_missing_user_is_none_and_each_name_finds_its_own_row() {
        let sets: [&[(&str, Option<&str>)]; 2] = [
            &[("alice", Some("admin")), ("bob", None)],
            &[("carol", None), ("dave", Some("ops")), ("erin", Some("qa"))],
        ];
        for set in sets {
            let conn = open().unwrap();
            for (name, bio) in set {
                add_user(&conn, name, *bio).unwrap();
            }
            for (i, (name, bio)) in set.iter().enumerate().rev() {
                assert_eq!(
                    find_by_name(&conn, name).unwrap(),
                    Some(user(i as i64 + 1, name, *bio)),
                    "find_by_name({name:?}): expected user {} with bio {bio:?}",
                    i + 1
                );
            }
            for missing in ["mallory", "ALICE", "carol "] {
                assert_eq!(
                    find_by_name(&conn, missing).unwrap(),
                    None,
                    "find_by_name({missing:?}): nobody has that exact name, expected Ok(None)"
                );
            }
        }
    }

    #[test]
    fn null_is_none_and_empty_is_some() {
        for (name, bio) in [("quiet", None), ("blank", Some("")), ("chatty", Some("hi"))] {
            let conn = open().unwrap();
            let id = add_user(&conn, name, bio).unwrap();
            assert_eq!(
                stored(&conn, id).1,
                bio.map(Into::into),
                "{name}: a bio of {bio:?} must be stored as {bio:?} (None is NULL)"
            );
            assert_eq!(
                find_by_name(&conn, name).unwrap().map(|u| u.bio),
                Some(bio.map(Into::into)),
                "{name}: expected bio {bio:?}: NULL reads as None, an empty bio as Some(\"\")"
            );
        }
    }

    #[test]
    fn long_values_fit_because_they_are_not_part_of_the_sql_text() {
        // A bound value travels beside the statement, so the length limit on SQL text does not
        // apply to it. A value pasted into the text (quoted, escaped or hex-encoded) does.
        for (len, ch) in [(1_000, 'a'), (1_500, '\'')] {
            let conn = open().unwrap();
            conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, 200).unwrap();
            let name: String = std::iter::repeat_n(ch, len).collect();
            let bio: String = std::iter::repeat_n('b', len).collect();
            let id = add_user(&conn, &name, Some(&bio)).expect(
                "a 1 000-character name must be stored: SQL text is limited to 200 bytes here, \
                 so the values must be bound (?1, ?2), not written into the statement",
            );
            assert_eq!(
                stored(&conn, id),
                (name.clone(), Some(bio.clone())),
                "the {len}-character name and bio must be stored whole"
            );
            assert_eq!(
                find_by_name(&conn, &name).expect("find_by_name must bind the name too"),
                Some(user(id, &name, Some(&bio))),
                "find_by_name(<{len} x {ch:?}>) must find user {id}"
            );
        }
    }

    #[test]
    fn the_lookup_uses_the_index_on_name() {
        // `name` is UNIQUE, so SQLite keeps an index on it: a WHERE on the name reads a handful of
        // rows. Reading every row and comparing in Rust costs thousands of VM steps.
        for (rows, probe) in [(1_000, "user 737"), (1_200, "user 5")] {
            let mut conn = open().unwrap();
            for i in 0..rows {
                add_user(&conn, &format!("user {i}"), None).unwrap();
            }
            let steps = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&steps);
            conn.progress_handler(
                1,
                Some(move || {
                    counter.fetch_add(1, Ordering::Relaxed);
                    false
                }),
            )
            .unwrap();
            let found = find_by_name(&conn, probe).unwrap();
            let missing = find_by_name(&conn, "nobody").unwrap();
            conn.progress_handler(1, None::<fn() -> bool>).unwrap();
            assert_eq!(
                found.map(|u| u.name),
                Some(probe.to_string()),
                "{probe:?} exists"
            );
            assert_eq!(missing, None, "nobody has the name \"nobody\"");
            let steps = steps.load(Ordering::Relaxed);
            assert!(
                steps < 200,
                "two lookups among {rows} users took {steps} VM steps, expected under 200: \
                 filter by name in the SQL WHERE so the index is used, not in Rust"
            );
        }
    }

    #[test]
    fn a_bio_that_is_not_text_is_an_error_not_none() {
        // A table without STRICT accepts a blob in a TEXT column. Reading it as text must fail
        // loudly: `.ok()` would turn the corrupt value into "no bio".
        for (name, bad) in [("eve", "x'ff00'"), ("zed", "x''")] {
            let conn = open().unwrap();
            add_user(&conn, "alice", Some("fine")).unwrap();
            conn.execute(
                &format!("INSERT INTO users (name, bio) VALUES (?1, {bad})"),
                [name],
            )
            .unwrap();
            assert!(
                find_by_name(&conn, name).is_err(),
                "{name}'s bio is the blob {bad}, not text: expected Err (row.get(2)?), not None"
            );
            assert_eq!(
                find_by_name(&conn, "alice").unwrap().and_then(|u| u.bio),
                Some("fine".to_string()),
                "alice's bio is \"fine\""
            );
        }
    }

    #[test]
    fn a_broken_query_is_an_error_not_none() {
        // `.ok()` would turn this outage into "no such user".
        let conn = open().unwrap();
        add_user(&conn, "alice", None).unwrap();
        conn.execute_batch("ALTER TABLE users RENAME TO people")
            .unwrap();
        assert!(
            find_by_name(&conn, "alice").is_err(),
            "the users table is gone: expected Err, not Ok(None)"
        );
        assert!(
            add_user(&conn, "bob", None).is_err(),
            "the users table is gone: expected Err from add_user"
        );
    }
}
