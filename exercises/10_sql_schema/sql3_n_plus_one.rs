// sql3_n_plus_one: one query for the page, one for all of its orders
//
// An ORM does two jobs: it maps rows to structs (here the tiny `FromRow` trait), and it loads
// relations for you. Loading them lazily, user by user, hides the N+1 pattern: one query for
// the page of users, then one query per user for their orders. Each query is fast, so nothing
// looks slow in a test with three users; a page of 100 costs 101 round trips. The fix is what
// an ORM's "preload" does: load the page, then load the orders of all its users in one query
// (`WHERE user_id IN (?, ?, ...)`), and group them in Rust.
//
// Why it matters: an admin page listed 50 customers with their invoices. In production every
// query crossed the network (1 ms each, a pooled connection held throughout): 51 round trips
// per page view, and the pool ran dry at lunchtime. The log showed hundreds of identical
// queries that differed only in their id.
//
// Where PostgreSQL differs: with PostgreSQL, bind one array instead of a list of placeholders,
// `WHERE user_id = ANY($1)`, so the statement text stays the same for every page size. SQLite
// has no array type; its ways to bind one list are a JSON text read by
// `IN (SELECT value FROM json_each(?1))` (https://sqlite.org/json1.html), or rusqlite's
// `array` feature (`IN rarray(?1)`). A list of `?` marks is capped per statement
// (SQLITE_MAX_VARIABLE_NUMBER, 32766 by default since 3.32.0, https://sqlite.org/limits.html):
// keep pages bounded.
//
// What to do: in `page`, replace the query per user with one query for the orders of every
// user on the page, then attach each order to its user. Users without orders stay, with none.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, Row, ToSql};

/// Maps one row to a value: the part of an ORM that `#[derive(FromRow)]` writes for you.
pub trait FromRow: Sized {
    fn from_row(row: &Row) -> rusqlite::Result<Self>;
}

/// The only door to the database. Each call runs exactly one SQL statement.
pub trait Db {
    fn query<T: FromRow>(&self, sql: &str, params: &[&dyn ToSql]) -> rusqlite::Result<Vec<T>>;
}

