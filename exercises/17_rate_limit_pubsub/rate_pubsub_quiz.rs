// rate_pubsub_quiz: a chat service with rooms, a per-user rate limit and lag reports
//
// The topic in one service. Each room is a `broadcast` channel, kept as its `Sender` in a map
// and created on the first `join`. Publishing is limited per user by a token bucket (a burst,
// then one message per `interval`, counted across all rooms; a refused message takes no token
// and says how long to wait). A member that reads too slowly is told how many messages it
// missed and keeps reading. And the service forgets: every room anyone ever opened and every
// user who ever posted would otherwise stay in memory for good. A room without receivers can
// go; so can a bucket that has refilled to full, since a full bucket is exactly what a new
// user gets (forgetting it changes nothing a user can do).
//
// Why it matters: a chat backend kept a bucket for every user name that ever posted. A bot
// posting under random names grew the map by a million entries a day until the pod was
// OOM-killed; the sweep that dropped full buckets kept it flat.
//
// Production caveat: this map lives in one process, and so do the rooms. Members connected to
// another replica never see what was published here: a chat that runs on several replicas
// relays every message through a shared bus (Redis PUBLISH/SUBSCRIBE, NATS), and each replica
// re-broadcasts to its own members. The bus is at most once as well.
//
// What to do: three TODOs. Limit `publish` per user, forget in `sweep`, and report lag in
// `next_event`.
// Run `backlings hint` if you are stuck.

use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::{self, Receiver, Sender};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub from: String,
    pub text: String,
}

/// What a member sees next.
#[derive(Debug, PartialEq)]
pub enum Event {
    Msg(Msg),
    /// This many messages were overwritten before the member read them.
    Missed(u64),
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PublishError {
    #[error("too many messages: retry in {0:?}")]
    RateLimited(Duration),
}

/// A user's token bucket, its level kept as time: `interval` per token.
struct Bucket {
    level: Duration,
    last: Instant,
}

pub struct Chat {
    room_capacity: usize,
    burst: u32,
    interval: Duration,
    rooms: HashMap<String, Sender<Msg>>,
    buckets: HashMap<String, Bucket>,
}

impl Chat {
    pub fn new(room_capacity: usize, burst: u32, interval: Duration) -> Self {
        Chat {
            room_capacity,
            burst,
            interval,
            rooms: HashMap::new(),
            buckets: HashMap::new(),
        }
    }

    /// Joins `room`, opening it if needed.
    pub fn join(&mut self, room: &str) -> Receiver<Msg> {
        let capacity = self.room_capacity;
        self.rooms
            .entry(room.to_owned())
            .or_insert_with(|| broadcast::channel(capacity).0)
            .subscribe()
    }

    /// Posts `text` to `room` as `user`; returns how many members got it.
    pub fn publish(&mut self, user: &str, room: &str, text: &str) -> Result<usize, PublishError> {
        // TODO 1: no limit at all: anyone can post as fast as they like. Keep a `Bucket` per
        // user in `self.buckets` (a new one is full: `burst` tokens of `interval` each), refill
        // it by the time since its `last` (tokio's `Instant::now()`), capped at full, and
        // refuse with `RateLimited(wait until one token)` when it holds less than one token.

        let msg = Msg {
            from: user.to_owned(),
            text: text.to_owned(),
        };
        match self.rooms.get(room) {
            // `send` fails only when nobody is in the room.
            Some(tx) => Ok(tx.send(msg).unwrap_or(0)),
            None => Ok(0),
        }
    }

    /// Forgets rooms nobody is in and users whose bucket is full again. Run it periodically.
    pub fn sweep(&mut self) {
        // TODO 2: nothing is ever forgotten. Drop the rooms that have no receivers, and the
        // buckets that are full again once the time since their `last` is counted.
    }

    pub fn open_rooms(&self) -> usize {
        self.rooms.len()
    }

