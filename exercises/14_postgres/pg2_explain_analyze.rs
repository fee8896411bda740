// pg2_explain_analyze: estimated rows, actual rows, and stale statistics
//
// `EXPLAIN` shows the plan the planner chose and the rows it expected at each node
// ("Plan Rows"). `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` also runs the query and adds what
// really happened: "Actual Rows", and the pages each node touched ("Shared Hit Blocks",
// "Shared Read Blocks"). The planner's guesses come from statistics that `ANALYZE` collects.
// After a bulk load they describe the table as it was: here the seed held one customer only,
// so the planner believes every order belongs to customer 1 and no order to anyone else. Its
// estimates are off by a factor of 100 or 1000, and a plan built on them reads the whole table.
// An Index Only Scan has one more need: it skips the table only for pages that the visibility
// map marks all-visible, and VACUUM sets that map (PostgreSQL manual, 11.9 "Index-Only Scans
// and Covering Indexes"). `VACUUM (ANALYZE)` after a bulk load does both.
//
// Why it matters: a nightly import doubled a table, and the morning's reports took minutes
// instead of milliseconds until autovacuum's ANALYZE came round. The fix was one statement at
// the end of the import.
//
// Production caveat: autovacuum does this for you only later: it analyzes a table once the
// changed rows pass `autovacuum_analyze_threshold` + `autovacuum_analyze_scale_factor` × rows
// (50 + 10 % by default), on its own schedule, and it never processes temporary tables
// (PostgreSQL manual, 25.1.6 "The Autovacuum Daemon"). Queries that run right after a load
// need the statement at the end of the load.
//
// What to do: at the end of `bulk_load`, give `totals_for` an index it can answer from alone,
// then bring the statistics and the visibility map up to date (VACUUM cannot run inside a
// transaction block, so give it a `batch_execute` of its own).
// Run `backlings hint` if you are stuck.

use tokio_postgres::Client;

/// The report's query: every order total of one customer.
pub const TOTALS: &str = "SELECT total FROM orders WHERE customer_id = $1 ORDER BY total";

pub async fn create_schema(client: &Client) -> Result<(), tokio_postgres::Error> {
    // No autovacuum on this table: what the planner knows is up to the code below.
    client
        .batch_execute(
            "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL,
                                  total BIGINT NOT NULL) WITH (autovacuum_enabled = false)",
        )
        .await
}

/// The nightly import: orders `first..first + n`, spread over `customers` customers.
pub async fn bulk_load(
    client: &Client,
    first: i32,
    n: i32,
    customers: i32,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO orders SELECT i, i % $3::int, i * 7 % 1000
             FROM generate_series($1::int, $1::int + $2::int - 1) AS i",
            &[&first, &n, &customers],
        )
        .await?;
    // TODO: TOTALS has no index to use, and the planner still sees the table as it was
    // before this load. Fix both here.
    Ok(())
}

