// arch_quiz: a hexagonal "place order"
//
// Everything in this topic at once. `PlaceOrder` is the use case; it sees storage, payments
// and time only through three ports. The SQLite adapter must speak the port's language: the
// use case cannot know what `QueryReturnedNoRows` or a UNIQUE violation is, so the adapter
// turns them into `RepoError::NotFound` and `RepoError::Conflict`. The tests then run one
// suite against the SQLite adapter and an in-memory one, and both must give the same answers.
//
// Why it matters: an order endpoint returned 500 for a double-clicked "Pay" button, because
// the second insert hit the idempotency key's UNIQUE index and the raw SQLite error bubbled
// up. With the conflict mapped, the use case answers the retry with the first order.
//
// Production caveat: matching on `ConstraintViolation` lumps UNIQUE, CHECK, NOT NULL and
// FOREIGN KEY together. When a table has more than one constraint, look at the extended
// code (`SQLITE_CONSTRAINT_UNIQUE`, 2067) or, on PostgreSQL, at SQLSTATE 23505 and the
// constraint's name, before calling it a conflict.
//
// What to do: (1) map the adapter's errors in `SqliteOrders::map`; (2) write
// `PlaceOrder::place` with the ports only.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, ErrorCode, params};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Paid,
    PaymentFailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    pub key: String,
    pub cents: i64,
    pub placed_at: i64,
    pub status: Option<Status>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    #[error("not found")]
    NotFound,
    #[error("conflict")]
    Conflict,
    #[error("storage: {0}")]
    Storage(String),
}

/// Ports: what the use case needs, in its own terms.
pub trait Orders {
    /// A new order without a status yet. `Conflict` if its key was used before.
    fn insert(&mut self, key: &str, cents: i64, placed_at: i64) -> Result<i64, RepoError>;
    fn get(&self, id: i64) -> Result<Order, RepoError>;
    fn by_key(&self, key: &str) -> Result<Order, RepoError>;
    fn set_status(&mut self, id: i64, status: Status) -> Result<(), RepoError>;
}

pub trait Payments {
    /// True when the charge went through.
    fn charge(&mut self, key: &str, cents: i64) -> bool;
}

pub trait Clock {
    fn now(&self) -> i64;
}

pub struct SqliteOrders {
    conn: Connection,
}

impl SqliteOrders {
    pub fn open() -> rusqlite::Result<Self> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
             cents INTEGER NOT NULL, placed_at INTEGER NOT NULL, status TEXT)",
        )?;
        Ok(SqliteOrders { conn })
    }

    /// The port's language: a missing row is `NotFound`, a constraint is `Conflict`.
    fn map(e: rusqlite::Error) -> RepoError {
        match e {
            rusqlite::Error::QueryReturnedNoRows => RepoError::NotFound,
            e if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                RepoError::Conflict
            }
            e => RepoError::Storage(e.to_string()),
        }
    }

    fn one(&self, filter: &str, arg: &dyn rusqlite::ToSql) -> Result<Order, RepoError> {
        let sql = format!("SELECT id, key, cents, placed_at, status FROM orders WHERE {filter}");
        self.conn
            .query_row(&sql, [arg], |r| {
                let status: Option<String> = r.get(4)?;
                Ok(Order {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    cents: r.get(2)?,
                    placed_at: r.get(3)?,
                    status: status.map(|s| match s.as_str() {
                        "paid" => Status::Paid,
                        _ => Status::PaymentFailed,
                    }),
                })
            })
            .map_err(Self::map)
    }
}

impl Orders for SqliteOrders {
    fn insert(&mut self, key: &str, cents: i64, placed_at: i64) -> Result<i64, RepoError> {
        self.conn
            .execute(
                "INSERT INTO orders (key, cents, placed_at) VALUES (?1, ?2, ?3)",
                params![key, cents, placed_at],
            )
            .map_err(Self::map)?;
        Ok(self.conn.last_insert_rowid())
    }

    fn get(&self, id: i64) -> Result<Order, RepoError> {
        self.one("id = ?1", &id)
    }

    fn by_key(&self, key: &str) -> Result<Order, RepoError> {
        self.one("key = ?1", &key)
    }

