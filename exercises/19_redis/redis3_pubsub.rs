// redis3_pubsub: Redis pub/sub is fire-and-forget, so subscribe before you rely on it
//
// `PUBLISH channel message` delivers the message to the clients subscribed to the channel at
// that moment, and answers how many they were. Nothing is stored: a subscriber that connects
// a millisecond later never sees it. `SUBSCRIBE` answers with a confirmation, and only after
// it is the client in the list. The `redis` crate's `PubSub::subscribe(..).await` returns once
// that confirmation arrived. A listener that subscribes in a background task and returns at
// once hands its caller a race: whatever is published before the task gets to run is lost.
//
// Why it matters: a service started its cache-invalidation listener in a spawned task, then
// warmed its cache. The invalidations published during the warm-up reached nobody, and the
// instance served stale prices until the TTLs ran out.
//
// Production caveat: even a confirmed subscriber loses messages: during a reconnect, and when
// it reads too slowly (Redis drops a subscriber whose output buffer passes
// `client-output-buffer-limit pubsub`: 32 MB, or 8 MB for 60 s). When every message must arrive,
// use Redis Streams (`XADD`, consumer groups with `XREADGROUP` and `XACK`), which store them.
//
// What to do: make `start` return only once the subscription is confirmed, and return its
// error when it fails.
// Run `backlings hint` if you are stuck.

use futures::StreamExt;
use redis::RedisError;
use tokio::sync::mpsc;

/// Receives the messages of one channel, through a background task.
pub struct Listener {
    messages: mpsc::UnboundedReceiver<String>,
}

impl Listener {
    /// Subscribes to `channel`; the messages published from now on arrive through `next`.
    pub async fn start(client: redis::Client, channel: String) -> Result<Listener, RedisError> {
        let (tx, messages) = mpsc::unbounded_channel();
        // TODO: this returns before the task has even connected: a message published right
        // after `start` reaches nobody, and a failed connect or subscribe goes unnoticed.
        // Connect and subscribe before returning; leave only the forwarding to the task.
        tokio::spawn(async move {
            let Ok(mut pubsub) = client.get_async_pubsub().await else {
                return;
            };
            if pubsub.subscribe(&channel).await.is_err() {
                return;
            }
            let mut stream = pubsub.into_on_message();
            while let Some(msg) = stream.next().await {
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                if tx.send(payload).is_err() {
                    break; // the Listener is gone
                }
            }
        });
        Ok(Listener { messages })
    }

    /// The next message, or `None` once the subscription has ended.
    pub async fn next(&mut self) -> Option<String> {
        self.messages.recv().await
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// A channel name of its own for each test, unique per process.
    fn channel(test: &str) -> String {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("t:{}:{n}:{test}", std::process::id())
    }

    fn client() -> redis::Client {
        let url = std::env::var("REDIS_URL").expect("the runner sets REDIS_URL");
        redis::Client::open(url).expect("a valid REDIS_URL")
    }

    /// PUBLISH over a blocking socket: the async runtime cannot run any task meanwhile, so
    /// the answer (how many subscribers got it) shows what `start` had done when it returned.
    fn publish(channel: &str, message: &str) -> i64 {
        let url = std::env::var("REDIS_URL").expect("the runner sets REDIS_URL");
        let path = url
            .strip_prefix("redis+unix://")
            .expect("a redis+unix:// URL");
        let mut s = UnixStream::connect(path).expect("the throwaway Redis accepts a connection");
        let mut req = String::from("*3\r\n$7\r\nPUBLISH\r\n");
        for arg in [channel, message] {
            req += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        line.trim()
            .strip_prefix(':')
            .expect("an integer reply")
            .parse()
            .unwrap()
    }

    async fn next(listener: &mut Listener) -> String {
        tokio::time::timeout(Duration::from_secs(5), listener.next())
            .await
            .expect("a message within 5 s")
            .expect("the subscription is still open")
    }

    #[tokio::test]
    async fn start_returns_only_once_subscribed() {
        for (name, message) in [("prices", "sku-1"), ("users", "user-42")] {
            let channel = channel(name);
            let early = publish(&channel, "early");
            assert_eq!(
                early, 0,
                "nobody is subscribed yet: PUBLISH reaches 0 clients"
            );
            let mut listener = Listener::start(client(), channel.clone()).await.unwrap();
            let reached = publish(&channel, message);
            assert_eq!(
                reached, 1,
                "right after `start` returned, PUBLISH {channel} reached {reached} subscribers: \
                 expected 1. `start` must return only after Redis confirmed the SUBSCRIBE"
            );
            assert_eq!(
                next(&mut listener).await,
                message,
                "the first message is the one published after the subscription; the earlier \
                 one was never stored"
            );
        }
    }

    #[tokio::test]
    async fn messages_of_the_channel_arrive_in_order() {
        for (name, count) in [("orders", 3), ("carts", 5)] {
            let channel = channel(name);
            let other = format!("{channel}:other");
            let mut listener = Listener::start(client(), channel.clone()).await.unwrap();
            for i in 0..count {
                assert_eq!(
                    publish(&other, "not for you"),
                    0,
                    "nobody listens on {other}"
                );
                assert_eq!(
                    publish(&channel, &format!("m{i}")),
                    1,
                    "one subscriber on {channel}"
                );
            }
            for i in 0..count {
                assert_eq!(
                    next(&mut listener).await,
                    format!("m{i}"),
                    "message {i} of {count}, in order"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_failed_subscription_is_an_error() {
        for path in ["/nonexistent/redis.sock", "/nonexistent/other.sock"] {
            let client = redis::Client::open(format!("redis+unix://{path}")).unwrap();
            let result = Listener::start(client, channel("broken")).await;
            assert!(
                result.is_err(),
                "no Redis at {path}: `start` must return the connection error, not a listener \
                 that will never receive anything"
            );
        }
    }
}
