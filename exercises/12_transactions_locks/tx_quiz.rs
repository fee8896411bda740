// tx_quiz: seat booking
//
// A booking takes several seats of one show, all of them or none. Three ideas of this topic
// make it safe:
// 1. The database refuses a double booking: `UNIQUE (show, seat)`. A check in code ("is the
//    seat free?") races with the other session; the constraint does not.
// 2. A booking is one IMMEDIATE transaction: it takes the write lock at BEGIN (busy fails there,
//    before anything was done, so a bounded retry is safe), and a seat that turns out to be
//    taken rolls back the seats already inserted.
// 3. In-process holds live behind one `tokio::sync::Mutex` per show. Moving a hold between two
//    shows locks both; two moves in opposite directions deadlock unless every task takes the
//    locks in one global order (here: by show id).
//
// Why it matters: a ticketing site sold the same front-row seat twice on a launch night; the
// "is it free?" SELECT and the INSERT ran in two statements with other sessions in between.
//
// Production caveat: on PostgreSQL rows are locked, not the database: two bookings of
// different seats run in parallel, a UNIQUE violation is SQLSTATE 23505, and a deadlock
// between two transactions is detected and one is aborted (40P01) and must be retried. An
// in-process Mutex is never detected: the tasks just hang, so the lock order is the only cure.
//
// What to do: add the UNIQUE constraint in `create_schema`; make `book` one IMMEDIATE
// transaction with at most `MAX_TRIES` tries on a busy BEGIN (report each with `on_busy`);
// take the two locks in `move_hold` in show-id order.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, ErrorCode, params};
use std::future::Future;
use tokio::sync::Mutex;

pub const MAX_TRIES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("seat {0} is taken")]
    Taken(i64),
    #[error("the database stayed busy")]
    Busy,
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
}

pub fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    // TODO: nothing stops a second booking of a seat. Make the database refuse it.
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS bookings (
             show     INTEGER NOT NULL,
             seat     INTEGER NOT NULL,
             customer TEXT NOT NULL
         );",
    )
}

