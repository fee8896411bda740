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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{Notify, Semaphore};

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    /// A channel name of its own for each test, unique per process.
    fn channel(test: &str) -> String {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("t:{}:{n}:{test}", std::process::id())
    }

    fn url() -> String {
        std::env::var("REDIS_URL").expect("the runner sets REDIS_URL")
    }

    fn client() -> redis::Client {
        redis::Client::open(url()).expect("a valid REDIS_URL")
    }

    fn socket_path() -> String {
        let url = url();
        let path = url.strip_prefix("redis+unix://");
        path.expect("a redis+unix:// URL").to_owned()
    }

    /// PUBLISH over a blocking socket, so that no task runs meanwhile: the answer is the
    /// number of clients Redis had subscribed to `channel` at that moment.
    fn publish(channel: &str, message: &str) -> i64 {
        let path = socket_path();
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

    /// `held` fires when the proxy holds back an answer to a SUBSCRIBE; `open` lets it through.
    struct Gate {
        held: Notify,
        open: Semaphore,
        path: std::path::PathBuf,
    }

    impl Drop for Gate {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path); // the proxy's socket
        }
    }

    /// A client whose connections go through a proxy of the test's own. On a connection that
    /// sent SUBSCRIBE, the proxy holds back what Redis answers until the gate opens.
    fn proxied() -> (redis::Client, Arc<Gate>) {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("redis3-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let (held, open) = (Notify::new(), Semaphore::new(0));
        let url = format!("redis+unix://{}", path.display());
        let gate = Arc::new(Gate { held, open, path });
        let proxy_gate = Arc::clone(&gate);
        tokio::spawn(async move {
            while let Ok((app, _)) = listener.accept().await {
                let redis = tokio::net::UnixStream::connect(socket_path()).await;
                tokio::spawn(forward(app, redis.unwrap(), Arc::clone(&proxy_gate)));
            }
        });
        (redis::Client::open(url).unwrap(), gate)
    }

    async fn forward(app: tokio::net::UnixStream, redis: tokio::net::UnixStream, gate: Arc<Gate>) {
        let subscribed = &AtomicBool::new(false);
        let ((mut app_rx, mut app_tx), (mut redis_rx, mut redis_tx)) =
            (app.into_split(), redis.into_split());
        let up = async move {
            let mut buf = vec![0; 4096];
            while let Ok(n @ 1..) = app_rx.read(&mut buf).await {
                let lower = buf[..n].to_ascii_lowercase();
                if lower.windows(9).any(|w| w == b"subscribe") {
                    subscribed.store(true, Ordering::SeqCst);
                }
                if redis_tx.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        let down = async move {
            let mut buf = vec![0; 4096];
            while let Ok(n @ 1..) = redis_rx.read(&mut buf).await {
                if subscribed.load(Ordering::SeqCst) {
                    gate.held.notify_one();
                    let _open = gate.open.acquire().await;
                }
                if app_tx.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        tokio::join!(up, down);
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
            let (client, gate) = proxied();
            let mut start = tokio::spawn(Listener::start(client, channel.clone()));
            let first = async {
                tokio::select! {
                    _ = gate.held.notified() => false,
                    _ = &mut start => true,
                }
            };
            let returned_early = tokio::time::timeout(Duration::from_secs(5), first).await;
            let returned_early = returned_early.expect("`start` sends a SUBSCRIBE within 5 s");
            assert!(
                !returned_early,
                "`start` returned before Redis even answered its SUBSCRIBE: a message published \
                 now reaches nobody. Expected `start` to return after the confirmation"
            );
            // Redis answered the SUBSCRIBE, and the proxy holds the confirmation back. With the
            // clock paused, any timer `start` waits on fires at once: only that wait can hold it.
            tokio::time::pause();
            let returned = tokio::time::timeout(Duration::from_secs(3600), &mut start).await;
            tokio::time::resume();
            assert!(
                returned.is_err(),
                "`start` returned while the test held back Redis's confirmation of the \
                 SUBSCRIBE: expected it to wait for the confirmation (`subscribe(..).await`), \
                 not for a guess such as a sleep, a yield or a signal from the task"
            );
            gate.open.add_permits(1);
            let started = tokio::time::timeout(Duration::from_secs(5), start).await;
            let started = started.expect("`start` returns once the confirmation arrives");
            let started = started.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            let mut listener = started.expect("`start` subscribes");
            let reached = publish(&channel, message);
            assert_eq!(reached, 1, "one subscriber on {channel}");
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

    #[tokio::test]
    async fn a_refused_subscribe_is_an_error() {
        // A user allowed every command but no channel: Redis answers SUBSCRIBE with NOPERM.
        let mut admin = client().get_multiplexed_async_connection().await.unwrap();
        let rule: Vec<_> = "SETUSER nochannels on nopass +@all ~* resetchannels"
            .split(' ')
            .collect();
        let acl: redis::RedisResult<()> = redis::cmd("ACL").arg(rule).query_async(&mut admin).await;
        acl.unwrap();
        for name in ["prices", "users"] {
            let url = format!("{}?user=nochannels&pass=any", url());
            let start = Listener::start(redis::Client::open(url).unwrap(), channel(name));
            let result = tokio::time::timeout(Duration::from_secs(5), start).await;
            assert!(
                matches!(result, Ok(Err(_))),
                "Redis refused the SUBSCRIBE (NOPERM): expected `start` to return that error \
                 at once, not a listener that will never receive anything"
            );
        }
    }
}
