// cache2_lru_bound: a bounded cache evicts the least recently used entry
//
// A cache without a bound is a memory leak with a hit rate: every distinct key ever asked for
// stays in memory. A bounded cache holds at most `capacity` entries and, to make room, evicts
// the one used least recently (LRU): the keys that are read all the time stay, the one-off
// keys leave. "Used" means read or written, so `get` must move its key to the most recent end,
// not only `put`. Here the order of use is a `BTreeMap` from a use counter to the key, oldest
// first; `touch` moves a key to the newest end in O(log n).
//
// Why it matters: a service cached rendered pages by URL. Crawlers asked for millions of
// distinct URLs with query strings; the map grew until the pod was killed for running out of
// memory, every few hours, with a 99 % hit rate on the pages nobody came back to.
//
// Production caveat: Redis with a `maxmemory` limit and the default policy, `noeviction`,
// refuses writes with an error once full; a cache wants `maxmemory-policy allkeys-lru`, and
// Redis's LRU is approximated by sampling a few keys (`maxmemory-samples`), not exact as here.
//
// What to do: make `get` count as a use, and make `put` evict the least recently used
// entries while the cache holds more than `capacity`.
// Run `backlings hint` if you are stuck.

use std::collections::{BTreeMap, HashMap};

pub struct Lru {
    capacity: usize,
    /// The next use number: bigger is more recent.
    clock: u64,
    /// key -> (value, number of its last use)
    entries: HashMap<String, (String, u64)>,
    /// number of the last use -> key, oldest first
    by_use: BTreeMap<u64, String>,
}

