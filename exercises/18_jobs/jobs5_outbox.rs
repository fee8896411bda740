// jobs5_outbox: the event commits with the data
//
// A service that stores an order and then tells the world ("order_placed") writes to two
// places: its database and a message broker. No transaction spans both, so a crash between
// the two loses the event, or publishes one for an order that was rolled back. The
// transactional outbox makes it one write: the event is a row in an `outbox` table, inserted
// by the same transaction as the order. A relay reads unpublished rows, publishes them in
// order and marks each one published. The relay can crash after publishing and before marking,
// so an event can go out twice: consumers keep the ids of the events they applied and skip a
// repeat (in the same transaction as the effect).
//
// Why it matters: a shop committed each order, then sent its event to the warehouse. During
// deploys, pods were killed between the two, and a few orders a week were paid for and never
// shipped. Nobody noticed until the customers did.
//
// Production caveat: the relay gives at-least-once delivery, never exactly-once: a consumer
// that does not dedupe ships twice. Polling is the simple relay; Debezium reads the outbox
// from the database's log instead (PostgreSQL logical decoding). Either way, delete or archive
// published rows, or the outbox grows forever.
//
// What to do: in `place_order`, write the event in the order's transaction.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, params};
use serde_json::json;

pub fn open_shop() -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    // An outbox row's id is its event id: consumers dedupe on it.
    conn.execute_batch(
        "CREATE TABLE stock (item TEXT PRIMARY KEY, qty INTEGER NOT NULL CHECK (qty >= 0));
         CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL, qty INTEGER NOT NULL);
         CREATE TABLE outbox (
             id        INTEGER PRIMARY KEY,
             payload   TEXT NOT NULL,
             published INTEGER NOT NULL DEFAULT 0
         );",
    )?;
    Ok(conn)
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("unknown item {0}")]
    UnknownItem(String),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

/// Stores the order, takes the stock (an oversold item fails the CHECK) and records the
/// `order_placed` event. Returns the order's id.
pub fn place_order(conn: &mut Connection, item: &str, qty: i64) -> Result<i64, OrderError> {
    let tx = conn.transaction()?;
    let sql = "INSERT INTO orders (item, qty) VALUES (?1, ?2)";
    tx.execute(sql, params![item, qty])?;
    let id = tx.last_insert_rowid();
    let sql = "UPDATE stock SET qty = qty - ?2 WHERE item = ?1";
    if tx.execute(sql, params![item, qty])? == 0 {
        return Err(OrderError::UnknownItem(item.to_string()));
    }
    tx.commit()?;
    // TODO: the order is committed before its event exists. A crash here (or a failed insert)
    // loses the event for good. Write the event with the order, in one transaction.
    let event = json!({ "type": "order_placed", "order": id, "item": item, "qty": qty });
    let sql = "INSERT INTO outbox (payload) VALUES (?1)";
    conn.execute(sql, [event.to_string()])?;
    Ok(id)
}

/// A message broker (Kafka, RabbitMQ, SNS...). `Err` means "not known to be delivered": the
/// message may have arrived anyway.
pub trait Broker {
    fn publish(&mut self, event_id: i64, payload: &str) -> Result<(), String>;
}

/// Publishes the unpublished events in order and marks each one once the broker took it;
/// stops at the first failure, so the next run starts there. Returns how many it published.
pub fn relay(conn: &Connection, broker: &mut dyn Broker) -> rusqlite::Result<usize> {
    let sql = "SELECT id, payload FROM outbox WHERE published = 0 ORDER BY id";
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let events = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut sent = 0;
    for (id, payload) in events {
        if broker.publish(id, &payload).is_err() {
            break;
        }
        conn.execute("UPDATE outbox SET published = 1 WHERE id = ?1", [id])?;
        sent += 1;
    }
    Ok(sent)
}

pub fn open_warehouse() -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE TABLE processed (event_id INTEGER PRIMARY KEY);
         CREATE TABLE shipments (event_id INTEGER NOT NULL, payload TEXT NOT NULL);",
    )?;
    Ok(conn)
}

