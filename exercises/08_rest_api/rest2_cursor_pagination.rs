// rest2_cursor_pagination: pages that hold still while the data moves
//
// `LIMIT 20 OFFSET 40` means "skip 40 rows, whatever they are now". If a row on an earlier
// page is deleted while a client pages through, every later row moves up one place and the
// client skips one; an insert near the front repeats one. Keyset (cursor) pagination says
// "the 20 rows after the last one you saw": `WHERE id > ?1 ORDER BY id LIMIT ?2`. The answer
// carries a `next_cursor` that the client sends back as is, and `null` when nothing is left.
// Asking for one row more than the page (`LIMIT limit + 1`) tells whether a next page exists
// without a second query. The table's own B-tree (`INTEGER PRIMARY KEY` is the rowid) serves
// `id > ?1` with a seek, so page 1000 costs what page 1 does; OFFSET walks every row it skips.
//
// Why it matters: a sync client paged through 2 million contacts with OFFSET. Users deleted
// contacts during the sync, and every deletion silently dropped one contact from the copy.
//
// Production caveat: a cursor must follow a unique, immutable sort order. To sort by a column
// that repeats, such as `created_at`, the cursor carries `(created_at, id)`, the query compares
// the pair, `WHERE (created_at, id) > (?1, ?2)`, and an index on `(created_at, id)` keeps it a
// seek.
//
// What to do: in `list`, replace the OFFSET query with a keyset one; answer `next_cursor` only
// when another page exists, and clamp `limit` to 1..=100 (20 when missing).
// Run `backlings hint` if you are stuck.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<Item>,
    /// Opaque to clients: send it back as `?cursor=` for the next page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub type Db = Arc<Mutex<Connection>>;

pub fn app(db: Db) -> Router {
    Router::new().route("/items", get(list)).with_state(db)
}

