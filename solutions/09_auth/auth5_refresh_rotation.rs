// auth5_refresh_rotation: single-use refresh tokens, and what a replay means
//
// A refresh token is an opaque random value (32 bytes from the RNG, sent as hex) that trades
// for a new access token. The store keeps only its SHA-256: a plain hash is right here, unlike
// for passwords, because 256 random bits cannot be guessed, so a slow hash adds nothing. Each
// token works once and is rotated: `refresh` marks it spent and returns a successor in the same
// *family* (one login, one device). A spent token that comes back means someone holds a copy:
// the thief or the victim, the server cannot tell. So it revokes the whole family, and the
// newest token stops working too; other logins are untouched.
//
// Why it matters: a browser extension copied refresh tokens out of local storage. Tokens were
// reusable and lived 30 days, so the copies worked for a month. With rotation and reuse
// detection, the first replay would have logged the user out everywhere that login reached.
//
// Production caveat: a legitimate client whose refresh response was lost retries with the spent
// token and revokes its own family. The FAPI 2.0 Security Profile therefore allows rotation
// only if such a retry succeeds; servers add a short grace window for the immediate parent only.
//
// What to do: store `hash_token(token)` (lowercase hex of SHA-256), never the token; in
// `refresh`, spend the token, and revoke the family when a spent token comes back.
// Run `backlings hint` if you are stuck.

use sha2::{Digest, Sha256};
use thiserror::Error;

/// Seconds since the epoch. Tests drive a fake.
pub trait Clock {
    fn now(&self) -> u64;
}

/// The source of token randomness (an OS RNG in production, a seeded one in tests).
pub trait Rng {
    fn fill(&mut self, buf: &mut [u8]);
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub user: String,
    pub family: u64,
    pub expires_at: u64,
    pub used: bool,
}

#[derive(Debug, PartialEq, Error)]
pub enum RefreshError {
    #[error("unknown refresh token")]
    Unknown,
    #[error("refresh token expired")]
    Expired,
    #[error("refresh token reused: its family is revoked")]
    Reused,
    #[error("this token's family was revoked")]
    Revoked,
}

/// Where the service keeps what it remembers: a database table in production, a fake in the
/// tests, which see every key and value written.
pub trait TokenTable {
    fn get(&self, key: &str) -> Option<Record>;
    /// Inserts, or replaces the record under `key`.
    fn put(&mut self, key: String, record: Record);
    fn revoke(&mut self, family: u64);
    fn is_revoked(&self, family: u64) -> bool;
    /// A family id never handed out before.
    fn new_family(&mut self) -> u64;
}

/// No other fields: every token the service remembers is in `table`, keyed by `hash_token`.
pub struct RefreshStore<C, R, T> {
    pub clock: C,
    pub rng: R,
    pub ttl_secs: u64,
    pub table: T,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hash_token(token: &str) -> String {
    // A leaked table of SHA-256 hashes gives an attacker nothing they can present.
    hex(&Sha256::digest(token.as_bytes()))
}

impl<C: Clock, R: Rng, T: TokenTable> RefreshStore<C, R, T> {
    /// Login: a new family and its first token.
    pub fn issue(&mut self, user: &str) -> String {
        let family = self.table.new_family();
        self.mint(user, family)
    }

    fn mint(&mut self, user: &str, family: u64) -> String {
        let mut raw = [0u8; 32];
        self.rng.fill(&mut raw);
        let token = hex(&raw);
        let record = Record {
            user: user.to_string(),
            family,
            expires_at: self.clock.now() + self.ttl_secs,
            used: false,
        };
        self.table.put(hash_token(&token), record);
        token
    }

    /// Trades a token for its successor: `(user, new token)`.
    pub fn refresh(&mut self, token: &str) -> Result<(String, String), RefreshError> {
        let key = hash_token(token);
        let mut record = self.table.get(&key).ok_or(RefreshError::Unknown)?;
        if self.table.is_revoked(record.family) {
            return Err(RefreshError::Revoked);
        }
        // A spent token came back, expired or not: someone holds a copy. Revoke the login.
        if record.used {
            self.table.revoke(record.family);
            return Err(RefreshError::Reused);
        }
        if self.clock.now() >= record.expires_at {
            return Err(RefreshError::Expired);
        }
        record.used = true;
        self.table.put(key, record.clone());
        let next = self.mint(&record.user, record.family);
        Ok((record.user, next))
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::{HashMap, HashSet};
    use std::rc::Rc;

    #[derive(Clone)]
    struct FakeClock(Rc<Cell<u64>>);
    impl Clock for FakeClock {
        fn now(&self) -> u64 {
            self.0.get()
        }
    }

    /// xorshift64: deterministic, so the test knows every byte the store will draw.
    #[derive(Clone)]
    struct XorShift(u64);
    impl Rng for XorShift {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                *b = self.0 as u8;
            }
        }
    }

