// pg1_gin_jsonb: a GIN index serves JSON containment
//
// `docs.body` is `jsonb`, and the service finds documents by containment:
// `body @> '{"tag": "tag7"}'` is true when the body holds that key and value (at any depth
// the filter names: `{"meta": {"lang": "l3"}}` works too). A B-tree index on one extracted
// field, `(body->>'tag')`, serves `body->>'tag' = $1` and nothing else: the planner cannot
// use it for `@>`, so every search reads the whole table. A GIN index is an inverted index:
// for each key and value it lists the rows that hold it, like the term → documents index of
// `idx3_inverted_index`. PostgreSQL answers `@>` from it with a Bitmap Index Scan, then
// fetches only the matching rows (Bitmap Heap Scan).
//
// Why it matters: an events API let clients filter on any attribute of a JSON payload. The
// team indexed the two fields they knew about; the first client to filter on a third one
// brought a 40 M row table into every request.
//
// Production caveat: `jsonb_path_ops` indexes one hash per path-and-value, so it is usually
// much smaller and faster for `@>` than the default `jsonb_ops`, but it does not serve the
// key-exists operators `?`, `?|`, `?&` (PostgreSQL manual, 8.14.4 "jsonb Indexing"). And a
// GIN index makes writes slower: inserts go through a pending list (`fastupdate`) that is
// merged later.
//
// What to do: in `create_index`, create the index `docs_body_gin`: a GIN index over `body`
// with the `jsonb_path_ops` operator class. `find` is right as it is.
// Run `backlings hint` if you are stuck.

use tokio_postgres::Client;

pub const INDEX: &str = "docs_body_gin";

pub async fn create_schema(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute("CREATE TABLE docs (id INT PRIMARY KEY, body JSONB NOT NULL)")
        .await
}

/// The index that lets `find` skip the documents that cannot match.
pub async fn create_index(client: &Client) -> Result<(), tokio_postgres::Error> {
    // An inverted index: each path-and-value hash lists the rows that contain it.
    client
        .batch_execute("CREATE INDEX docs_body_gin ON docs USING gin (body jsonb_path_ops)")
        .await
}