impl Db for Connection {
    fn query<T: FromRow>(&self, sql: &str, params: &[&dyn ToSql]) -> rusqlite::Result<Vec<T>> {
        let mut stmt = self.prepare(sql)?;
        let rows = stmt.query_map(params, T::from_row)?;
        rows.collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub total_cents: i64,
}

impl FromRow for User {
    fn from_row(row: &Row) -> rusqlite::Result<Self> {
        Ok(User {
            id: row.get("id")?,
            name: row.get("name")?,
        })
    }
}

impl FromRow for Order {
    fn from_row(row: &Row) -> rusqlite::Result<Self> {
        Ok(Order {
            id: row.get("id")?,
            user_id: row.get("user_id")?,
            total_cents: row.get("total_cents")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserWithOrders {
    pub user: User,
    pub orders: Vec<Order>,
}

/// The users with `id > after`, at most `limit` of them, by id; each with their orders by id.
pub fn page(db: &impl Db, after: i64, limit: i64) -> rusqlite::Result<Vec<UserWithOrders>> {
    let sql = "SELECT id, name FROM users WHERE id > ?1 ORDER BY id LIMIT ?2";
    let users: Vec<User> = db.query(sql, &[&after, &limit])?;
    // TODO: this runs one more query per user (N+1). Load the orders of all of `users` in one
    // query, then hand each user their own.
    let mut page = Vec::new();
    for user in users {
        let sql = "SELECT id, user_id, total_cents FROM orders WHERE user_id = ?1 ORDER BY id";
        let orders = db.query(sql, &[&user.id])?;
        page.push(UserWithOrders { user, orders });
    }
    Ok(page)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// The tests' own door: it runs each statement on the connection and counts statements
    /// and rows, the way a query log in production would.
    struct Counting {
        conn: Connection,
        statements: Cell<usize>,
        rows: Cell<usize>,
        log: RefCell<Vec<String>>,
    }

    impl Db for Counting {
        fn query<T: FromRow>(&self, sql: &str, params: &[&dyn ToSql]) -> rusqlite::Result<Vec<T>> {
            self.statements.set(self.statements.get() + 1);
            self.log.borrow_mut().push(sql.to_string());
            let rows = self.conn.query::<T>(sql, params)?;
            self.rows.set(self.rows.get() + rows.len());
            Ok(rows)
        }
    }

    /// `users` users; user i has orders unless i is a multiple of 5, and the orders of all
    /// users are interleaved in insertion order, so ids of one user are never contiguous.
    fn shop(users: i64) -> Counting {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE orders (
                 id INTEGER PRIMARY KEY,
                 user_id INTEGER NOT NULL REFERENCES users(id),
                 total_cents INTEGER NOT NULL
             );
             -- The biggest order first: a query without ORDER BY id follows this index.
             CREATE INDEX orders_by_user_total ON orders(user_id, total_cents DESC);",
        )
        .unwrap();
        for i in 1..=users {
            conn.execute(
                "INSERT INTO users VALUES (?1, ?2)",
                (i, format!("user {i}")),
            )
            .unwrap();
        }
        for round in 0..3 {
            for i in (1..=users).rev() {
                if i % 5 != 0 && round <= i % 3 {
                    let sql = "INSERT INTO orders (user_id, total_cents) VALUES (?1, ?2)";
                    conn.execute(sql, (i, i * 100 + round)).unwrap();
                }
            }
        }
        Counting {
            conn,
            statements: Cell::new(0),
            rows: Cell::new(0),
            log: RefCell::new(Vec::new()),
        }
    }

    /// The answer, computed the slow way on the raw connection.
    fn expected(conn: &Connection, after: i64, limit: i64) -> Vec<UserWithOrders> {
        let sql = "SELECT id, name FROM users WHERE id > ?1 ORDER BY id LIMIT ?2";
        let users: Vec<User> = conn.query(sql, &[&after, &limit]).unwrap();
        users
            .into_iter()
            .map(|user| {
                let sql = "SELECT * FROM orders WHERE user_id = ?1 ORDER BY id";
                let orders = conn.query(sql, &[&user.id]).unwrap();
                UserWithOrders { user, orders }
            })
            .collect()
    }

    fn check(users: i64, after: i64, limit: i64) -> Vec<UserWithOrders> {
        let db = shop(users);
        let want = expected(&db.conn, after, limit);
        let got = page(&db, after, limit).expect("page works");
        assert_eq!(
            got, want,
            "page(after {after}, limit {limit}) of {users} users: expected the same users, \
             by id, each with all of their orders by id"
        );
        let statements = db.statements.get();
        assert!(
            statements <= 2,
            "page(after {after}, limit {limit}) ran {statements} statements, expected at most \
             2 (one for the users, one for all of their orders):\n{}",
            db.log.borrow().join("\n")
        );
        got
    }

    #[test]
    fn a_page_of_100_users_takes_at_most_two_statements() {
        let got = check(100, 0, 100);
        assert_eq!(got.len(), 100, "expected 100 users");
        assert_eq!(
            got.iter().map(|u| u.orders.len()).sum::<usize>(),
            159,
            "expected 159 orders"
        );
    }

    #[test]
    fn a_page_of_7_users_takes_at_most_two_statements() {
        let got = check(30, 12, 7);
        let ids: Vec<i64> = got.iter().map(|u| u.user.id).collect();
        assert_eq!(
            ids,
            (13..=19).collect::<Vec<_>>(),
            "expected users 13 to 19"
        );
        check(9, 0, 7);
    }

    #[test]
    fn users_without_orders_are_on_the_page() {
        for (after, limit) in [(0, 5), (12, 3)] {
            let got = check(20, after, limit);
            let last = &got[got.len() - 1];
            assert_eq!(
                (last.user.id, last.orders.len()),
                (after + limit, 0),
                "user {} has no orders and must be on the page with an empty list",
                after + limit
            );
        }
    }

    #[test]
    fn only_the_orders_of_the_page_are_loaded() {
        for (users, after, limit) in [(40, 10, 5), (12, 0, 3)] {
            let db = shop(users);
            let want = expected(&db.conn, after, limit);
            let needed: usize = want.iter().map(|u| u.orders.len().max(1)).sum();
            assert_eq!(
                page(&db, after, limit).unwrap(),
                want,
                "page(after {after}, limit {limit}) of {users} users: expected the users by id, \
                 each with their own orders by id"
            );
            let rows = db.rows.get();
            assert!(
                rows <= needed + want.len(),
                "page(after {after}, limit {limit}) read {rows} rows, expected at most {} \
                 (the page's users and their orders): the orders of users who are not on the \
                 page must stay in the database",
                needed + want.len()
            );
        }
    }

    #[test]
    fn an_empty_page_reads_no_orders() {
        for (users, after) in [(10, 10), (3, 50)] {
            let db = shop(users);
            assert_eq!(
                page(&db, after, 10).unwrap(),
                vec![],
                "no user after {after}"
            );
            assert_eq!(
                db.statements.get(),
                1,
                "no user on the page: expected 1 statement, with no query for orders"
            );
        }
    }
}
