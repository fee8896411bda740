// idx3_inverted_index: term -> rows, the idea behind GIN
//
// A B-tree on `body` helps `body = ?`, not "which documents contain this word". For that,
// databases keep an inverted index: for each term, the list of rows that contain it. To find
// the documents with every word, read the lists of those few words and intersect them; the
// documents themselves are never scanned. PostgreSQL calls this a GIN index (Generalized
// Inverted iNdex) and uses it for full-text search, arrays and jsonb. SQLite has two ways to
// show it: FTS5, a full-text index over words (its plan row is `SCAN docs_fts VIRTUAL TABLE
// INDEX ...`: SQLite says SCAN for every virtual table, the search is FTS5's own), and a
// plain table you build yourself, `doc_tags(tag, doc_id)` with an index on `(tag, doc_id)`:
// the rows of one tag sit side by side in that B-tree, ready to be read.
//
// Why it matters: a support tool searched tickets with `body LIKE '%refund%'`. Every search
// read every ticket, and "refund" also matched "refunded" and "nonrefundable". An inverted
// index made search cost what the matches cost, and matched words, not substrings.
//
// Where PostgreSQL differs: a GIN index answers `tags @> ARRAY['a','b']` (contains all) and
// `tags && ARRAY['a','b']` (contains any) directly, and full-text search with `tsvector @@
// tsquery`; its plan shows a Bitmap Index Scan on the index. GIN is slower to update than a
// B-tree; its fastupdate pending list trades write cost for search cost
// (https://www.postgresql.org/docs/current/gin.html). FTS5's query syntax has operators
// (AND, OR, NOT, NEAR, `*`, `"`): user input goes in as quoted strings, bound as a parameter
// (https://sqlite.org/fts5.html, section 3).
//
// What to do: write `search_words` with the FTS5 index, and `with_all_tags` with `doc_tags`.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, ToSql, params_from_iter};
use std::collections::BTreeSet;

/// Creates the schema. Runs once, on an empty database.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         -- Full-text index over the words of each body; its rowid is the document's id.
         CREATE VIRTUAL TABLE docs_fts USING fts5(body);
         CREATE TABLE doc_tags (
             doc_id INTEGER NOT NULL REFERENCES docs(id),
             tag TEXT NOT NULL,
             PRIMARY KEY (doc_id, tag)
         );
         -- The inverted direction: tag -> documents. It holds both columns, so it covers.
         CREATE INDEX idx_doc_tags_tag ON doc_tags(tag, doc_id);",
    )
}

pub fn add_doc(conn: &Connection, id: i64, body: &str, tags: &[&str]) -> rusqlite::Result<()> {
    conn.execute("INSERT INTO docs (id, body) VALUES (?1, ?2)", (id, body))?;
    conn.execute(
        "INSERT INTO docs_fts (rowid, body) VALUES (?1, ?2)",
        (id, body),
    )?;
    for tag in tags {
        conn.execute("INSERT OR IGNORE INTO doc_tags VALUES (?1, ?2)", (id, tag))?;
    }
    Ok(())
}

/// `?, ?, ?` for `n` values.
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The ids of the documents with at least one of `tags`, by id.
pub fn with_any_tag(conn: &Connection, tags: &[&str]) -> rusqlite::Result<Vec<i64>> {
    let sql = format!(
        "SELECT DISTINCT doc_id FROM doc_tags WHERE tag IN ({}) ORDER BY doc_id",
        marks(tags.len())
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(tags), |r| r.get(0))?;
    rows.collect()
}

/// The SQL of `with_all_tags` for `n` distinct tags, bound as `?1..?n` and the count last.
pub fn all_tags_sql(n: usize) -> String {
    // TODO: one statement that reads only the doc_tags rows of the n tags (`marks(n)`) and
    // keeps the documents that have all of them, by doc_id.
    todo!("the documents with all {n} tags")
}

/// The ids of the documents with every one of `tags` (none asked: every document), by id.
pub fn with_all_tags(conn: &Connection, tags: &[&str]) -> rusqlite::Result<Vec<i64>> {
    if tags.is_empty() {
        let mut stmt = conn.prepare("SELECT id FROM docs ORDER BY id")?;
        return stmt.query_map([], |r| r.get(0))?.collect();
    }
    let distinct: BTreeSet<&str> = tags.iter().copied().collect();
    let count = distinct.len() as i64;
    let mut values: Vec<&dyn ToSql> = distinct.iter().map(|t| t as &dyn ToSql).collect();
    values.push(&count);
    let mut stmt = conn.prepare(&all_tags_sql(distinct.len()))?;
    let rows = stmt.query_map(values.as_slice(), |r| r.get(0))?;
    rows.collect()
}