impl Lru {
    pub fn new(capacity: usize) -> Lru {
        assert!(capacity > 0, "a cache holds at least one entry");
        Lru {
            capacity,
            clock: 0,
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Marks `key` (already in `entries`) as used just now.
    fn touch(&mut self, key: &str) {
        self.clock += 1;
        let Some((_, used)) = self.entries.get_mut(key) else {
            return;
        };
        self.by_use.remove(used);
        *used = self.clock;
        self.by_use.insert(self.clock, key.to_string());
    }

    pub fn get(&mut self, key: &str) -> Option<String> {
        let value = self.entries.get(key)?.0.clone();
        // A read is a use: the key moves to the most recent end.
        self.touch(key);
        Some(value)
    }

    pub fn put(&mut self, key: &str, value: String) {
        let used = self.entries.get(key).map_or(0, |(_, used)| *used);
        self.entries.insert(key.to_string(), (value, used));
        self.touch(key);
        // Over the bound: drop the oldest uses until it holds.
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    fn has(cache: &mut Lru, key: &str) -> bool {
        cache.get(key).is_some()
    }

    #[test]
    fn the_least_recently_used_key_goes_first() {
        for cap in [3usize, 5] {
            let mut cache = Lru::new(cap);
            let keys: Vec<String> = (0..cap).map(|i| format!("k{i}")).collect();
            for k in &keys {
                cache.put(k, format!("v-{k}"));
            }
            // Read every key but one, oldest first: the one left out (k1 or k2, not the first
            // stored) is now the least recently used. Insertion order (FIFO) would evict k0.
            let victim = &keys[cap / 2];
            for k in keys.iter().filter(|k| *k != victim) {
                assert!(has(&mut cache, k), "capacity {cap}: {k} was just stored");
            }
            cache.put("new", "v-new".into());
            assert_eq!(cache.len(), cap, "capacity {cap}: full, one in and one out");
            assert!(
                !has(&mut cache, victim),
                "capacity {cap}: {victim} was used least recently (every other key was read \
                 after it was stored), so storing \"new\" must evict it"
            );
            for k in keys
                .iter()
                .filter(|k| *k != victim)
                .chain([&"new".to_string()])
            {
                assert_eq!(
                    cache.get(k),
                    Some(format!("v-{k}")),
                    "capacity {cap}: {k} stays"
                );
            }
        }
    }

    #[test]
    fn a_read_protects_a_key_from_eviction() {
        for cap in [3usize, 5] {
            let mut cache = Lru::new(cap);
            let hot = format!("hot{cap}");
            cache.put(&hot, "h".into());
            // 40 one-off keys stream through; the hot key is read between each of them.
            for i in 0..40 {
                cache.put(&format!("cold{i}"), i.to_string());
                assert_eq!(
                    cache.get(&hot).as_deref(),
                    Some("h"),
                    "capacity {cap}: {hot} was read after every insert, so it is never the \
                     least recently used (evicted after cold{i}?)"
                );
            }
            assert_eq!(
                cache.by_use.len(),
                cache.len(),
                "capacity {cap}: an evicted key must leave `by_use` too (one use number per key)"
            );
            // The rest of the cache is the most recent cold keys, the oldest ones gone.
            for i in 0..40 {
                let expected = i >= 40 - (cap - 1);
                assert_eq!(
                    has(&mut cache, &format!("cold{i}")),
                    expected,
                    "capacity {cap}: cold{i} should {}be cached (the {} newest cold keys stay)",
                    if expected { "" } else { "not " },
                    cap - 1
                );
            }
        }
    }

    #[test]
    fn the_size_never_exceeds_the_capacity() {
        for cap in [3usize, 5] {
            let mut cache = Lru::new(cap);
            for i in 0..1_000 {
                cache.put(&format!("key{i}"), "x".repeat(i % 7));
                let expected = (i + 1).min(cap);
                assert_eq!(
                    cache.len(),
                    expected,
                    "capacity {cap}: after {} distinct puts the cache must hold {expected}",
                    i + 1
                );
            }
            assert_eq!(
                cache.by_use.len(),
                cap,
                "capacity {cap}: after 1000 puts `by_use` must hold one use number per cached \
                 key, not one per key ever stored"
            );
            // The survivors are exactly the last `cap` keys.
            for i in 1_000 - cap..1_000 {
                assert!(
                    has(&mut cache, &format!("key{i}")),
                    "capacity {cap}: key{i} stays"
                );
            }
            assert!(
                !has(&mut cache, &format!("key{}", 999 - cap)),
                "capacity {cap}: evicted"
            );
        }
    }

    #[test]
    fn overwriting_a_key_evicts_nothing_and_counts_as_a_use() {
        for cap in [3usize, 5] {
            let mut cache = Lru::new(cap);
            assert!(cache.is_empty(), "a new cache is empty");
            for i in 0..cap {
                cache.put(&format!("k{i}"), "old".into());
            }
            assert!(!cache.is_empty(), "capacity {cap}: full, not empty");
            // Overwrite k1, then the oldest key k0: the cache stays full, nobody leaves.
            for key in ["k1", "k0"] {
                cache.put(key, "new".into());
                assert_eq!(
                    cache.len(),
                    cap,
                    "capacity {cap}: overwriting {key} adds no entry"
                );
                for i in 0..cap {
                    assert!(
                        cache.entries.contains_key(&format!("k{i}")),
                        "capacity {cap}: k{i} must still be cached after overwriting {key}"
                    );
                }
            }
            assert_eq!(
                cache.by_use.len(),
                cap,
                "capacity {cap}: one use number per key"
            );
            // k1 and k0 were just written, so k2 is now the least recently used.
            cache.put("fresh", "f".into());
            assert!(
                !cache.entries.contains_key("k2"),
                "capacity {cap}: k2 is the oldest use after overwriting k1 and k0: evicted"
            );
            assert_eq!(
                cache.get("k0").as_deref(),
                Some("new"),
                "capacity {cap}: k0 = new"
            );
            assert_eq!(
                cache.get("k1").as_deref(),
                Some("new"),
                "capacity {cap}: k1 = new"
            );
            assert_eq!(cache.len(), cap);
        }
    }
}
