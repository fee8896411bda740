// idx1_explain_btree: read the plan, then give the query a B-tree to search
//
// `EXPLAIN QUERY PLAN <query>` shows how SQLite will run a query, one row per step, with the
// step in its `detail` column. `SCAN orders` reads the whole table, row by row. `SEARCH orders
// USING INDEX idx_orders_customer (customer_id=?)` walks down a B-tree to the first matching
// entry and reads only the matches. To see what a run cost, SQLite counts work per statement
// (`Statement::get_status`): `FullscanStep` counts rows stepped through by a full scan,
// `VmStep` the virtual machine's steps. These counters are the closest this bundled build
// offers to PostgreSQL's `EXPLAIN ANALYZE` (per-loop counts from `sqlite3_stmt_scanstatus`
// need SQLite compiled with SQLITE_ENABLE_STMT_SCANSTATUS).
//
// Why it matters: "orders of one customer" took 2 ms in staging, with a thousand orders. A
// year later the table held ten million rows and the same page took seconds: every request
// scanned the whole table. One index turned the scan into a search, and the page into
// milliseconds again.
//
// Where PostgreSQL differs: `EXPLAIN ANALYZE` there runs the query and reports actual rows and
// times for each node next to the planner's estimates; SQLite's `EXPLAIN QUERY PLAN` only shows
// the plan. Both planners pick plans from statistics that `ANALYZE` gathers (PostgreSQL's
// pg_statistic; SQLite's sqlite_stat1 table), so run `ANALYZE` after a bulk load
// (https://sqlite.org/lang_analyze.html, https://www.postgresql.org/docs/current/sql-explain.html).
//
// What to do: in `migrate`, create the B-tree index `idx_orders_customer` on
// `orders(customer_id)`, so that `ORDERS_OF_CUSTOMER` searches instead of scanning.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, params};

/// The query the orders page runs, for one customer.
pub const ORDERS_OF_CUSTOMER: &str =
    "SELECT id, customer_id, total_cents FROM orders WHERE customer_id = ?1 ORDER BY id";

/// Creates the schema. Runs once, on an empty database.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE orders (
             id INTEGER PRIMARY KEY,
             customer_id INTEGER NOT NULL,
             total_cents INTEGER NOT NULL
         );",
        // TODO: create the index `idx_orders_customer` on orders(customer_id).
    )
}

/// The orders of `customer_id`, by id, as `(id, customer_id, total_cents)`.
pub fn orders_of(conn: &Connection, customer_id: i64) -> rusqlite::Result<Vec<(i64, i64, i64)>> {
    let mut stmt = conn.prepare_cached(ORDERS_OF_CUSTOMER)?;
    let rows = stmt.query_map(params![customer_id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    rows.collect()
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    const TABLE: &str = "CREATE TABLE orders (id INTEGER PRIMARY KEY, \
                         customer_id INTEGER NOT NULL, total_cents INTEGER NOT NULL)";

    /// `rows` orders spread over `customers` customers by a seeded xorshift.
    fn fill(conn: &Connection, rows: i64, customers: i64, seed: u64) {
        let mut x = seed;
        let tx = conn.unchecked_transaction().unwrap();
        for _ in 0..rows {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let customer = (x % customers as u64) as i64 + 1;
            tx.execute(
                "INSERT INTO orders (customer_id, total_cents) VALUES (?1, ?2)",
                params![customer, (x % 10_000) as i64],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        // raw_query: the plan needs no parameter values.
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = stmt.raw_query();
        let mut details = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            details.push(row.get::<_, String>(3).unwrap());
        }
        details
    }

    /// Runs the query on a fresh statement and returns (rows, FullscanStep, VmStep).
    fn measured(conn: &Connection, sql: &str, customer: i64) -> (Vec<(i64, i64, i64)>, i32, i32) {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows: Vec<(i64, i64, i64)> = stmt
            .query_map([customer], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let fullscan = stmt.get_status(StatementStatus::FullscanStep);
        let vm = stmt.get_status(StatementStatus::VmStep);
        (rows, fullscan, vm)
    }

    /// The answer, from a table with no index at all, computed in Rust.
    fn expected(conn: &Connection, customer: i64) -> Vec<(i64, i64, i64)> {
        let mut stmt = conn.prepare("SELECT * FROM orders").unwrap();
        let all = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
        let mut rows: Vec<(i64, i64, i64)> = all.unwrap().map(Result::unwrap).collect();
        rows.retain(|r| r.1 == customer);
        rows.sort();
        rows
    }

    fn shop(rows: i64, customers: i64, seed: u64) -> (Connection, Connection) {
        let indexed = Connection::open_in_memory().unwrap();
        migrate(&indexed).expect("migrate works");
        fill(&indexed, rows, customers, seed);
        let bare = Connection::open_in_memory().unwrap();
        bare.execute_batch(TABLE).unwrap();
        fill(&bare, rows, customers, seed);
        (indexed, bare)
    }

    #[test]
    fn the_plan_searches_the_customer_index() {
        for (rows, customers) in [(1000, 40), (600, 7)] {
            let (conn, bare) = shop(rows, customers, 0x9E37_79B9);
            let want = "SEARCH orders USING INDEX idx_orders_customer (customer_id=?)";
            assert_eq!(
                plan(&conn, ORDERS_OF_CUSTOMER),
                vec![want.to_string()],
                "expected the plan to be the one step `{want}`: a B-tree search, in id order"
            );
            assert_eq!(
                plan(&bare, ORDERS_OF_CUSTOMER),
                vec!["SCAN orders".to_string()],
                "without the index the same query scans the table"
            );
        }
    }

    #[test]
    fn the_search_steps_through_no_table_scan() {
        for (rows, customers, seed) in [(1000, 40, 7), (600, 7, 99)] {
            let (conn, bare) = shop(rows, customers, seed);
            for customer in [1, customers, customers + 1] {
                let (_, before, _) = measured(&bare, ORDERS_OF_CUSTOMER, customer);
                assert_eq!(
                    before,
                    rows as i32 - 1,
                    "no index: the scan steps past every row"
                );
                let (got, fullscan, vm) = measured(&conn, ORDERS_OF_CUSTOMER, customer);
                assert_eq!(
                    fullscan, 0,
                    "customer {customer} of {rows} orders: expected FullscanStep 0 (a search \
                     reads only the matches), got {fullscan}"
                );
                let budget = 20 * got.len() as i32 + 40;
                assert!(
                    vm <= budget,
                    "customer {customer}: {vm} VM steps for {} rows, expected at most {budget}",
                    got.len()
                );
            }
        }
    }

    #[test]
    fn the_results_do_not_change() {
        for (rows, customers, seed) in [(1000, 40, 3), (600, 7, 12345)] {
            let (conn, bare) = shop(rows, customers, seed);
            let mut total = 0;
            for customer in 0..=customers + 1 {
                let got = orders_of(&conn, customer).expect("orders_of works");
                assert_eq!(
                    got,
                    expected(&bare, customer),
                    "customer {customer}: expected every order of that customer, by id"
                );
                total += got.len();
            }
            assert_eq!(total, rows as usize, "every order belongs to one customer");
        }
    }
}