/// Ids of the documents whose body contains `filter`, in id order.
pub async fn find(
    client: &Client,
    filter: &serde_json::Value,
) -> Result<Vec<i32>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id FROM docs WHERE body @> $1::text::jsonb ORDER BY id",
            &[&filter.to_string()],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
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

    const ROWS: i32 = 20_000;

    /// Document `i`: 100 tags, 40 languages, and one document whose tag has quotes in it.
    fn body(i: i32) -> Value {
        let tag = match i {
            ROWS => "it's \"quoted\"".to_string(),
            _ => format!("tag{}", i % 100),
        };
        json!({"tag": tag, "n": i, "meta": {"lang": format!("l{}", i % 40)}})
    }

    /// A database of its own, with ROWS documents, the learner's index, and fresh statistics.
    struct TestDb {
        admin: Client,
        name: String,
        client: Client,
    }

    impl TestDb {
        async fn new() -> TestDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let k = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("t_pg1_{}_{k}", std::process::id());
            let admin = connect("postgres").await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let client = connect(&name).await;
            create_schema(&client).await.unwrap();
            client
                .execute(
                    "INSERT INTO docs SELECT i, jsonb_build_object('tag', 'tag' || i % 100, 'n', i,
                         'meta', jsonb_build_object('lang', 'l' || i % 40))
                     FROM generate_series(1, $1 - 1) AS i",
                    &[&ROWS],
                )
                .await
                .unwrap();
            client
                .execute(
                    "INSERT INTO docs VALUES ($1, $2::text::jsonb)",
                    &[&ROWS, &body(ROWS).to_string()],
                )
                .await
                .unwrap();
            create_index(&client).await.expect("create_index");
            client.batch_execute("ANALYZE docs").await.unwrap();
            TestDb {
                admin,
                name,
                client,
            }
        }

        /// The plan of `find`'s query, on a connection of its own (no session settings).
        async fn plan(&self, filter: &Value) -> Value {
            let c = connect(&self.name).await;
            let literal = filter.to_string().replace('\'', "''");
            let sql = format!(
                "EXPLAIN (FORMAT JSON) SELECT id FROM docs WHERE body @> '{literal}' ORDER BY id"
            );
            let text = c
                .simple_query(&sql)
                .await
                .unwrap()
                .into_iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
                    _ => None,
                })
                .expect("EXPLAIN returns one row");
            serde_json::from_str(&text).unwrap()
        }

        async fn drop(self) {
            let sql = format!("DROP DATABASE {} WITH (FORCE)", self.name);
            self.admin.batch_execute(&sql).await.unwrap();
        }
    }

    /// Every plan node, depth first, as (node type, index name).
    fn nodes(plan: &Value, out: &mut Vec<(String, String)>) {
        let field = |k: &str| plan[k].as_str().unwrap_or("").to_string();
        out.push((field("Node Type"), field("Index Name")));
        for child in plan["Plans"].as_array().into_iter().flatten() {
            nodes(child, out);
        }
    }

    fn filters() -> [Value; 3] {
        [
            json!({"tag": "tag7"}),
            json!({"meta": {"lang": "l13"}}),
            json!({"tag": "tag42", "meta": {"lang": "l2"}}),
        ]
    }

    #[tokio::test]
    async fn containment_is_served_by_a_bitmap_index_scan_on_the_gin_index() {
        let db = TestDb::new().await;
        for filter in filters() {
            let plan = db.plan(&filter).await;
            let mut all = vec![];
            nodes(&plan[0]["Plan"], &mut all);
            assert!(
                all.contains(&("Bitmap Index Scan".to_string(), INDEX.to_string())),
                "for body @> {filter} expected a Bitmap Index Scan on {INDEX}, got the nodes \
                 {all:?}: a B-tree on one field cannot serve @>"
            );
            assert!(
                all.iter().all(|(node, _)| node != "Seq Scan"),
                "no Seq Scan for body @> {filter}: {all:?}"
            );
        }
        db.drop().await;
    }

    #[tokio::test]
    async fn the_index_is_gin_with_jsonb_path_ops() {
        let db = TestDb::new().await;
        let rows = db
            .client
            .query(
                "SELECT am.amname::text, opc.opcname::text, pg_get_indexdef(c.oid)
                 FROM pg_class c
                 JOIN pg_index i ON i.indexrelid = c.oid
                 JOIN pg_am am ON am.oid = c.relam
                 JOIN pg_opclass opc ON opc.oid = i.indclass[0]
                 WHERE c.relname = $1",
                &[&INDEX],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "expected one index named {INDEX}");
        let (am, opclass, def): (String, String, String) =
            (rows[0].get(0), rows[0].get(1), rows[0].get(2));
        assert_eq!(
            (am.as_str(), opclass.as_str()),
            ("gin", "jsonb_path_ops"),
            "{INDEX} must be a GIN index with the jsonb_path_ops operator class: {def}"
        );
        assert!(
            def.ends_with("USING gin (body jsonb_path_ops)"),
            "over the whole body, for every document: {def}"
        );
        db.drop().await;
    }

    #[tokio::test]
    async fn the_index_does_not_change_the_answers() {
        let db = TestDb::new().await;
        let mut cases: Vec<Value> = filters().into();
        cases.push(json!({"tag": "it's \"quoted\""}));
        cases.push(json!({"tag": "tag7", "meta": {"lang": "l8"}}));
        for filter in cases {
            let expected: Vec<i32> = (1..=ROWS)
                .filter(|&i| {
                    let b = body(i);
                    filter.as_object().unwrap().iter().all(|(k, v)| match v {
                        Value::Object(inner) => inner.iter().all(|(k2, v2)| &b[k][k2] == v2),
                        _ => &b[k] == v,
                    })
                })
                .collect();
            let got = find(&db.client, &filter).await.unwrap();
            assert_eq!(got.len(), expected.len(), "how many contain {filter}");
            assert_eq!(got, expected, "the ids that contain {filter}");
        }
        db.drop().await;
    }
}
