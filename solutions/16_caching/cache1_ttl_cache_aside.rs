// cache1_ttl_cache_aside: a cached value lives for a TTL, then it is a miss
//
// Cache-aside: the code that needs a value reads the cache first; on a miss it reads the
// database and puts the value in the cache for next time. Without a time-to-live the cache
// answers with whatever it loaded first, forever. With one, `put` stamps each entry with
// `expires_at = now + ttl`, and `get` treats an entry whose `expires_at` has come as a miss,
// so the next read goes to the database and stores a fresh copy with a fresh deadline. The
// clock is a trait, so tests move time by hand.
//
// Why it matters: a shop cached prices in a map "because they rarely change". A sale started;
// the pods that had been up for a week kept selling at the old price until they were restarted.
//
// Production caveat: an expired entry that nobody reads again still takes memory here. Redis
// (`SET key value EX 60`) expires keys two ways: when a client touches an expired key, and by
// sampling keys with a TTL in the background and deleting the expired ones. An in-process
// cache needs a sweep or a size bound (cache2) as well.
//
// What to do: make entries expire: store `expires_at` in `put`, and let `get` answer only
// while `now` is before it.
// Run `backlings hint` if you are stuck.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

/// Time since an arbitrary start; the tests move it by hand.
pub trait Clock {
    fn now(&self) -> Duration;
}

/// The slow source of truth (the database).
pub trait UserDb {
    fn name(&self, id: u64) -> String;
}

struct Entry {
    value: String,
    expires_at: Duration,
}

pub struct TtlCache {
    clock: Rc<dyn Clock>,
    ttl: Duration,
    entries: HashMap<u64, Entry>,
}

impl TtlCache {
    pub fn new(clock: Rc<dyn Clock>, ttl: Duration) -> TtlCache {
        TtlCache {
            clock,
            ttl,
            entries: HashMap::new(),
        }
    }

    /// The cached value, or `None` on a miss. An expired entry is a miss.
    pub fn get(&self, id: u64) -> Option<String> {
        let entry = self.entries.get(&id)?;
        // Fresh while now < expires_at: at expires_at itself the entry is gone.
        (self.clock.now() < entry.expires_at).then(|| entry.value.clone())
    }

    pub fn put(&mut self, id: u64, value: String) {
        let expires_at = self.clock.now() + self.ttl;
        self.entries.insert(id, Entry { value, expires_at });
    }
}

