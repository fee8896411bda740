// memory_quiz: a session store that leaks three ways
//
// This in-memory session store (what you would otherwise keep in Redis with EXPIRE) has three
// leaks, each from this topic. Expired sessions are never removed, so the map only grows, and
// after a spike its table keeps the memory. The background sweeper is spawned and forgotten,
// so it keeps the store's state alive after the store is dropped. And sessions own their user
// while the user owns its sessions: a reference cycle, this time with `Arc`.
//
// Why it matters: memory that grows slowly and never comes back is the classic "restart it every
// night" service. Each of these three bugs alone is enough to get the pod OOM-killed.
//
// What to do: fix the three leaks; each TODO marks a place to change. `Sessions::sweep`
// removes expired sessions and shrinks the map after a spike; `SessionStore` stops its sweeper
// when dropped; `User` refers to its sessions without owning them. Run `backlings hint` if you
// are stuck.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{Instant, interval_at};

/// A session is valid for this long after login.
pub const TTL: Duration = Duration::from_secs(1);
/// How often the sweeper removes expired sessions.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Counts dropped values, so that tests can see whether memory was freed.
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub struct User {
    pub name: String,
    // TODO: a session owns its user, and here the user owns its sessions: a cycle. Make the
    // user point at its sessions without owning them.
    sessions: Mutex<Vec<Arc<Session>>>,
    drops: DropCounter,
}

impl User {
    pub fn new(name: &str, drops: &DropCounter) -> Arc<User> {
        Arc::new(User {
            name: name.to_string(),
            sessions: Mutex::new(Vec::new()),
            drops: drops.clone(),
        })
    }

    /// The ids of this user's sessions that still exist ("where am I logged in?").
    pub fn session_ids(&self) -> Vec<u64> {
        let sessions = self.sessions.lock().unwrap();
        // TODO: once the list holds `Weak`s, list only the sessions that still exist.
        sessions.iter().map(|s| s.id).collect()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        self.drops.bump();
    }
}

pub struct Session {
    pub id: u64,
    pub user: Arc<User>,
    expires_at: Instant,
    drops: DropCounter,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.drops.bump();
    }
}

/// The state shared by the store and its sweeper.
struct Sessions {
    by_id: HashMap<u64, Arc<Session>>,
    next_id: u64,
}

impl Sessions {
    /// Removes every session that has expired at `now`.
    fn sweep(&mut self, now: Instant) {
        // TODO: remove the expired sessions (a session is valid while `now < expires_at`),
        // then shrink the map, so that a spike does not keep its memory forever.
        let _ = now;
    }
}

/// An in-memory session store with a background sweeper.
pub struct SessionStore {
    sessions: Arc<Mutex<Sessions>>,
    session_drops: DropCounter,
    // TODO: keep the sweeper's `JoinHandle`, and stop the sweeper when the store is dropped.
}

impl SessionStore {
    /// Starts the store. `session_drops` counts freed sessions.
    pub fn new(session_drops: &DropCounter) -> SessionStore {
        let sessions = Arc::new(Mutex::new(Sessions {
            by_id: HashMap::new(),
            next_id: 1,
        }));
        let state = Arc::clone(&sessions);
        tokio::spawn(async move {
            let mut ticks = interval_at(Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
            loop {
                ticks.tick().await;
                state.lock().unwrap().sweep(Instant::now());
            }
        });
        SessionStore {
            sessions,
            session_drops: session_drops.clone(),
        }
    }

    /// Creates a session for `user`, valid for `TTL`, and returns its id.
    pub fn login(&self, user: &Arc<User>) -> u64 {
        let mut sessions = self.sessions.lock().unwrap();
        let id = sessions.next_id;
        sessions.next_id += 1;
        let session = Arc::new(Session {
            id,
            user: Arc::clone(user),
            expires_at: Instant::now() + TTL,
            drops: self.session_drops.clone(),
        });
        // TODO: with `Weak` references, also forget the sessions that are already gone.
        user.sessions.lock().unwrap().push(Arc::clone(&session));
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

    /// How many sessions the map has room for without growing.
    pub fn capacity(&self) -> usize {
        self.sessions.lock().unwrap().by_id.capacity()
    }
}

// TODO: implement `Drop` for `SessionStore`.

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::sleep;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(start_paused = true)]
    async fn expired_sessions_are_swept() {
        let store = SessionStore::new(&DropCounter::default());
        let alice = User::new("alice", &DropCounter::default());
        let first = store.login(&alice);
        sleep(Duration::from_millis(500)).await;
        let second = store.login(&alice);
        sleep(Duration::from_millis(501)).await;
        assert!(
            store.get(first).is_none(),
            "the first session expired at 1 s: get() must return None"
        );
        assert!(
            store.get(second).is_some(),
            "the second session is valid until 1.5 s: get() must return it at 1.001 s"
        );
        assert_eq!(
            store.len(),
            1,
            "the sweep at 1 s removes the session that expired at 1 s and keeps the other: \
             expected 1 session in the map"
        );
        sleep(Duration::from_secs(1)).await;
        assert_eq!(
            store.len(),
            0,
            "the sweep at 2 s removes the second session: expected an empty map"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_map_stays_bounded_under_steady_load() {
        let store = SessionStore::new(&DropCounter::default());
        let alice = User::new("alice", &DropCounter::default());
        let mut most = 0;
        for _ in 0..1_000 {
            store.login(&alice);
            most = most.max(store.len());
            sleep(Duration::from_millis(10)).await;
        }
        assert!(
            most <= 200,
            "100 logins a second, a 1 s TTL and a sweep every second: expected at most 200 \
             sessions in the map at once, saw {most}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_spike_gives_its_memory_back() {
        let store = SessionStore::new(&DropCounter::default());
        let users = DropCounter::default();
        for i in 0..10_000 {
            store.login(&User::new(&format!("user{i}"), &users));
        }
        assert!(store.capacity() >= 10_000, "the spike filled the map");
        sleep(TTL + MS).await;
        assert_eq!(store.len(), 0, "every spike session expired at 1 s");
        assert!(
            store.capacity() < 1_000,
            "the spike is over, but the map still has room for {} sessions: expected under \
             1 000 (retain() keeps the capacity; shrink the map)",
            store.capacity()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_user_lists_only_live_sessions() {
        let store = SessionStore::new(&DropCounter::default());
        let alice = User::new("alice", &DropCounter::default());
        let ids = [
            store.login(&alice),
            store.login(&alice),
            store.login(&alice),
        ];
        store.logout(ids[1]);
        assert_eq!(
            alice.session_ids(),
            vec![ids[0], ids[2]],
            "after logging out of session {}, the user must list only the other two",
            ids[1]
        );
        assert_eq!(alice.name, "alice");
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_store_frees_everything() {
        let sessions = DropCounter::default();
        let users = DropCounter::default();
        let store = SessionStore::new(&sessions);
        let alice = User::new("alice", &users);
        for _ in 0..3 {
            store.login(&alice);
        }
        sleep(Duration::from_millis(100)).await;
        drop(store);
        sleep(MS).await;
        assert_eq!(
            sessions.get(),
            3,
            "1 ms after the store was dropped (long before the sessions expire), all 3 \
             sessions must be freed, got {} (who else still holds them: a task? the user?)",
            sessions.get()
        );
        assert_eq!(
            alice.session_ids(),
            Vec::<u64>::new(),
            "alice has no sessions left"
        );
        drop(alice);
        assert_eq!(
            users.get(),
            1,
            "with our handle gone, alice must be freed too"
        );
    }
}