/// The ids of the documents that contain every one of `words` (each may be several tokens,
/// which must then appear in a row), by id.
pub fn search_words(conn: &Connection, words: &[&str]) -> rusqlite::Result<Vec<i64>> {
    // TODO: this reads every body and matches substrings ("cat" finds "category"). Ask the
    // full-text index docs_fts instead, in one MATCH of all the words, with user input as
    // FTS5 strings, not syntax.
    let mut stmt = conn.prepare("SELECT id FROM docs WHERE body LIKE '%' || ?1 || '%'")?;
    let mut found: Option<BTreeSet<i64>> = None;
    for word in words {
        let ids: BTreeSet<i64> = stmt
            .query_map([word], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        found = Some(match found {
            None => ids,
            Some(f) => f.intersection(&ids).copied().collect(),
        });
    }
    Ok(found.unwrap_or_default().into_iter().collect())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    const WORDS: [&str; 13] = [
        "refund",
        "refunded",
        "order",
        "late",
        "cat",
        "category",
        "don't",
        "OR",
        "NOT",
        "say \"hi\"",
        "parcel",
        "lost",
        "o\"hara",
    ];
    const TAGS: [&str; 20] = [
        "billing",
        "urgent",
        "vip",
        "o'reilly",
        "say \"hi\"",
        "a",
        "b",
        "c",
        "t1",
        "t2",
        "t3",
        "t4",
        "t5",
        "t6",
        "t7",
        "t8",
        "t9",
        "t10",
        "t11",
        "t12",
    ];

    type Doc = (i64, String, Vec<&'static str>);

    fn corpus(n: i64, seed: u64) -> Vec<Doc> {
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (1..=n)
            .map(|id| {
                let words: Vec<&str> = (0..4).map(|_| WORDS[next() as usize % 13]).collect();
                let tags = (0..3).map(|_| TAGS[next() as usize % 20]).collect();
                (id, words.join(" "), tags)
            })
            .collect()
    }

    fn load(docs: &[Doc]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for (id, body, tags) in docs {
            add_doc(&tx, *id, body, tags).unwrap();
        }
        tx.commit().unwrap();
        conn
    }

    /// Lower-cased alphanumeric tokens, as FTS5's default tokenizer sees them.
    fn tokens(s: &str) -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase)
            .collect()
    }

    fn expect_words(docs: &[Doc], words: &[&str]) -> Vec<i64> {
        let has = |body: &str, w: &str| {
            let (b, w) = (tokens(body), tokens(w));
            b.windows(w.len()).any(|win| win == w.as_slice())
        };
        let hits = docs.iter().filter(|d| words.iter().all(|w| has(&d.1, w)));
        hits.map(|d| d.0).collect()
    }

    fn expect_tags(docs: &[Doc], tags: &[&str]) -> Vec<i64> {
        let hits = docs.iter().filter(|d| tags.iter().all(|t| d.2.contains(t)));
        hits.map(|d| d.0).collect()
    }

    /// SQLite VM steps spent inside `f`.
    fn steps<T>(conn: &mut Connection, f: impl FnOnce(&Connection) -> T) -> (T, u64) {
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        let tick = move || {
            c.fetch_add(1, Ordering::Relaxed);
            false
        };
        conn.progress_handler(1, Some(tick)).unwrap();
        let out = f(conn);
        conn.progress_handler(1, None::<fn() -> bool>).unwrap();
        (out, count.load(Ordering::Relaxed))
    }

    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = stmt.raw_query();
        let mut details = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            details.push(row.get::<_, String>(3).unwrap());
        }
        details
    }

    const SETS: [(i64, u64); 2] = [(1500, 0x9E37_79B9), (700, 2_463_534_242)];

    #[test]
    fn all_tags_reads_the_covering_index() {
        for (n, seed) in SETS {
            let docs = corpus(n, seed);
            let mut conn = load(&docs);
            for tags in [vec!["vip", "urgent"], vec!["o'reilly", "say \"hi\"", "a"]] {
                let (got, vm) = steps(&mut conn, |c| with_all_tags(c, &tags).unwrap());
                assert_eq!(got, expect_tags(&docs, &tags), "with_all_tags({tags:?})");
                let entries = docs
                    .iter()
                    .map(|d| d.2.iter().filter(|t| tags.contains(t)).count());
                let budget = 25 * entries.sum::<usize>() as u64 + 200;
                assert!(
                    vm <= budget,
                    "with_all_tags({tags:?}) on {n} documents: {vm} VM steps, expected at most \
                     {budget}: read the index entries of those tags, not every row"
                );
            }
            for k in [1, 3] {
                let got = plan(&conn, &all_tags_sql(k));
                let want = "SEARCH doc_tags USING COVERING INDEX idx_doc_tags_tag (tag=?)";
                assert!(
                    got.iter().any(|d| d == want) && !got.iter().any(|d| d.starts_with("SCAN")),
                    "all_tags_sql({k}): expected `{want}` and no SCAN, got {got:?}"
                );
            }
            // The statement alone must answer: no filtering of its rows afterwards.
            for tags in [vec!["vip", "urgent"], vec!["a", "b", "t3"]] {
                let mut stmt = conn.prepare(&all_tags_sql(tags.len())).unwrap();
                let k = tags.len() as i64;
                let mut values: Vec<&dyn ToSql> = tags.iter().map(|t| t as &dyn ToSql).collect();
                values.push(&k);
                let rows: Vec<i64> = stmt
                    .query_map(values.as_slice(), |r| r.get(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                assert_eq!(
                    rows,
                    expect_tags(&docs, &tags),
                    "all_tags_sql({k}) run on its own with {tags:?} and {k}: expected exactly the \
                     documents with all {k} tags, by doc_id"
                );
            }
        }
    }

    #[test]
    fn all_and_any_tags_are_right_with_duplicates_and_quotes() {
        for (n, seed) in SETS {
            let docs = corpus(n, seed);
            let conn = load(&docs);
            for tags in [
                vec!["billing"],
                vec!["a", "b", "c"],
                vec!["vip", "vip"],
                vec!["o'reilly", "o'reilly", "billing"],
                vec!["say \"hi\"", "nope"],
                vec![],
            ] {
                assert_eq!(
                    with_all_tags(&conn, &tags).unwrap(),
                    expect_tags(&docs, &tags),
                    "with_all_tags({tags:?}): the documents with every tag, by id; a repeated \
                     tag counts once, and no tag asked means every document"
                );
            }
            let any = with_any_tag(&conn, &["vip", "o'reilly"]).unwrap();
            let want: Vec<i64> = docs
                .iter()
                .filter(|d| d.2.contains(&"vip") || d.2.contains(&"o'reilly"))
                .map(|d| d.0)
                .collect();
            assert_eq!(any, want, "with_any_tag");
        }
    }

    #[test]
    fn search_matches_words_not_substrings() {
        for (n, seed) in SETS {
            let docs = corpus(n, seed);
            let conn = load(&docs);
            for words in [
                vec!["refund"],
                vec!["cat", "late"],
                vec!["don't"],
                vec!["OR"],
                vec!["NOT", "parcel"],
                vec!["say \"hi\""],
                vec!["o\"hara"],
                vec!["refunded", "category", "lost"],
                vec!["missing"],
            ] {
                let got = search_words(&conn, &words);
                assert_eq!(
                    got.as_ref().ok(),
                    Some(&expect_words(&docs, &words)),
                    "search_words({words:?}): the documents that contain every word (as whole \
                     words; quotes and operators are text), by id"
                );
            }
        }
    }

    #[test]
    fn search_reads_the_full_text_index() {
        for (n, seed) in SETS {
            let docs = corpus(n, seed);
            let mut conn = load(&docs);
            for words in [vec!["lost"], vec!["cat", "refund"]] {
                let (got, vm) = steps(&mut conn, |c| search_words(c, &words).unwrap());
                assert_eq!(got, expect_words(&docs, &words), "search_words({words:?})");
                let budget = 12 * got.len() as u64 + 300;
                assert!(
                    vm <= budget,
                    "search_words({words:?}) on {n} documents: {vm} VM steps for {} hits, \
                     expected at most {budget}: one MATCH of all the words (FTS5 ANDs them) \
                     costs about what it returns; a query per word reads every posting of each \
                     word, and scanning docs reads every body",
                    got.len()
                );
            }
            let got = plan(&conn, "SELECT rowid FROM docs_fts WHERE docs_fts MATCH ?1");
            assert!(
                got.iter().any(|d| d.contains("VIRTUAL TABLE INDEX")),
                "a MATCH on docs_fts is answered by FTS5's own index, got {got:?}"
            );
        }
    }
}