pub async fn totals_for(client: &Client, customer: i32) -> Result<Vec<i64>, tokio_postgres::Error> {
    let rows = client.query(TOTALS, &[&customer]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio_postgres::NoTls;

    async fn connect(db: &str) -> Client {
        let host = std::env::var("PGHOST").expect("PGHOST: run this through backlings");
        let port = std::env::var("PGPORT").map_or(5432, |p| p.parse().unwrap());
        let user = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
        let (client, conn) = tokio_postgres::Config::new()
            .host_path(&host)
            .port(port)
            .user(&user)
            .dbname(db)
            .connect(NoTls)
            .await
            .expect("connect to the throwaway PostgreSQL");
        tokio::spawn(conn);
        client
    }

    /// The seed: 20 orders, all of customer 1, analyzed. The statistics now say "customer 1".
    const SEED: i32 = 20;

    struct TestDb {
        admin: Client,
        name: String,
        client: Client,
    }

    impl TestDb {
        async fn new() -> TestDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let k = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("t_pg2_{}_{k}", std::process::id());
            let admin = connect("postgres").await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let client = connect(&name).await;
            // The throwaway server runs with synchronous_commit = off. VACUUM marks a page
            // all-visible only once the commits of its rows are flushed, so this session flushes
            // at each commit: what VACUUM does no longer depends on the WAL writer's timing.
            client
                .batch_execute("SET synchronous_commit = on")
                .await
                .unwrap();
            create_schema(&client).await.unwrap();
            client
                .batch_execute(&format!(
                    "INSERT INTO orders SELECT i, 1, i FROM generate_series(1, {SEED}) AS i;
                     ANALYZE orders;"
                ))
                .await
                .unwrap();
            TestDb {
                admin,
                name,
                client,
            }
        }

        /// `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of TOTALS for `customer`: the top node.
        async fn analyze(&self, customer: i32) -> Value {
            let sql = format!(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
                TOTALS.replace("$1", &customer.to_string())
            );
            let text = self
                .client
                .simple_query(&sql)
                .await
                .unwrap()
                .into_iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
                    _ => None,
                })
                .expect("EXPLAIN returns one row");
            let doc: Value = serde_json::from_str(&text).unwrap();
            doc[0]["Plan"].clone()
        }

        async fn drop(self) {
            let sql = format!("DROP DATABASE {} WITH (FORCE)", self.name);
            self.admin.batch_execute(&sql).await.unwrap();
        }
    }

    /// The scan node under any Sort: (node type, estimated rows, actual rows).
    fn scan(plan: &Value) -> (String, f64, f64) {
        let mut node = plan;
        while node["Node Type"] == "Sort" {
            node = &node["Plans"][0];
        }
        let num = |k: &str| node[k].as_f64().unwrap_or(-1.0);
        let kind = node["Node Type"].as_str().unwrap_or("?").to_string();
        (kind, num("Plan Rows"), num("Actual Rows"))
    }

    fn expected_totals(first: i32, n: i32, customers: i32, c: i32) -> Vec<i64> {
        let mut v: Vec<i64> = (first..first + n)
            .filter(|i| i % customers == c)
            .map(|i| (i64::from(i) * 7) % 1000)
            .collect();
        if c == 1 {
            v.extend(1..=i64::from(SEED));
        }
        v.sort();
        v
    }

    /// Why a load needs ANALYZE: after a plain INSERT the estimates are far off.
    #[tokio::test]
    async fn after_a_plain_insert_the_estimates_are_stale() {
        let db = TestDb::new().await;
        db.client
            .execute(
                "INSERT INTO orders SELECT i, i % 500, i FROM generate_series(100, 50099) AS i",
                &[],
            )
            .await
            .unwrap();
        let (_, plan_rows, actual) = scan(&db.analyze(7).await);
        assert!(
            actual >= 100.0 && plan_rows * 10.0 < actual,
            "the stale statistics expect almost no orders of customer 7: planned {plan_rows}, \
             actual {actual}"
        );
        db.drop().await;
    }

    #[tokio::test]
    async fn after_the_load_the_estimates_are_within_ten_times() {
        for (n, customers) in [(50_000, 500), (30_000, 150)] {
            let db = TestDb::new().await;
            bulk_load(&db.client, SEED + 1, n, customers).await.unwrap();
            for customer in [1, 7, customers - 1] {
                let plan = db.analyze(customer).await;
                let (kind, plan_rows, actual) = scan(&plan);
                assert!(
                    actual >= 1.0 && plan_rows <= actual * 10.0 && actual <= plan_rows * 10.0,
                    "customer {customer} of {customers}: the {kind} expected {plan_rows} rows \
                     and found {actual}; fresh statistics keep them within 10x"
                );
                let got = totals_for(&db.client, customer).await.unwrap();
                assert_eq!(got, expected_totals(SEED + 1, n, customers, customer));
            }
            db.drop().await;
        }
    }

    #[tokio::test]
    async fn the_report_is_an_index_only_scan() {
        for (n, customers) in [(50_000, 500), (30_000, 150)] {
            let db = TestDb::new().await;
            bulk_load(&db.client, SEED + 1, n, customers).await.unwrap();
            for customer in [7, customers / 2] {
                let plan = db.analyze(customer).await;
                let (kind, _, actual) = scan(&plan);
                assert_eq!(
                    kind, "Index Only Scan",
                    "customer {customer}: TOTALS should be answered from an index that holds \
                     both customer_id and total (plan: {plan})"
                );
                assert_eq!(
                    plan["Node Type"], "Index Only Scan",
                    "no Sort: the index delivers the order"
                );
                let blocks = plan["Shared Hit Blocks"].as_f64().unwrap_or(0.0)
                    + plan["Shared Read Blocks"].as_f64().unwrap_or(0.0);
                assert_eq!(
                    plan["Heap Fetches"], 0,
                    "customer {customer}: the Index Only Scan still visited the table; VACUUM \
                     sets the visibility map that lets it skip the table"
                );
                assert!(
                    blocks <= 10.0,
                    "{actual} rows of customer {customer} sit on a few index pages: expected at \
                     most 10 pages touched, got {blocks}"
                );
            }
            db.drop().await;
        }
    }
}