    /// The table the service writes to, with a log of every key and value it was given.
    #[derive(Default)]
    struct MemTable {
        records: HashMap<String, Record>,
        revoked: HashSet<u64>,
        writes: Vec<String>,
        families: u64,
    }
    impl TokenTable for MemTable {
        fn get(&self, key: &str) -> Option<Record> {
            self.records.get(key).cloned()
        }
        fn put(&mut self, key: String, record: Record) {
            self.writes.push(format!("{key} {record:?}"));
            self.records.insert(key, record);
        }
        fn revoke(&mut self, family: u64) {
            self.revoked.insert(family);
        }
        fn is_revoked(&self, family: u64) -> bool {
            self.revoked.contains(&family)
        }
        fn new_family(&mut self) -> u64 {
            self.families += 1;
            self.families
        }
    }

    type Store = RefreshStore<FakeClock, XorShift, MemTable>;

    fn store(start: u64, ttl: u64, seed: u64) -> (Store, Rc<Cell<u64>>) {
        let now = Rc::new(Cell::new(start));
        // Built from its fields: a service with a field of its own to hide tokens in won't build.
        let store = RefreshStore {
            clock: FakeClock(now.clone()),
            rng: XorShift(seed),
            ttl_secs: ttl,
            table: MemTable::default(),
        };
        (store, now)
    }