async fn list(State(db): State<Db>, Query(q): Query<PageQuery>) -> Result<Json<Page>, StatusCode> {
    // TODO: OFFSET pages shift when earlier rows are deleted. Page by key instead: the rows
    // with `id` after the cursor's, one more than the page to know if another page exists.
    // And clamp `limit` to 1..=MAX_LIMIT.
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    let offset: i64 = match q.cursor {
        None => 0,
        Some(c) => c.parse().map_err(|_| StatusCode::BAD_REQUEST)?,
    };
    let conn = db.lock().unwrap();
    let mut stmt = conn
        .prepare("SELECT id, name FROM items ORDER BY id LIMIT ?1 OFFSET ?2")
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let items: Vec<Item> = stmt
        .query_map(params![limit, offset], |r| {
            Ok(Item {
                id: r.get(0)?,
                name: r.get(1)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let next_cursor =
        (items.len() == limit as usize).then(|| (offset + i64::from(limit)).to_string());
    Ok(Json(Page { items, next_cursor }))
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tower::ServiceExt;

    fn db(rows: usize) -> Db {
        let conn = Connection::open_in_memory().unwrap();
        // Rows come back in reverse wherever a query leaves the order open: no ORDER BY, no order.
        conn.execute_batch("PRAGMA reverse_unordered_selects = ON")
            .unwrap();
        conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .unwrap();
        for i in 1..=rows {
            conn.execute(
                "INSERT INTO items (name) VALUES (?1)",
                [format!("item {i}")],
            )
            .unwrap();
        }
        Arc::new(Mutex::new(conn))
    }

    async fn get_page(app: &Router, query: &str) -> Result<Page, StatusCode> {
        let req = Request::get(format!("/items{query}"))
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        if res.status() != StatusCode::OK {
            return Err(res.status());
        }
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        Ok(serde_json::from_slice(&bytes).unwrap())
    }

    fn ids(page: &Page) -> Vec<i64> {
        page.items.iter().map(|i| i.id).collect()
    }

    /// Follows `next_cursor` to the end; returns the page sizes and every id seen.
    async fn walk(app: &Router, limit: u32) -> (Vec<usize>, Vec<i64>) {
        let (mut sizes, mut seen) = (Vec::new(), Vec::new());
        let mut query = format!("?limit={limit}");
        for _ in 0..100 {
            let page = get_page(app, &query)
                .await
                .unwrap_or_else(|s| panic!("GET /items{query}: expected 200, got {s}"));
            sizes.push(page.items.len());
            seen.extend(ids(&page));
            match page.next_cursor {
                Some(c) => query = format!("?limit={limit}&cursor={c}"),
                None => return (sizes, seen),
            }
        }
        panic!("still paging after 100 pages: does next_cursor ever become null?");
    }

    #[tokio::test]
    async fn paging_to_the_end_sees_every_row_once_and_no_empty_page() {
        for (rows, limit, sizes) in [
            (45, 20, vec![20, 20, 5]),
            (40, 20, vec![20, 20]),
            (7, 3, vec![3, 3, 1]),
        ] {
            let app = app(db(rows));
            let (got_sizes, seen) = walk(&app, limit).await;
            assert_eq!(
                got_sizes, sizes,
                "{rows} rows, {limit} a page: expected pages of {sizes:?}, and next_cursor null on the last one (no empty page after it)"
            );
            assert_eq!(
                seen,
                (1..=rows as i64).collect::<Vec<_>>(),
                "{rows} rows: every id once, in order"
            );
        }
    }

    #[tokio::test]
    async fn rows_deleted_and_added_between_pages_skip_and_repeat_nothing() {
        // Rows deleted behind the cursor (already seen) and ahead of it (never to be seen).
        for (limit, behind, ahead) in [(10, vec![2, 3], vec![15]), (4, vec![1, 2, 3], vec![6, 9])] {
            let db = db(30);
            let app = app(db.clone());
            let first = get_page(&app, &format!("?limit={limit}")).await.unwrap();
            assert_eq!(
                ids(&first),
                (1..=limit as i64).collect::<Vec<_>>(),
                "the first page of {limit}: ids 1 to {limit}, in order"
            );
            {
                let conn = db.lock().unwrap();
                for id in behind.iter().chain(&ahead) {
                    conn.execute("DELETE FROM items WHERE id = ?1", [id])
                        .unwrap();
                }
                conn.execute("INSERT INTO items (name) VALUES ('late')", [])
                    .unwrap();
            }
            let mut seen = ids(&first);
            let mut cursor = first.next_cursor.expect("30 rows: there is a next page");
            loop {
                let page = get_page(&app, &format!("?limit={limit}&cursor={cursor}"))
                    .await
                    .unwrap();
                seen.extend(ids(&page));
                match page.next_cursor {
                    Some(c) => cursor = c,
                    None => break,
                }
            }
            let expected: Vec<i64> = (1..=31).filter(|i| !ahead.contains(i)).collect();
            assert_eq!(
                seen, expected,
                "after deleting {behind:?} (seen) and {ahead:?} (not yet seen): no row skipped or repeated, and the row added at the end comes once"
            );
        }
    }

    #[tokio::test]
    async fn the_limit_is_clamped_and_defaults_to_twenty() {
        let app = app(db(150));
        for (query, expected) in [
            ("", 20),
            ("?limit=1000", 100),
            ("?limit=100", 100),
            ("?limit=0", 1),
            ("?limit=7", 7),
        ] {
            let page = get_page(&app, query).await.unwrap();
            assert_eq!(
                page.items.len(),
                expected,
                "GET /items{query}: expected {expected} items"
            );
        }
    }

    #[tokio::test]
    async fn a_cursor_that_is_not_ours_is_a_bad_request() {
        let app = app(db(5));
        for query in ["?cursor=abc", "?cursor=", "?limit=-1"] {
            assert_eq!(
                get_page(&app, query).await,
                Err(StatusCode::BAD_REQUEST),
                "GET /items{query}: expected 400"
            );
        }
    }

    /// SQLite virtual-machine steps spent answering `query`: the cost of the query itself.
    async fn steps(app: &Router, db: &Db, query: &str) -> u64 {
        let count = std::sync::Arc::new(AtomicU64::new(0));
        let c = count.clone();
        db.lock()
            .unwrap()
            .progress_handler(
                1,
                Some(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                    false
                }),
            )
            .unwrap();
        get_page(app, query).await.unwrap();
        db.lock()
            .unwrap()
            .progress_handler(1, None::<fn() -> bool>)
            .unwrap();
        count.load(Ordering::Relaxed)
    }

    #[tokio::test]
    async fn a_deep_page_costs_what_an_early_page_costs() {
        for limit in [20, 5] {
            let db = db(3000);
            let app = app(db.clone());
            let early = steps(&app, &db, &format!("?limit={limit}&cursor=20")).await;
            let deep = steps(&app, &db, &format!("?limit={limit}&cursor=2900")).await;
            assert!(early > 0, "the query ran no SQLite steps at all?");
            let budget = 20 * (limit + 1) + 50;
            assert!(
                early <= budget,
                "a page of {limit} took {early} SQLite steps: expected at most {budget}, a few \
                 per row returned; a query that reads the whole table takes thousands"
            );
            assert!(
                deep < early * 2,
                "a page after row 2900 took {deep} SQLite steps, one after row 20 took {early}: \
                 expected about the same, as a keyset query seeks straight to its rows \
                 (OFFSET, or filtering in Rust, walks everything before them)"
            );
        }
    }
}
