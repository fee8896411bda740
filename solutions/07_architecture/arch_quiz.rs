// arch_quiz: a hexagonal "place order"
//
// Everything in this topic at once. `PlaceOrder` is the use case; it sees storage, payments
// and time only through three ports. The SQLite adapter must speak the port's language: the
// use case cannot know what `QueryReturnedNoRows` or a UNIQUE violation is, so the adapter
// turns them into `RepoError::NotFound` and `RepoError::Conflict`. One suite of tests runs
// against the SQLite adapter and an in-memory one: both must give the same answers.
//
// Why it matters: an order endpoint returned 500 for a double-clicked "Pay" button: the second
// insert hit the idempotency key's UNIQUE index and the raw SQLite error bubbled up.
//
// Production caveat: only a UNIQUE violation is a conflict. SQLite's `ConstraintViolation`
// also covers NOT NULL, CHECK and FOREIGN KEY; its extended code tells them apart
// (`SQLITE_CONSTRAINT_UNIQUE`, 2067). PostgreSQL's equivalent is SQLSTATE 23505.
//
// What to do: (1) map the adapter's errors in `SqliteOrders::map`; (2) write
// `PlaceOrder::place` with the ports only. A retry with the key of an order still being
// paid is `InProgress`; with another amount, `KeyReused`.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, ffi, params};

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
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
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
    #[error("an order with this key is still being paid")]
    InProgress,
    #[error("this key was used for another amount")]
    KeyReused,
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
            Err(RepoError::Conflict) => {
                let first = self.orders.by_key(key)?;
                if first.cents != cents {
                    return Err(PlaceError::KeyReused);
                }
                return self.answer(first);
            }
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
            None => Err(PlaceError::InProgress),
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
    /// that another request inserts (and has paid, or not yet) just before this one does;
    /// `broken` makes inserts fail as storage that is down.
    #[derive(Default)]
    struct InMemoryOrders {
        rows: BTreeMap<i64, Order>,
        racing: Option<(String, bool)>,
        broken: bool,
    }

    impl Orders for InMemoryOrders {
        fn insert(&mut self, key: &str, cents: i64, placed_at: i64) -> Result<i64, RepoError> {
            if self.broken {
                return Err(RepoError::Storage("disk full".into()));
            }
            if let Some((racing, paid)) = self.racing.take_if(|(k, _)| k == key) {
                let id = self.insert(&racing, cents, 7)?;
                if paid {
                    self.set_status(id, Status::Paid)?;
                }
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
            ("k-1", cents + 5),
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
            let refused = Err(PlaceError::Declined(declined.clone()));
            assert_eq!(got[2].0, refused, "a declined payment");
            assert_eq!(got[3].0, refused, "its retry gets the same answer");
            assert_eq!(got[3].1.len(), 2, "the declined retry is not charged again");
            let invalid = (Err(PlaceError::Invalid), got[3].1.clone());
            assert_eq!(got[4], invalid, "0 cents: refused, nothing charged");
            assert_eq!(got[5], invalid, "-5 cents: refused, nothing charged");
            assert_eq!(
                got[6].0,
                Ok(paid(3, "k-2", cents + 2, now)),
                "a second order"
            );
            assert_eq!(
                got[7],
                (Err(PlaceError::KeyReused), got[6].1.clone()),
                "k-1 again with another amount: KeyReused, and no charge"
            );
            assert_eq!(
                got[8].0,
                Ok(declined),
                "order 2 is stored with its failed payment"
            );
            assert_eq!(
                got[9].0,
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
        assert_eq!(repo.by_key("zz"), Err(RepoError::NotFound), "no such key");
        assert_eq!(
            repo.set_status(7, Status::Paid),
            Err(RepoError::NotFound),
            "no order 7 to update"
        );
        let not_null = repo
            .conn
            .execute(
                "INSERT INTO orders (key, cents, placed_at) VALUES ('c', NULL, 1)",
                [],
            )
            .unwrap_err();
        assert!(
            matches!(SqliteOrders::map(not_null), RepoError::Storage(_)),
            "a NOT NULL violation is a bug, not a conflict: Storage"
        );
        repo.conn.execute_batch("DROP TABLE orders").unwrap();
        assert!(
            matches!(repo.get(1), Err(RepoError::Storage(_))),
            "a missing table is a storage failure"
        );
        assert!(
            matches!(repo.insert("b", 1, 1), Err(RepoError::Storage(_))),
            "an insert into a missing table is a storage failure"
        );
    }

    #[test]
    fn storage_that_is_down_is_a_storage_error_and_charges_nothing() {
        for key in ["k-a", "k-b"] {
            let orders = InMemoryOrders {
                broken: true,
                ..Default::default()
            };
            let mut uc = PlaceOrder {
                orders,
                payments: FakePayments::default(),
                clock: FixedClock(1),
            };
            assert_eq!(
                uc.place(key, 10),
                Err(PlaceError::Storage),
                "{key}: a failed insert is Storage (a 500), not a retry of an earlier order"
            );
            assert!(uc.payments.charged.is_empty(), "nothing is charged");
        }
    }

    #[test]
    fn a_request_that_loses_the_race_answers_with_the_winners_order() {
        for (cents, paid_yet) in [(300, true), (45, false)] {
            let orders = InMemoryOrders {
                racing: Some(("k-race".into(), paid_yet)),
                ..Default::default()
            };
            let mut uc = PlaceOrder {
                orders,
                payments: FakePayments::default(),
                clock: FixedClock(100),
            };
            let expected = if paid_yet {
                Ok(paid(1, "k-race", cents, 7))
            } else {
                Err(PlaceError::InProgress)
            };
            assert_eq!(
                uc.place("k-race", cents),
                expected,
                "the insert conflicts with a request that won the race; its order is the answer \
                 (InProgress while it has no status yet)"
            );
            assert!(uc.payments.charged.is_empty(), "the loser charges nothing");
        }
    }
}