/// Books every seat in `seats` for `customer`, or none of them.
pub fn book(
    conn: &mut Connection,
    show: i64,
    seats: &[i64],
    customer: &str,
    on_busy: &mut dyn FnMut(u32),
) -> Result<(), BookError> {
    // TODO: each INSERT commits alone, so a taken seat leaves the earlier ones booked. Use one
    // IMMEDIATE transaction, retrying a busy BEGIN at most MAX_TRIES times (call `on_busy`).
    let tx = &*conn;
    for &seat in seats {
        let sql = "INSERT INTO bookings (show, seat, customer) VALUES (?1, ?2, ?3)";
        match tx.execute(sql, params![show, seat, customer]) {
            Ok(_) => {}
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                return Err(BookError::Taken(seat));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Seats held (not yet paid) for one show.
pub struct Holds {
    pub show: i64,
    pub seats: Mutex<Vec<i64>>,
}

/// Moves a held seat from one show to another (two different shows); false if not held.
/// `between` runs while the first lock is held (the tests use it to interleave two moves).
pub async fn move_hold(
    from: &Holds,
    to: &Holds,
    seat: i64,
    between: impl Future<Output = ()>,
) -> bool {
    // TODO: two opposite moves each hold one lock and wait for the other. Lock by show id.
    let mut src = from.seats.lock().await;
    between.await;
    let mut dst = to.seats.lock().await;
    match src.iter().position(|&s| s == seat) {
        Some(i) => {
            src.remove(i);
            dst.push(seat);
            true
        }
        None => false,
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A uniquely named database file in WAL mode, removed on drop.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new() -> TempDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("backlings-txq-{}-{n}.db", std::process::id());
            let db = TempDb(std::env::temp_dir().join(name));
            db.remove();
            let conn = db.open();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            create_schema(&conn).unwrap();
            db
        }

        fn open(&self) -> Connection {
            let conn = Connection::open(&self.0).unwrap();
            conn.busy_timeout(Duration::ZERO).unwrap();
            conn
        }

        fn remove(&self) {
            for ext in ["", "-wal", "-shm"] {
                let mut p = self.0.clone().into_os_string();
                p.push(ext);
                let _ = std::fs::remove_file(p);
            }
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            self.remove();
        }
    }

    fn seats_of(conn: &Connection, show: i64, customer: &str) -> Vec<i64> {
        let sql = "SELECT seat FROM bookings WHERE show = ?1 AND customer = ?2 ORDER BY seat";
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt
            .query_map(params![show, customer], |r| r.get(0))
            .unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    fn no_busy(n: u32) {
        panic!("nobody else holds the lock, yet attempt {n} was busy");
    }

    #[test]
    fn a_booking_takes_all_its_seats() {
        for (show, seats) in [(1, vec![3, 4, 5]), (2, vec![12])] {
            let db = TempDb::new();
            let mut conn = db.open();
            book(&mut conn, show, &seats, "alice", &mut no_busy).unwrap();
            assert_eq!(seats_of(&conn, show, "alice"), seats);
        }
    }

    #[test]
    fn a_seat_is_never_sold_twice() {
        for (show, seat) in [(1, 4), (7, 30)] {
            let db = TempDb::new();
            let (mut a, mut b) = (db.open(), db.open());
            book(&mut a, show, &[seat], "alice", &mut no_busy).unwrap();
            let res = book(&mut b, show, &[seat], "bob", &mut no_busy);
            assert!(
                matches!(res, Err(BookError::Taken(s)) if s == seat),
                "seat {seat} of show {show} was sold to alice: expected Taken({seat}), got {res:?}"
            );
            book(&mut b, show + 1, &[seat], "bob", &mut no_busy)
                .expect("the same seat number of another show is free");
            assert_eq!(seats_of(&a, show, "bob"), Vec::<i64>::new());
        }
    }

    #[test]
    fn a_partly_taken_booking_books_nothing() {
        for (taken, wanted) in [(5, vec![3, 4, 5, 6]), (9, vec![8, 9])] {
            let db = TempDb::new();
            let (mut a, mut b) = (db.open(), db.open());
            book(&mut b, 1, &[taken], "bob", &mut no_busy).unwrap();
            let res = book(&mut a, 1, &wanted, "alice", &mut no_busy);
            assert!(
                matches!(res, Err(BookError::Taken(s)) if s == taken),
                "expected Taken({taken}), got {res:?}"
            );
            assert_eq!(
                seats_of(&a, 1, "alice"),
                Vec::<i64>::new(),
                "{wanted:?} with {taken} taken: all or nothing, so alice has no seat"
            );
            assert!(a.is_autocommit(), "the failed booking must be rolled back");
        }
        let db = TempDb::new();
        let mut a = db.open();
        let res = book(&mut a, 1, &[2, 2], "alice", &mut no_busy);
        assert!(
            matches!(res, Err(BookError::Taken(2))),
            "a seat twice in one booking: {res:?}"
        );
        assert_eq!(seats_of(&a, 1, "alice"), Vec::<i64>::new());
    }

    #[test]
    fn a_busy_booking_retries_and_sees_the_other_sessions_seats() {
        // (bob's seat, committed while alice waits; alice's seats; what alice gets)
        for (bob_seat, alice, taken) in [(4, vec![3, 4], Some(4)), (9, vec![3, 4], None)] {
            let db = TempDb::new();
            let (mut a, b) = (db.open(), db.open());
            let bob = b.unchecked_transaction().unwrap();
            b.execute("INSERT INTO bookings VALUES (1, ?1, 'bob')", [bob_seat])
                .unwrap();
            let mut bob = Some(bob);
            let mut busy = vec![];
            let res = book(&mut a, 1, &alice, "alice", &mut |n| {
                busy.push(n);
                bob.take()
                    .expect("one busy try: bob commits at the first")
                    .commit()
                    .unwrap();
            });
            assert_eq!(
                busy,
                vec![1],
                "bob held the lock at alice's first BEGIN only"
            );
            match taken {
                Some(t) => {
                    assert!(
                        matches!(res, Err(BookError::Taken(s)) if s == t),
                        "got {res:?}"
                    );
                    assert_eq!(seats_of(&a, 1, "alice"), Vec::<i64>::new());
                }
                None => {
                    res.expect("after bob commits, alice's retry books her free seats");
                    assert_eq!(seats_of(&a, 1, "alice"), alice);
                }
            }
            assert_eq!(seats_of(&a, 1, "bob"), vec![bob_seat]);
        }
    }

    #[test]
    fn a_lock_held_forever_gives_up_after_max_tries() {
        let db = TempDb::new();
        let (mut a, b) = (db.open(), db.open());
        let _bob = b.unchecked_transaction().unwrap();
        b.execute("INSERT INTO bookings VALUES (1, 1, 'bob')", [])
            .unwrap();
        let mut tries = 0;
        let res = book(&mut a, 1, &[2], "alice", &mut |n| {
            tries += 1;
            assert_eq!(n, tries, "on_busy gets the attempt number, 1, 2, 3...");
            assert!(
                n <= MAX_TRIES,
                "attempt {n}: the retry must stop at MAX_TRIES = {MAX_TRIES}"
            );
        });
        assert!(
            matches!(res, Err(BookError::Busy)),
            "expected Err(Busy), got {res:?}"
        );
        assert_eq!(
            tries, MAX_TRIES,
            "expected exactly MAX_TRIES = {MAX_TRIES} busy tries"
        );
    }

    #[test]
    fn other_errors_are_neither_taken_nor_retried() {
        let db = TempDb::new();
        let mut a = db.open();
        a.execute_batch("BEGIN").unwrap();
        let res = book(&mut a, 1, &[2], "alice", &mut no_busy);
        assert!(
            matches!(res, Err(BookError::Db(_))),
            "BEGIN inside a transaction: {res:?}"
        );
        a.execute_batch("ROLLBACK; DROP TABLE bookings").unwrap();
        let res = book(&mut a, 1, &[2], "alice", &mut no_busy);
        assert!(
            matches!(res, Err(BookError::Db(_))),
            "a missing table is a database error, not a taken seat: got {res:?}"
        );
    }

    fn holds(show: i64, seats: &[i64]) -> Holds {
        Holds {
            show,
            seats: Mutex::new(seats.to_vec()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opposite_moves_do_not_deadlock() {
        for (x, y) in [(1, 2), (9, 4)] {
            let (a, b) = (holds(x, &[10, 11]), holds(y, &[20]));
            // Each move yields while it holds its first lock, so the other move runs then.
            let both = async {
                tokio::join!(
                    move_hold(&a, &b, 10, tokio::task::yield_now()),
                    move_hold(&b, &a, 20, tokio::task::yield_now()),
                )
            };
            let res = tokio::time::timeout(Duration::from_secs(60), both).await;
            assert_eq!(
                res,
                Ok((true, true)),
                "shows {x} and {y}: two moves in opposite directions must both finish; each \
                 holding one lock and waiting for the other is a deadlock. Lock by show id"
            );
            assert_eq!(*a.seats.lock().await, vec![11, 20]);
            assert_eq!(*b.seats.lock().await, vec![10]);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_seat_that_is_not_held_does_not_move() {
        for (x, y) in [(3, 5), (5, 3)] {
            let (a, b) = (holds(x, &[1]), holds(y, &[2]));
            assert!(
                !move_hold(&a, &b, 2, async {}).await,
                "seat 2 is not held for show {x}"
            );
            assert!(
                move_hold(&a, &b, 1, async {}).await,
                "seat 1 is held for show {x}"
            );
            assert_eq!(
                (a.seats.into_inner(), b.seats.into_inner()),
                (vec![], vec![2, 1])
            );
        }
    }
}