    pub fn tracked_users(&self) -> usize {
        self.buckets.len()
    }
}

/// The next event for a member; `None` once the room is gone.
pub async fn next_event(rx: &mut Receiver<Msg>) -> Option<Event> {
    // TODO 3: every error ends the member's stream here, `Lagged` too. Report
    // `RecvError::Lagged(n)` as `Event::Missed(n)`; only `Closed` is the end.
    rx.recv().await.ok().map(Event::Msg)
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{advance, timeout};

    /// The two parameter sets: (room capacity, burst, interval in ms).
    const SETS: [(usize, u32, u64); 2] = [(4, 3, 2000), (8, 5, 500)];

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn msg(from: &str, text: &str) -> Event {
        Event::Msg(Msg {
            from: from.into(),
            text: text.into(),
        })
    }

    /// The next event, or a failure instead of a hang when there is none.
    async fn next(rx: &mut Receiver<Msg>) -> Option<Event> {
        timeout(Duration::from_secs(1), next_event(rx))
            .await
            .expect("expected an event within 1 s, got none")
    }

    /// Publishes `n` times as `user` now; returns how many were accepted.
    fn burst(chat: &mut Chat, user: &str, n: u32) -> u32 {
        (0..n)
            .filter(|i| chat.publish(user, "spam", &i.to_string()).is_ok())
            .count() as u32
    }

    #[tokio::test(start_paused = true)]
    async fn members_get_their_rooms_messages() {
        for (n, (cap, b, interval)) in [2, 3].into_iter().zip(SETS) {
            let mut chat = Chat::new(cap, b, ms(interval));
            let mut rust: Vec<_> = (0..n).map(|_| chat.join("rust")).collect();
            let mut cid = chat.join("go");
            assert_eq!(
                chat.publish("ann", "rust", "hi"),
                Ok(n),
                "{n} members in rust"
            );
            assert_eq!(chat.publish("cid", "go", "yo"), Ok(1), "1 member in go");
            assert_eq!(chat.publish("ann", "zig", "?"), Ok(0), "no room zig: 0");
            for rx in &mut rust {
                assert_eq!(
                    next(rx).await,
                    Some(msg("ann", "hi")),
                    "each of {n} in rust"
                );
            }
            assert_eq!(next(&mut cid).await, Some(msg("cid", "yo")));
            drop(chat);
            for rx in rust.iter_mut().chain([&mut cid]) {
                assert_eq!(
                    next(rx).await,
                    None,
                    "each member got its room's one message; the service is gone, so is the \
                     room: expected None"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_user_gets_a_burst_then_one_message_per_interval() {
        for (cap, b, interval) in SETS {
            let mut chat = Chat::new(cap, b, ms(interval));
            let mut member = chat.join("spam");
            assert!(
                chat.publish("dee", "other", "once").is_ok(),
                "dee posts once"
            );
            assert_eq!(burst(&mut chat, "ann", b + 3), b, "a burst of {b} passes");
            let got: Vec<String> = std::iter::from_fn(|| member.try_recv().ok())
                .map(|m| m.text)
                .collect();
            let accepted: Vec<String> = (0..b).map(|i| i.to_string()).collect();
            assert_eq!(
                got,
                accepted,
                "burst {b}: of ann's {} messages the first {b} were accepted; the member gets \
                 exactly those (a refused message is never sent)",
                b + 3
            );
            assert_eq!(
                chat.publish("ann", "other", "x"),
                Err(PublishError::RateLimited(ms(interval))),
                "burst {b}, one per {interval} ms: ann is limited in every room, and her next \
                 token is {interval} ms away"
            );
            assert_eq!(burst(&mut chat, "bob", b), b, "bob has his own bucket");
            // Several intervals: exactly one message each, at exactly its time.
            for k in 1..=6 {
                advance(ms(interval / 4)).await;
                assert_eq!(
                    chat.publish("ann", "spam", "early"),
                    Err(PublishError::RateLimited(ms(interval - interval / 4))),
                    "interval {k}: a quarter in, the token is {} ms away (refused messages \
                     take nothing)",
                    interval - interval / 4
                );
                advance(ms(interval - interval / 4)).await;
                assert_eq!(
                    burst(&mut chat, "ann", 3),
                    1,
                    "one per {interval} ms: at {} ms after the burst, expected 1 of 3 accepted \
                     (a bucket that never refills accepts none)",
                    k * interval
                );
            }
            advance(Duration::from_secs(3600)).await;
            assert_eq!(
                burst(&mut chat, "ann", b + 4),
                b,
                "after an hour idle: the bucket is full, not overflowing; expected {b} accepted"
            );
            assert_eq!(
                burst(&mut chat, "dee", b + 4),
                b,
                "dee posted once, then nothing for over an hour: her bucket is full, not more; \
                 expected {b} of {} accepted (refill on every publish, not only when the \
                 bucket runs dry)",
                b + 4
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lagging_member_hears_how_much_it_missed_and_reads_on() {
        for (cap, b, interval) in SETS {
            let mut chat = Chat::new(cap, b, ms(interval));
            let mut slow = chat.join("news");
            let sent = 2 * cap + 3;
            for i in 0..sent {
                chat.publish(&format!("user{i}"), "news", &i.to_string())
                    .unwrap();
            }
            assert_eq!(
                next(&mut slow).await,
                Some(Event::Missed((sent - cap) as u64)),
                "room capacity {cap}, {sent} messages unread: expected Missed({}) first",
                sent - cap
            );
            for i in sent - cap..sent {
                assert_eq!(
                    next(&mut slow).await,
                    Some(msg(&format!("user{i}"), &i.to_string())),
                    "after the lag report, the oldest kept messages follow in order"
                );
            }
            chat.publish("late", "news", "still here").unwrap();
            assert_eq!(
                next(&mut slow).await,
                Some(msg("late", "still here")),
                "the member that lagged still gets new messages"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn empty_rooms_and_full_buckets_are_forgotten() {
        for (cap, b, interval) in SETS {
            let mut chat = Chat::new(cap, b, ms(interval));
            let members: Vec<_> = (0..100).map(|i| chat.join(&format!("room{i}"))).collect();
            let kept = chat.join("room7");
            assert_eq!(chat.open_rooms(), 100, "100 rooms opened");
            drop(members);
            chat.sweep();
            assert_eq!(
                chat.open_rooms(),
                1,
                "100 rooms, members only left in room7: expected 1 room after sweep"
            );
            let mut again = chat.join("room3");
            assert_eq!(
                chat.publish("x", "room3", "back"),
                Ok(1),
                "a reopened room works"
            );
            assert_eq!(next(&mut again).await, Some(msg("x", "back")));
            drop(kept);

            // 1000 users post once; "spam" uses up its whole burst.
            let mut chat = Chat::new(cap, b, ms(interval));
            for i in 0..1000 {
                chat.publish(&format!("user{i}"), "r", "hi").unwrap();
            }
            burst(&mut chat, "spam", b);
            advance(ms(interval - 1)).await;
            chat.sweep();
            assert_eq!(
                chat.tracked_users(),
                1001,
                "one per {interval} ms: {} ms after one post, no bucket is full yet; expected all \
                 1001 users kept",
                interval - 1
            );
            advance(ms(1)).await;
            chat.sweep();
            assert_eq!(
                chat.tracked_users(),
                1,
                "one per {interval} ms: at {interval} ms the 1000 single posters have full \
                 buckets again and are forgotten; spam (1 token of {b}) stays"
            );
            assert_eq!(
                burst(&mut chat, "spam", b),
                1,
                "the sweep must not reset a limited user: spam has 1 token, expected 1 of {b}"
            );
            assert_eq!(
                burst(&mut chat, "user5", b + 1),
                b,
                "a forgotten user starts full"
            );
        }
    }
}