    fn set_status(&mut self, id: i64, status: Status) -> Result<(), RepoError> {
        let name = if status == Status::Paid {
            "paid"
        } else {
            "failed"
        };
        let changed = self
            .conn
            .execute(
                "UPDATE orders SET status = ?1 WHERE id = ?2",
                params![name, id],
            )
            .map_err(Self::map)?;
        if changed == 0 {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("an order must cost something")]
    Invalid,
    #[error("the payment was declined")]
    Declined(Order),
    #[error("no such order")]
    NotFound,
    #[error("storage failed")]
    Storage,
}

impl From<RepoError> for PlaceError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound => PlaceError::NotFound,
            _ => PlaceError::Storage,
        }
    }
}

pub struct PlaceOrder<O: Orders, P: Payments, C: Clock> {
    pub orders: O,
    pub payments: P,
    pub clock: C,
}

impl<O: Orders, P: Payments, C: Clock> PlaceOrder<O, P, C> {
    /// Places and pays an order once per idempotency key: a retry gets the first answer.
    pub fn place(&mut self, key: &str, cents: i64) -> Result<Order, PlaceError> {
        if cents <= 0 {
            return Err(PlaceError::Invalid);
        }
        let id = match self.orders.insert(key, cents, self.clock.now()) {
            Ok(id) => id,
            // The key was used before: answer with that order, and do not charge again.
            Err(RepoError::Conflict) => return self.answer(self.orders.by_key(key)?),
            Err(e) => return Err(e.into()),
        };
        let status = if self.payments.charge(key, cents) {
            Status::Paid
        } else {
            Status::PaymentFailed
        };
        self.orders.set_status(id, status)?;
        self.answer(self.orders.get(id)?)
    }

    fn answer(&self, order: Order) -> Result<Order, PlaceError> {
        match order.status {
            Some(Status::PaymentFailed) => Err(PlaceError::Declined(order)),
            _ => Ok(order),
        }
    }

