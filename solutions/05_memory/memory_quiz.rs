// memory_quiz: a session store that leaks three ways
//
// This in-memory session store (Redis with EXPIRE, in process) leaks three ways. Expired
// sessions are never removed, so the map only grows, and after a spike its table keeps its
// size. The sweeper task is spawned and forgotten, so it keeps the store's state alive after
// the store is dropped. And sessions own their user while the user owns its sessions: a cycle.
// Why it matters: memory that grows and never comes back is the classic "restart it every
// night" service; each of these bugs alone gets the pod OOM-killed.
//
// Two facts: a `Weak` lets the value go, but the `Arc`'s allocation stays until the last `Weak`
// goes, so a list of dead `Weak`s still grows. And shrinking a map gives memory back to the
// allocator, not necessarily to the OS: glibc's `free` returns memory to the OS only at the top
// of its heap and for large blocks it got with `mmap`, so RSS may stay high after a shrink.
//
// What to do: fix the three TODOs. The tests measure the heap with a counting allocator.
// Run `backlings hint` if you are stuck.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, interval_at};

pub struct User {
    pub name: String,
    // The user only points at its sessions; the store owns them. With `Arc` here, a session
    // (which owns its user) and its user would keep each other alive forever.
    sessions: Mutex<Vec<Weak<Session>>>,
}

impl User {
    pub fn new(name: &str) -> Arc<User> {
        Arc::new(User {
            name: name.to_string(),
            sessions: Mutex::new(Vec::new()),
        })
    }

    /// The ids of this user's sessions that still exist ("where am I logged in?").
    pub fn session_ids(&self) -> Vec<u64> {
        let sessions = self.sessions.lock().unwrap();
        sessions
            .iter()
            .filter_map(Weak::upgrade)
            .map(|s| s.id)
            .collect()
    }
}

pub struct Session {
    pub id: u64,
    pub user: Arc<User>,
    expires_at: Instant,
}

/// The state shared by the store and its sweeper.
struct Sessions {
    by_id: HashMap<u64, Arc<Session>>,
    next_id: u64,
}

impl Sessions {
    /// Removes every session that has expired at `now`.
    fn sweep(&mut self, now: Instant) {
        // A session is valid while `now < expires_at`, the same test as in `get`.
        self.by_id.retain(|_, session| now < session.expires_at);
        // `retain` keeps the table's capacity: after a spike the map would hold on to it
        // forever. Give back what is more than twice the live sessions.
        self.by_id.shrink_to(self.by_id.len() * 2);
    }
}

/// An in-memory session store with a background sweeper.
pub struct SessionStore {
    sessions: Arc<Mutex<Sessions>>,
    ttl: Duration,
    // The store owns its sweeper and stops it in `Drop`.
    sweeper: JoinHandle<()>,
}

impl SessionStore {
    /// Starts the store: sessions live for `ttl`, and expired ones are swept every
    /// `sweep_every`.
    pub fn new(ttl: Duration, sweep_every: Duration) -> SessionStore {
        let sessions = Arc::new(Mutex::new(Sessions {
            by_id: HashMap::new(),
            next_id: 1,
        }));
        let state = Arc::clone(&sessions);
        let sweeper = tokio::spawn(async move {
            let mut ticks = interval_at(Instant::now() + sweep_every, sweep_every);
            loop {
                ticks.tick().await;
                state.lock().unwrap().sweep(Instant::now());
            }
        });
        SessionStore {
            sessions,
            ttl,
            sweeper,
        }
    }

    /// Creates a session for `user`, valid for the store's TTL, and returns its id.
    pub fn login(&self, user: &Arc<User>) -> u64 {
        let mut sessions = self.sessions.lock().unwrap();
        let id = sessions.next_id;
        sessions.next_id += 1;
        let session = Arc::new(Session {
            id,
            user: Arc::clone(user),
            expires_at: Instant::now() + self.ttl,
        });
        let mut mine = user.sessions.lock().unwrap();
        // Forget the sessions that are gone: a dead `Weak` still holds its allocation.
        mine.retain(|s| s.strong_count() > 0);
        mine.push(Arc::downgrade(&session));
        drop(mine);
        sessions.by_id.insert(id, session);
        id
    }