/// Cache-aside: the caller reads the cache, and on a miss loads and fills it.
pub fn user_name(cache: &mut TtlCache, db: &dyn UserDb, id: u64) -> String {
    if let Some(name) = cache.get(id) {
        return name;
    }
    let name = db.name(id);
    cache.put(id, name.clone());
    name
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    struct FakeClock(Cell<u64>);

    impl FakeClock {
        fn at(&self, ms: u64) {
            self.0.set(ms);
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            Duration::from_millis(self.0.get())
        }
    }

    /// A database whose names carry a version: "ada v1", then "ada v2" after `rename`.
    /// It counts every read.
    struct FakeDb {
        version: Cell<u32>,
        reads: RefCell<Vec<u64>>,
    }

    impl FakeDb {
        fn new() -> FakeDb {
            FakeDb {
                version: Cell::new(1),
                reads: RefCell::new(Vec::new()),
            }
        }
        fn reads(&self) -> usize {
            self.reads.borrow().len()
        }
    }

    impl UserDb for FakeDb {
        fn name(&self, id: u64) -> String {
            self.reads.borrow_mut().push(id);
            format!("user{id} v{}", self.version.get())
        }
    }

    fn setup(ttl_s: u64) -> (Rc<FakeClock>, TtlCache, FakeDb) {
        setup_ms(ttl_s * 1000)
    }

    fn setup_ms(ttl_ms: u64) -> (Rc<FakeClock>, TtlCache, FakeDb) {
        let clock = Rc::new(FakeClock(Cell::new(0)));
        let cache = TtlCache::new(clock.clone(), Duration::from_millis(ttl_ms));
        (clock, cache, FakeDb::new())
    }

    #[test]
    fn a_hit_does_not_read_the_database() {
        let (clock, mut cache, db) = setup(30);
        assert_eq!(user_name(&mut cache, &db, 7), "user7 v1");
        assert_eq!(
            db.reads(),
            1,
            "the first read of user 7 is a miss: 1 database read"
        );
        clock.at(5_000);
        assert_eq!(user_name(&mut cache, &db, 7), "user7 v1");
        assert_eq!(user_name(&mut cache, &db, 7), "user7 v1");
        assert_eq!(
            db.reads(),
            1,
            "user 7 again within its TTL: still 1 database read"
        );
        assert_eq!(user_name(&mut cache, &db, 8), "user8 v1");
        assert_eq!(
            db.reads(),
            2,
            "user 8 is another key: a second database read"
        );
        assert_eq!(
            cache.get(9),
            None,
            "user 9 was never loaded: get(9) must be None"
        );
    }

    #[test]
    fn entries_expire_window_after_window() {
        for ttl_s in [10, 60] {
            let (clock, mut cache, db) = setup(ttl_s);
            let ttl = ttl_s * 1000;
            for window in 0..4u64 {
                let start = window * ttl;
                clock.at(start);
                db.version.set(window as u32 + 1);
                let fresh = format!("user1 v{}", window + 1);
                assert_eq!(
                    user_name(&mut cache, &db, 1),
                    fresh,
                    "TTL {ttl_s} s, at {start} ms (window {window}): the entry is missing or \
                     has expired, expected a database read giving {fresh:?}"
                );
                assert_eq!(
                    db.reads(),
                    window as usize + 1,
                    "TTL {ttl_s} s: one read per window"
                );
                // The database changes, but the cache keeps serving its copy until the deadline.
                db.version.set(99);
                clock.at(start + ttl - 1);
                assert_eq!(
                    user_name(&mut cache, &db, 1),
                    fresh,
                    "TTL {ttl_s} s, at {} ms (1 ms before the deadline) the cached {fresh:?} is \
                     still fresh: no database read",
                    start + ttl - 1
                );
                assert_eq!(
                    db.reads(),
                    window as usize + 1,
                    "TTL {ttl_s} s: a hit reads nothing"
                );
            }
        }
    }

    #[test]
    fn at_the_deadline_exactly_the_entry_is_a_miss() {
        for ttl_s in [10, 60] {
            let (clock, mut cache, db) = setup(ttl_s);
            clock.at(2_000);
            cache.put(3, "cached".into());
            clock.at(2_000 + ttl_s * 1000 - 1);
            assert_eq!(
                cache.get(3).as_deref(),
                Some("cached"),
                "TTL {ttl_s} s: 1 ms before"
            );
            clock.at(2_000 + ttl_s * 1000);
            assert_eq!(
                cache.get(3),
                None,
                "TTL {ttl_s} s, stored at 2000 ms: at {} ms (now == expires_at) it is a miss",
                2_000 + ttl_s * 1000
            );
            assert_eq!(db.reads(), 0);
        }
    }

    #[test]
    fn deadlines_keep_their_milliseconds() {
        // Stored between two seconds, with TTLs of 10 s and 1.5 s: rounding the time or the
        // TTL to whole seconds moves the deadline.
        for (stored, ttl) in [(2_500, 10_000), (1_750, 1_500)] {
            let (clock, mut cache, db) = setup_ms(ttl);
            clock.at(stored);
            cache.put(6, "cached".into());
            clock.at(stored + ttl - 1);
            assert_eq!(
                cache.get(6).as_deref(),
                Some("cached"),
                "TTL {ttl} ms, stored at {stored} ms: at {} ms it is still fresh",
                stored + ttl - 1
            );
            clock.at(stored + ttl);
            assert_eq!(
                cache.get(6),
                None,
                "TTL {ttl} ms, stored at {stored} ms: at {} ms it has expired",
                stored + ttl
            );
            assert_eq!(db.reads(), 0);
        }
    }

    #[test]
    fn the_deadline_counts_from_the_last_store_not_from_a_grid() {
        for ttl_s in [10, 60] {
            let ttl = ttl_s * 1000;
            let (clock, mut cache, db) = setup(ttl_s);
            // Stored at 0, expired; reloaded late, at 2.5 TTLs: fresh until 3.5 TTLs.
            user_name(&mut cache, &db, 4);
            let reload = ttl * 5 / 2;
            clock.at(reload);
            user_name(&mut cache, &db, 4);
            assert_eq!(
                db.reads(),
                2,
                "TTL {ttl_s} s: at {reload} ms the entry had expired"
            );
            clock.at(reload + ttl - 1);
            user_name(&mut cache, &db, 4);
            assert_eq!(
                db.reads(),
                2,
                "TTL {ttl_s} s, reloaded at {reload} ms: at {} ms it is still fresh \
                 (expires_at = store time + TTL, not the next multiple of the TTL)",
                reload + ttl - 1
            );
            clock.at(reload + ttl);
            user_name(&mut cache, &db, 4);
            assert_eq!(
                db.reads(),
                3,
                "TTL {ttl_s} s: at {} ms it expired",
                reload + ttl
            );
        }
    }

    #[test]
    fn a_hot_key_still_expires() {
        // Read every second: reads do not push the deadline back (no sliding expiration),
        // or a popular key would never be refreshed.
        for ttl_s in [10, 60] {
            let (clock, mut cache, db) = setup(ttl_s);
            for s in 0..=(2 * ttl_s) {
                clock.at(s * 1000);
                user_name(&mut cache, &db, 5);
            }
            assert_eq!(
                db.reads(),
                3,
                "TTL {ttl_s} s, read every second from 0 to {} s: loads at 0, {ttl_s} and {} s",
                2 * ttl_s,
                2 * ttl_s
            );
        }
    }
}