    pub fn order(&self, id: i64) -> Result<Order, PlaceError> {
        Ok(self.orders.get(id)?)
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The in-memory adapter: the port's contract, without a database. `racing` names a key
    /// that another request inserts (and pays) just before this one does.
    #[derive(Default)]
    struct InMemoryOrders {
        rows: BTreeMap<i64, Order>,
        racing: Option<String>,
    }

    impl Orders for InMemoryOrders {
        fn insert(&mut self, key: &str, cents: i64, placed_at: i64) -> Result<i64, RepoError> {
            if self.racing.as_deref() == Some(key) {
                self.racing = None;
                let id = self.insert(key, cents, 7)?;
                self.set_status(id, Status::Paid)?;
            }
            if self.rows.values().any(|o| o.key == key) {
                return Err(RepoError::Conflict);
            }
            let id = self.rows.len() as i64 + 1;
            let order = Order {
                id,
                key: key.into(),
                cents,
                placed_at,
                status: None,
            };
            self.rows.insert(id, order);
            Ok(id)
        }

        fn get(&self, id: i64) -> Result<Order, RepoError> {
            self.rows.get(&id).cloned().ok_or(RepoError::NotFound)
        }

        fn by_key(&self, key: &str) -> Result<Order, RepoError> {
            let found = self.rows.values().find(|o| o.key == key);
            found.cloned().ok_or(RepoError::NotFound)
        }

        fn set_status(&mut self, id: i64, status: Status) -> Result<(), RepoError> {
            let order = self.rows.get_mut(&id).ok_or(RepoError::NotFound)?;
            order.status = Some(status);
            Ok(())
        }
    }

    /// Declines the keys it is told to, and records every charge.
    #[derive(Default)]
    struct FakePayments {
        decline: Vec<String>,
        charged: Vec<(String, i64)>,
    }

    impl Payments for FakePayments {
        fn charge(&mut self, key: &str, cents: i64) -> bool {
            self.charged.push((key.into(), cents));
            !self.decline.iter().any(|k| k == key)
        }
    }

    struct FixedClock(i64);

    impl Clock for FixedClock {
        fn now(&self) -> i64 {
            self.0
        }
    }

    type Outcome = (Result<Order, PlaceError>, Vec<(String, i64)>);

    /// One script of requests; returns every answer and the charges made, to compare adapters.
    fn script<O: Orders>(orders: O, now: i64, cents: i64) -> Vec<Outcome> {
        let payments = FakePayments {
            decline: vec!["k-declined".into()],
            ..Default::default()
        };
        let mut uc = PlaceOrder {
            orders,
            payments,
            clock: FixedClock(now),
        };
        let mut out = Vec::new();
        for (key, c) in [
            ("k-1", cents),
            ("k-1", cents),
            ("k-declined", cents + 1),
            ("k-declined", cents + 1),
            ("k-zero", 0),
            ("k-negative", -5),
            ("k-2", cents + 2),
        ] {
            let answer = uc.place(key, c);
            out.push((answer, uc.payments.charged.clone()));
        }
        out.push((uc.order(2), vec![]));
        out.push((uc.order(99), vec![]));
        out
    }

    fn paid(id: i64, key: &str, cents: i64, now: i64) -> Order {
        Order {
            id,
            key: key.into(),
            cents,
            placed_at: now,
            status: Some(Status::Paid),
        }
    }

    #[test]
    fn the_in_memory_adapter_follows_the_rules() {
        for (now, cents) in [(1_700_000_000, 1999), (42, 5)] {
            let got = script(InMemoryOrders::default(), now, cents);
            let k1 = paid(1, "k-1", cents, now);
            assert_eq!(got[0].0, Ok(k1.clone()), "a paid order, stamped {now}");
            assert_eq!(
                got[1],
                (Ok(k1), vec![("k-1".into(), cents)]),
                "a retry with the same key gets the first order and charges nothing more"
            );
            let declined = Order {
                status: Some(Status::PaymentFailed),
                ..paid(2, "k-declined", cents + 1, now)
            };
            assert_eq!(got[2].0, Err(PlaceError::Declined(declined.clone())));
            assert_eq!(got[3].0, Err(PlaceError::Declined(declined.clone())));
            assert_eq!(got[3].1.len(), 2, "the declined retry is not charged again");
            assert_eq!(got[4], (Err(PlaceError::Invalid), got[3].1.clone()));
            assert_eq!(got[5], (Err(PlaceError::Invalid), got[3].1.clone()));
            assert_eq!(got[6].0, Ok(paid(3, "k-2", cents + 2, now)));
            assert_eq!(
                got[7].0,
                Ok(declined),
                "order 2 is stored with its failed payment"
            );
            assert_eq!(
                got[8].0,
                Err(PlaceError::NotFound),
                "order 99 does not exist"
            );
        }
    }

    #[test]
    fn the_sqlite_adapter_gives_the_same_answers() {
        for (now, cents) in [(1_700_000_000, 1999), (42, 5)] {
            assert_eq!(
                script(SqliteOrders::open().unwrap(), now, cents),
                script(InMemoryOrders::default(), now, cents),
                "one suite, two adapters: every answer must be the same"
            );
        }
    }

    #[test]
    fn the_sqlite_adapter_speaks_the_ports_language() {
        let mut repo = SqliteOrders::open().unwrap();
        assert_eq!(repo.insert("a", 1, 1), Ok(1));
        assert_eq!(
            repo.insert("a", 2, 2),
            Err(RepoError::Conflict),
            "a used key"
        );
        assert_eq!(repo.get(7), Err(RepoError::NotFound), "no row: NotFound");
        assert_eq!(repo.by_key("zz"), Err(RepoError::NotFound));
        assert_eq!(repo.set_status(7, Status::Paid), Err(RepoError::NotFound));
        repo.conn.execute_batch("DROP TABLE orders").unwrap();
        assert!(
            matches!(repo.get(1), Err(RepoError::Storage(_))),
            "a missing table is a storage failure"
        );
        assert!(matches!(repo.insert("b", 1, 1), Err(RepoError::Storage(_))));
    }

    #[test]
    fn a_request_that_loses_the_race_answers_with_the_winners_order() {
        for cents in [300, 45] {
            let orders = InMemoryOrders {
                racing: Some("k-race".into()),
                ..Default::default()
            };
            let mut uc = PlaceOrder {
                orders,
                payments: FakePayments::default(),
                clock: FixedClock(100),
            };
            assert_eq!(
                uc.place("k-race", cents),
                Ok(paid(1, "k-race", cents, 7)),
                "the lookup-free path: the insert conflicts, and the winner's order is the answer"
            );
            assert!(uc.payments.charged.is_empty(), "the loser charges nothing");
        }
    }
}