    /// The session with this id, if it exists and has not expired.
    pub fn get(&self, id: u64) -> Option<Arc<Session>> {
        let sessions = self.sessions.lock().unwrap();
        let session = sessions.by_id.get(&id)?;
        (Instant::now() < session.expires_at).then(|| Arc::clone(session))
    }

    pub fn logout(&self, id: u64) {
        self.sessions.lock().unwrap().by_id.remove(&id);
    }

    /// How many sessions the map holds (expired ones included, until they are swept).
    pub fn len(&self) -> usize {
        self.sessions.lock().unwrap().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for SessionStore {
    fn drop(&mut self) {
        self.sweeper.abort();
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use tokio::time::{advance, sleep};

    // ---- A counting allocator: the heap this test's thread holds ----------------------------

    thread_local! {
        static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
    }

    fn add_live(bytes: i64) {
        let _ = LIVE_BYTES.try_with(|live| live.set(live.get() + bytes));
    }

    struct CountingAlloc;

    // Implementing `GlobalAlloc` is unsafe by definition: the one place `unsafe` is allowed.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add_live(layout.size() as i64);
            // SAFETY: we forward the caller's arguments unchanged, under the same contract.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            add_live(-(layout.size() as i64));
            // SAFETY: `ptr` came from `System` through `alloc` or `realloc` above.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            add_live(new_size as i64 - layout.size() as i64);
            // SAFETY: as in `dealloc`; `new_size` is checked by the caller.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: CountingAlloc = CountingAlloc;

    /// Bytes of heap held by this thread (a `current_thread` runtime runs every task here).
    fn live_bytes() -> i64 {
        LIVE_BYTES.with(Cell::get)
    }

    // ---- The tests ---------------------------------------------------------------------------

    const MS: Duration = Duration::from_millis(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// (ttl, sweep every, one login every `step`): two shapes, so that nothing is hard-coded.
    const SHAPES: [(u64, u64, u64); 2] = [(1_000, 1_000, 10), (350, 150, 10)];

    #[tokio::test(start_paused = true)]
    async fn a_session_is_valid_until_exactly_its_ttl() {
        for (ttl, sweep, _) in SHAPES {
            let store = SessionStore::new(ms(ttl), ms(sweep));
            let alice = User::new("alice");
            advance(ms(3)).await;
            let id = store.login(&alice);
            let session = store.get(id).expect("a new session is valid");
            assert_eq!(session.id, id, "get({id}) returns session {id}");
            assert!(
                Arc::ptr_eq(&session.user, &alice),
                "the session belongs to alice"
            );
            advance(ms(ttl - 1)).await;
            assert!(
                store.get(id).is_some(),
                "1 ms before its {ttl} ms TTL ends, the session is still valid"
            );
            advance(MS).await;
            assert!(
                store.get(id).is_none(),
                "exactly {ttl} ms after login the session has expired (valid while \
                 now < expires_at)"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_sweep_removes_exactly_the_expired_sessions() {
        for (ttl, sweep, step) in SHAPES {
            let store = SessionStore::new(ms(ttl), ms(sweep));
            let alice = User::new("alice");
            assert!(store.is_empty(), "a new store is empty");
            let start = Instant::now();
            let mut logins: Vec<(u64, u64)> = Vec::new();
            // 1 000 rounds: log in at k * step, look at the map half a step later.
            for k in 0..1_000 {
                let at = k * step;
                logins.push((store.login(&alice), at));
                sleep(ms(step / 2)).await;
                let now = at + step / 2;
                let last_sweep = now / sweep * sweep;
                let expected = logins.iter().filter(|(_, l)| l + ttl > last_sweep).count();
                assert_eq!(
                    store.len(),
                    expected,
                    "TTL {ttl} ms, a sweep every {sweep} ms, a login every {step} ms: at {now} \
                     ms the sweep at {last_sweep} ms has removed every session that expired \
                     at or before it. Expected {expected} sessions in the map"
                );
                assert!(
                    !store.is_empty(),
                    "at {now} ms the map holds {expected} sessions"
                );
                for &(id, l) in logins.iter().rev().take((ttl / step + 2) as usize) {
                    assert_eq!(
                        store.get(id).is_some(),
                        l + ttl > now,
                        "at {now} ms, session {id} (login at {l} ms, TTL {ttl} ms) is valid \
                         only while now < login + TTL"
                    );
                }
                sleep(ms(at + step) - (Instant::now() - start)).await;
            }
            sleep(ms(ttl + sweep)).await;
            assert!(
                store.is_empty(),
                "no logins for TTL + one sweep period: every session must be gone, {} left",
                store.len()
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_spike_gives_its_memory_back() {
        for ((ttl, sweep, _), spike) in SHAPES.into_iter().zip([10_000, 3_000]) {
            let store = SessionStore::new(ms(ttl), ms(sweep));
            let regular = User::new("regular");
            let before = live_bytes();
            for i in 0..spike {
                store.login(&User::new(&format!("user{i}")));
            }
            // Just before the spike expires, the regular user logs in 20 times. The sweep
            // that removes the spike keeps those: the map is small, but not empty.
            sleep(ms(ttl - 1)).await;
            let ids: Vec<u64> = (0..20).map(|_| store.login(&regular)).collect();
            sleep(ms(sweep)).await;
            assert_eq!(
                store.len(),
                ids.len(),
                "{ttl} ms after the spike, the sweeps removed its {spike} sessions and kept the \
                 regular user's {} newer ones",
                ids.len()
            );
            let grown = live_bytes() - before;
            assert!(
                grown < 8 * 1024,
                "after a spike of {spike} sessions expired and was swept, the heap is still {} \
                 bytes larger than before it (expected under 8 KiB). `retain` keeps the \
                 table's capacity: shrink the map, even when it is not empty",
                grown
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_lived_user_does_not_collect_dead_sessions() {
        for (ttl, sweep, step) in SHAPES {
            let store = SessionStore::new(ms(ttl), ms(sweep));
            let alice = User::new("alice");
            let mut after_warm_up = 0;
            // 5 000 logins by one user; each session expires and is swept long before the end.
            for k in 0..5_000 {
                store.login(&alice);
                sleep(ms(step)).await;
                if k == 999 {
                    after_warm_up = live_bytes();
                }
            }
            let grown = live_bytes() - after_warm_up;
            assert!(
                grown < 16 * 1024,
                "the last 4 000 logins grew the heap by {grown} bytes, while the live sessions \
                 stayed under {}: expected under 16 KiB. The user's list must not grow: an \
                 `Arc` in it keeps its session alive, and even a dead `Weak` still holds its \
                 session's allocation, so drop the dead ones",
                (ttl + sweep) / step + 1
            );
            assert_eq!(
                alice.session_ids().len(),
                store.len(),
                "alice lists exactly the sessions the store holds"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_user_lists_only_live_sessions() {
        for (logins, out) in [(3, vec![1]), (7, vec![0, 3, 6])] {
            let store = SessionStore::new(Duration::from_secs(60), Duration::from_secs(60));
            let alice = User::new("alice");
            let ids: Vec<u64> = (0..logins).map(|_| store.login(&alice)).collect();
            for &i in &out {
                store.logout(ids[i]);
            }
            let expected: Vec<u64> = (0..logins)
                .filter(|i| !out.contains(i))
                .map(|i| ids[i])
                .collect();
            assert_eq!(
                alice.session_ids(),
                expected,
                "after logging out of sessions {out:?} (by index), alice lists only the others"
            );
            assert_eq!(alice.name, "alice");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_store_frees_everything() {
        for count in [3, 7] {
            let store = SessionStore::new(Duration::from_secs(60), Duration::from_secs(1));
            let alice = User::new("alice");
            let sessions: Vec<_> = (0..count)
                .map(|_| Arc::downgrade(&store.get(store.login(&alice)).unwrap()))
                .collect();
            sleep(Duration::from_millis(1_500)).await;
            drop(store);
            sleep(MS).await;
            let alive = sessions.iter().filter(|s| s.upgrade().is_some()).count();
            assert_eq!(
                alive, 0,
                "1 ms after the store was dropped (long before the sessions expire), all \
                 {count} sessions must be freed, {alive} are not (who else still holds them: \
                 a task? the user?)"
            );
            assert_eq!(
                alice.session_ids(),
                Vec::<u64>::new(),
                "alice has no sessions left"
            );
            let user = Arc::downgrade(&alice);
            drop(alice);
            assert!(
                user.upgrade().is_none(),
                "with our handle gone, alice must be freed"
            );
        }
    }
}