    fn sha256_hex(s: &str) -> String {
        Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Logs `user` in and rotates `n` times: every token of the chain, oldest first.
    fn chain(store: &mut Store, user: &str, n: usize) -> Vec<String> {
        let mut tokens = vec![store.issue(user)];
        for i in 0..n {
            let (who, next) = store
                .refresh(tokens.last().unwrap())
                .unwrap_or_else(|e| panic!("rotation {} of {user}'s login failed: {e}", i + 1));
            assert_eq!(who, user, "refresh answers the token's user");
            assert!(!tokens.contains(&next), "each rotation gives a new token");
            tokens.push(next);
        }
        tokens
    }

    #[test]
    fn rotation_spends_each_token_once() {
        for (user, n, seed) in [("alice", 3, 7), ("bob", 5, 99)] {
            let (mut store, _) = store(1_000, 3_600, seed);
            let tokens = chain(&mut store, user, n);
            for (i, old) in tokens[..n].iter().enumerate() {
                let again = store.refresh(old);
                assert!(
                    again.is_err(),
                    "{user}'s token #{i} was already rotated: a second refresh must fail, got {again:?}"
                );
            }
        }
    }

    #[test]
    fn a_replay_revokes_the_whole_family_and_says_so() {
        // (chain length, which spent token the thief replays)
        for (n, replayed) in [(2, 0), (4, 2)] {
            let (mut store, _) = store(1_000, 3_600, 42);
            let tokens = chain(&mut store, "alice", n);
            assert_eq!(
                store.refresh(&tokens[replayed]),
                Err(RefreshError::Reused),
                "token #{replayed} of {n} rotations was spent: replaying it is Reused"
            );
            let newest = tokens.last().unwrap();
            assert_eq!(
                store.refresh(newest),
                Err(RefreshError::Revoked),
                "after a replay, even the newest token of that login is Revoked"
            );
            assert_eq!(
                store.refresh(&tokens[replayed]),
                Err(RefreshError::Revoked),
                "a second replay finds the family already Revoked"
            );
        }
    }

    #[test]
    fn other_logins_survive_a_replay() {
        for seed in [3, 1234] {
            let (mut store, _) = store(50, 600, seed);
            let laptop = chain(&mut store, "alice", 2);
            let phone = chain(&mut store, "alice", 1);
            let bob = chain(&mut store, "bob", 1);
            assert_eq!(store.refresh(&laptop[0]), Err(RefreshError::Reused));
            assert_eq!(
                store.refresh(&laptop[2]),
                Err(RefreshError::Revoked),
                "the replayed login is revoked"
            );
            let (who, _) = store
                .refresh(&phone[1])
                .expect("alice's other login (her phone) is a separate family: it still works");
            assert_eq!(who, "alice");
            let (who, _) = store
                .refresh(&bob[1])
                .expect("bob's login has nothing to do with alice's: it still works");
            assert_eq!(who, "bob");
        }
    }

    #[test]
    fn a_token_expires_exactly_at_its_deadline() {
        for (start, ttl) in [(1_000, 60), (500_000, 86_400)] {
            let (mut store, now) = store(start, ttl, 5);
            let first = store.issue("alice");
            let spare = store.issue("alice");
            now.set(start + ttl - 1);
            let (_, second) = store
                .refresh(&first)
                .expect("one second before its deadline the token still works");
            now.set(start + ttl);
            assert_eq!(
                store.refresh(&spare),
                Err(RefreshError::Expired),
                "issued at {start} with ttl {ttl}: at {} it has expired",
                start + ttl
            );
            // The successor gets a full ttl from the moment it was minted.
            now.set(start + 2 * ttl - 2);
            let (_, third) = store
                .refresh(&second)
                .expect("the successor was minted at ttl - 1 and lives a full ttl");
            now.set(start + 3 * ttl - 2);
            assert_eq!(
                store.refresh(&third),
                Err(RefreshError::Expired),
                "the third token was minted at {} and expires at {}",
                start + 2 * ttl - 2,
                start + 3 * ttl - 2
            );
        }
    }

    #[test]
    fn a_spent_token_replayed_after_it_expired_still_revokes_its_family() {
        for (start, ttl) in [(1_000, 60), (40_000, 3_600)] {
            let (mut store, now) = store(start, ttl, 8);
            let first = store.issue("alice");
            now.set(start + ttl - 1);
            let (_, second) = store.refresh(&first).expect("rotated just before expiry");
            now.set(start + ttl + 5);
            assert_eq!(
                store.refresh(&first),
                Err(RefreshError::Reused),
                "a spent token is a theft signal even after it expired: Reused, not Expired"
            );
            assert_eq!(
                store.refresh(&second),
                Err(RefreshError::Revoked),
                "the successor (valid until {}) is revoked with its family",
                start + 2 * ttl - 1
            );
            let (mut fresh, now) = self::store(start, ttl, 8);
            let never_used = fresh.issue("bob");
            now.set(start + ttl);
            assert_eq!(
                fresh.refresh(&never_used),
                Err(RefreshError::Expired),
                "an expired token that was never spent is only Expired"
            );
        }
    }

    #[test]
    fn the_store_holds_sha256_hashes_never_tokens() {
        for seed in [11, 77] {
            let (mut store, _) = store(0, 100, seed);
            let mut tokens = chain(&mut store, "alice", 2);
            tokens.extend(chain(&mut store, "bob", 1));
            assert_eq!(store.refresh(&tokens[0]), Err(RefreshError::Reused));
            let table = &store.table;
            assert_eq!(table.records.len(), tokens.len(), "one record per token");
            let dump = format!("{:?} {:?}", table.writes, table.revoked);
            for token in &tokens {
                assert!(
                    !dump.contains(token.as_str()),
                    "the table must never be given a raw token, found {token} in what was written"
                );
                assert!(
                    table.records.contains_key(&sha256_hex(token)),
                    "expected a record keyed by the lowercase hex SHA-256 of {token}"
                );
            }
            for key in table.records.keys() {
                assert!(
                    tokens.iter().any(|t| sha256_hex(t) == *key),
                    "every key is the SHA-256 of a token, found {key}"
                );
            }
        }
    }

    #[test]
    fn tokens_are_32_bytes_from_the_injected_rng() {
        for seed in [1, 0x9e37_79b9] {
            let (mut store, _) = store(0, 100, seed);
            let mut twin = XorShift(seed);
            let mut expected = |n: usize| -> Vec<String> {
                (0..n)
                    .map(|_| {
                        let mut raw = [0u8; 32];
                        twin.fill(&mut raw);
                        raw.iter().map(|b| format!("{b:02x}")).collect()
                    })
                    .collect()
            };
            let tokens = chain(&mut store, "alice", 2);
            assert_eq!(
                tokens,
                expected(3),
                "each token is the next 32 RNG bytes as lowercase hex (64 characters)"
            );
            assert_eq!(
                store.refresh("not-a-token"),
                Err(RefreshError::Unknown),
                "a token the store never issued is Unknown"
            );
        }
    }
}