/// The consumer: ships each event once. Returns false for a repeat it skipped.
pub fn consume(conn: &mut Connection, event_id: i64, payload: &str) -> rusqlite::Result<bool> {
    let tx = conn.transaction()?;
    let sql = "INSERT OR IGNORE INTO processed (event_id) VALUES (?1)";
    let first = tx.execute(sql, [event_id])? == 1;
    if first {
        let sql = "INSERT INTO shipments (event_id, payload) VALUES (?1, ?2)";
        tx.execute(sql, params![event_id, payload])?;
    }
    tx.commit()?;
    Ok(first)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// What the fake broker does with one publish.
    #[derive(Clone, Copy)]
    enum Outcome {
        Ok,
        /// The broker is down: nothing delivered, an error.
        Down,
        /// Delivered, but the answer was lost: an error although the message went out.
        LostAck,
    }

    #[derive(Default)]
    struct FakeBroker {
        script: VecDeque<Outcome>,
        delivered: Vec<(i64, String)>,
    }

    impl Broker for FakeBroker {
        fn publish(&mut self, event_id: i64, payload: &str) -> Result<(), String> {
            match self.script.pop_front().unwrap_or(Outcome::Ok) {
                Outcome::Down => Err("broker unavailable".into()),
                outcome => {
                    self.delivered.push((event_id, payload.to_string()));
                    match outcome {
                        Outcome::LostAck => Err("timed out waiting for the ack".into()),
                        _ => Ok(()),
                    }
                }
            }
        }
    }

    fn shop(stock: &[(&str, i64)]) -> Connection {
        let conn = open_shop().unwrap();
        for (item, qty) in stock {
            let sql = "INSERT INTO stock (item, qty) VALUES (?1, ?2)";
            conn.execute(sql, params![item, qty]).unwrap();
        }
        conn
    }

    fn orders(conn: &Connection) -> Vec<(i64, String, i64)> {
        let mut stmt = conn
            .prepare("SELECT id, item, qty FROM orders ORDER BY id")
            .unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
        rows.unwrap().map(Result::unwrap).collect()
    }

    /// The order each outbox event describes, in outbox order.
    fn events(conn: &Connection) -> Vec<(i64, String, i64)> {
        let mut stmt = conn
            .prepare("SELECT payload FROM outbox ORDER BY id")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(|p| described(&p.unwrap())).collect()
    }

    fn described(payload: &str) -> (i64, String, i64) {
        let v: Value = serde_json::from_str(payload).expect("an event is JSON");
        assert_eq!(v["type"], "order_placed", "event {payload}");
        let item = v["item"].as_str().unwrap().to_string();
        (
            v["order"].as_i64().unwrap(),
            item,
            v["qty"].as_i64().unwrap(),
        )
    }

    fn stock_of(conn: &Connection, item: &str) -> i64 {
        let sql = "SELECT qty FROM stock WHERE item = ?1";
        conn.query_row(sql, [item], |r| r.get(0)).unwrap()
    }

    #[test]
    fn each_order_and_its_event_are_stored_together() {
        let cases: [&[(&str, i64)]; 2] = [&[("apple", 3), ("pear", 4)], &[("plum", 5)]];
        for placed in cases {
            let mut conn = shop(&[("apple", 10), ("pear", 10), ("plum", 5)]);
            let mut expected = Vec::new();
            for (item, qty) in placed {
                let id = place_order(&mut conn, item, *qty).expect("the order is valid");
                expected.push((id, item.to_string(), *qty));
            }
            let ids: Vec<i64> = (1..=placed.len() as i64).collect();
            let got: Vec<i64> = expected.iter().map(|o| o.0).collect();
            assert_eq!(got, ids, "orders get the ids 1, 2, ...");
            assert_eq!(orders(&conn), expected, "every order is stored");
            assert_eq!(events(&conn), expected, "one order_placed event per order");
        }
    }

    #[test]
    fn a_failed_event_write_leaves_no_order() {
        // The outbox refuses events from `limit` items up: the write fails like a crash right
        // before it would. The order must not stay without its event.
        for (item, limit, good, bad) in [("apple", 5, 4, 5), ("pear", 2, 1, 7)] {
            let mut conn = shop(&[(item, 10)]);
            conn.execute_batch(&format!(
                "CREATE TRIGGER outbox_down BEFORE INSERT ON outbox
                 WHEN json_extract(NEW.payload, '$.qty') >= {limit}
                 BEGIN SELECT RAISE(ABORT, 'outbox unavailable'); END;
                 CREATE TABLE order_feed (id INTEGER);
                 CREATE TRIGGER feed AFTER INSERT ON orders
                 BEGIN INSERT INTO order_feed VALUES (NEW.id); END;"
            ))
            .unwrap();
            let result = place_order(&mut conn, item, bad);
            assert!(result.is_err(), "the event write failed: expected an error");
            assert_eq!(
                orders(&conn),
                vec![],
                "the event of {bad} {item} was never written, so the order must not exist: \
                 an order committed before its event is never shipped"
            );
            assert_eq!(stock_of(&conn, item), 10, "the stock of {item} stays at 10");
            let feed: i64 = conn
                .query_row("SELECT count(*) FROM order_feed", [], |r| r.get(0))
                .unwrap();
            assert_eq!(
                feed, 0,
                "a change feed saw the order of {bad} {item} committed: expected none. An order \
                 deleted after its commit was seen by every reader in between, and a crash \
                 before the delete keeps it"
            );
            let id = place_order(&mut conn, item, good).expect("a smaller order works");
            let expected = vec![(id, item.to_string(), good)];
            assert_eq!(orders(&conn), expected, "then one order of {good} {item}");
            assert_eq!(events(&conn), expected, "and its one event");
        }
    }

    #[test]
    fn each_order_is_one_commit_with_its_event() {
        let cases: [&[(&str, i64, bool)]; 2] = [
            &[
                ("apple", 3, true),
                ("kiwi", 1, false),
                ("pear", 11, false),
                ("pear", 2, true),
            ],
            &[
                ("fig", 2, false),
                ("apple", 10, true),
                ("apple", 1, false),
                ("pear", 4, true),
            ],
        ];
        for placed in cases {
            let mut conn = shop(&[("apple", 10), ("pear", 10)]);
            let commits = Arc::new(AtomicUsize::new(0));
            let counter = commits.clone();
            let hook = move || {
                counter.fetch_add(1, Ordering::SeqCst);
                false
            };
            conn.commit_hook(Some(hook)).unwrap();
            for (item, qty, ok) in placed {
                let before = commits.load(Ordering::SeqCst);
                let result = place_order(&mut conn, item, *qty);
                assert_eq!(result.is_ok(), *ok, "{qty} {item}: expected ok = {ok}");
                let n = commits.load(Ordering::SeqCst) - before;
                assert_eq!(
                    n, *ok as usize,
                    "placing {qty} {item} committed {n} times, expected {}: the order and its \
                     event commit together or not at all. Between two commits, a crash leaves \
                     one without the other",
                    *ok as usize
                );
            }
            assert_eq!(events(&conn), orders(&conn), "one event per stored order");
        }
    }

    #[test]
    fn only_committed_orders_are_published_in_order() {
        let cases: [&[(&str, i64, bool)]; 2] = [
            &[
                ("apple", 4, true),
                ("kiwi", 1, false),
                ("apple", 7, false),
                ("apple", 6, true),
            ],
            &[
                ("pear", 9, false),
                ("pear", 2, true),
                ("fig", 2, false),
                ("pear", 3, true),
            ],
        ];
        for placed in cases {
            let mut conn = shop(&[("apple", 10), ("pear", 5)]);
            let mut expected = Vec::new();
            for (item, qty, ok) in placed {
                let result = place_order(&mut conn, item, *qty);
                assert_eq!(result.is_ok(), *ok, "{qty} {item}: expected ok = {ok}");
                if let Ok(id) = result {
                    expected.push((id, item.to_string(), *qty));
                }
            }
            assert_eq!(orders(&conn), expected, "only the valid orders are stored");
            let mut broker = FakeBroker::default();
            let sent = relay(&conn, &mut broker).unwrap();
            assert_eq!(
                sent,
                expected.len(),
                "the relay published {} events",
                expected.len()
            );
            let got: Vec<_> = broker.delivered.iter().map(|(_, p)| described(p)).collect();
            assert_eq!(
                got, expected,
                "exactly the committed orders are published, in order: an unknown item or an \
                 oversold one rolls back its event too"
            );
            assert_eq!(
                relay(&conn, &mut broker).unwrap(),
                0,
                "a second run has nothing new"
            );
            assert_eq!(
                broker.delivered.len(),
                expected.len(),
                "and publishes nothing again"
            );
        }
    }

    #[test]
    fn after_a_relay_failure_events_are_republished_and_applied_once() {
        use Outcome::{Down, LostAck, Ok as Sent};
        // (script of the first run, what it returns, the event ids delivered over three runs)
        let cases: [(&[Outcome], usize, &[i64]); 3] = [
            (&[Sent, LostAck], 1, &[1, 2, 2, 3, 4]),
            (&[LostAck], 0, &[1, 1, 2, 3, 4]),
            (&[Sent, Sent, Down], 2, &[1, 2, 3, 4]),
        ];
        for (script, first_run, ids) in cases {
            let mut shop = shop(&[("apple", 100)]);
            for qty in 1..=4 {
                place_order(&mut shop, "apple", qty).unwrap();
            }
            let mut broker = FakeBroker {
                script: script.iter().copied().collect(),
                ..FakeBroker::default()
            };
            let sent = relay(&shop, &mut broker).unwrap();
            assert_eq!(
                sent, first_run,
                "the first run stops at its failure: {first_run} sent"
            );
            relay(&shop, &mut broker).unwrap();
            assert_eq!(
                relay(&shop, &mut broker).unwrap(),
                0,
                "the third run has nothing left"
            );
            let got: Vec<i64> = broker.delivered.iter().map(|d| d.0).collect();
            assert_eq!(
                got, ids,
                "delivered event ids: expected {ids:?}. An event not known to be delivered is \
                 not marked and goes out again, and nothing overtakes it"
            );
            let mut warehouse = open_warehouse().unwrap();
            let mut applied = Vec::new();
            for (id, payload) in &broker.delivered {
                applied.push(consume(&mut warehouse, *id, payload).unwrap());
            }
            let firsts: Vec<bool> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| !ids[..i].contains(id))
                .collect();
            assert_eq!(
                applied, firsts,
                "consume reports a repeat as false: expected {firsts:?}"
            );
            let sql = "SELECT payload FROM shipments ORDER BY event_id";
            let mut stmt = warehouse.prepare(sql).unwrap();
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
            let shipped: Vec<i64> = rows.map(|p| described(&p.unwrap()).2).collect();
            assert_eq!(
                shipped,
                vec![1, 2, 3, 4],
                "each order is shipped once, the repeat skipped"
            );
        }
    }
}
