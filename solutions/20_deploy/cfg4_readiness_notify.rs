// cfg4_readiness_notify: say "ready" only when a client can connect
//
// A supervisor has to know when a service is up: systemd starts the units that depend on it,
// a load balancer starts sending it traffic. "The process is running" is not it: the service
// may still be loading its config or binding its port. With systemd's `Type=notify`, the
// service tells it, through sd_notify(3)'s protocol: datagrams of newline-separated
// assignments sent to the Unix socket named by the `NOTIFY_SOCKET` variable. `READY=1`
// means "connect now and it works", so it goes out after `bind`, never before, with a
// `STATUS=` line saying where. `STOPPING=1` goes out as soon as shutdown starts, before the
// drain, so that the manager knows (and shows) that the service is on its way out, not hung.
// Without `NOTIFY_SOCKET` (not started by systemd), notifying does nothing, without error.
// `run` talks through the `Notify` trait: `Notifier` in production, a fake in the tests.
//
// Why it matters: a service sent READY before its slow bind; the health checker that waited
// for it connected at once, got "connection refused" and restarted it, again and again.
//
// Production caveat: with `Type=notify`, systemd implicitly uses `NotifyAccess=main`: only
// messages from the main process count. Start the binary from a shell script without `exec`
// and the script is the main process: the READY is ignored and the start times out.
//
// What to do: fix the order in `run`: READY (with the address) once the listener is bound,
// STOPPING as soon as `shutdown` fires. Run `backlings hint` if you are stuck.

use std::io;
use std::path::PathBuf;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixDatagram};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The service manager's end: `state` is newline-separated assignments, sent as one message.
pub trait Notify: Send + Sync {
    fn notify(&self, state: &str) -> impl Future<Output = io::Result<()>> + Send;
}

/// sd_notify: talks to the service manager, if there is one. (A `NOTIFY_SOCKET` that starts
/// with `@` names a Linux abstract socket: sd_notify(3) supports it, this sketch does not.)
pub struct Notifier {
    socket: Option<PathBuf>,
}

impl Notifier {
    pub fn from_env(env: &impl Fn(&str) -> Option<String>) -> Notifier {
        Notifier {
            socket: env("NOTIFY_SOCKET").map(PathBuf::from),
        }
    }
}

impl Notify for Notifier {
    /// Sends `state` as one datagram. Without a socket, it does nothing.
    async fn notify(&self, state: &str) -> io::Result<()> {
        let Some(path) = &self.socket else {
            return Ok(());
        };
        let socket = UnixDatagram::unbound()?;
        socket.send_to(state.as_bytes(), path).await?;
        Ok(())
    }
}

/// One request per connection: a line in, `echo <line>` out.
async fn handle(stream: TcpStream) -> io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    stream
        .get_mut()
        .write_all(format!("echo {line}").as_bytes())
        .await
}

/// Serves on 127.0.0.1 (any free port) until `shutdown`, then drains the open connections.
pub async fn run(notifier: impl Notify, shutdown: CancellationToken) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // Ready means "connect now": only once the listener exists, and say where.
    notifier
        .notify(&format!("READY=1\nSTATUS=listening on {addr}"))
        .await?;
    let conns = TaskTracker::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                conns.spawn(handle(stream));
            }
        }
    }
    // Stopping starts now: tell the supervisor before the drain, not after it.
    notifier.notify("STOPPING=1").await?;
    drop(listener);
    conns.close();
    conns.wait().await;
    Ok(())
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::time::timeout;

    /// The supervisor's end: a datagram socket bound in the temp dir, removed when dropped.
    struct Supervisor {
        socket: UnixDatagram,
        path: PathBuf,
    }

    impl Supervisor {
        fn new() -> Supervisor {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let path = std::env::temp_dir().join(format!("cfg4-{}-{n}.sock", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let socket = UnixDatagram::bind(&path).unwrap();
            Supervisor { socket, path }
        }

        fn notifier(&self) -> Notifier {
            let map = HashMap::from([(
                "NOTIFY_SOCKET".to_string(),
                self.path.to_str().unwrap().to_string(),
            )]);
            Notifier::from_env(&move |k: &str| map.get(k).cloned())
        }

        /// The next datagram, as its assignments (name → value).
        async fn next(&self, expected: &str) -> HashMap<String, String> {
            let mut buf = [0u8; 1024];
            let n = timeout(Duration::from_secs(3), self.socket.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("expected a datagram with {expected} within 3 s"))
                .unwrap();
            let text = std::str::from_utf8(&buf[..n]).unwrap();
            text.lines()
                .map(|l| {
                    let (k, v) = l.split_once('=').expect("each line is NAME=value");
                    (k.to_string(), v.to_string())
                })
                .collect()
        }

        /// Reads READY and returns the address from its STATUS line.
        async fn ready(&self) -> SocketAddr {
            let msg = self.next("READY=1").await;
            assert_eq!(
                msg.get("READY").map(String::as_str),
                Some("1"),
                "first: READY=1, got {msg:?}"
            );
            let status = msg.get("STATUS").unwrap_or_else(|| {
                panic!(
                    "READY=1 comes once the listener is bound, in one datagram with \
                     \"STATUS=listening on <addr>\"; got {msg:?}"
                )
            });
            status
                .strip_prefix("listening on ")
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("expected STATUS=listening on <ip:port>, got {status:?}"))
        }

        fn nothing_more(&self, when: &str) {
            let mut buf = [0u8; 1024];
            let res = self.socket.try_recv(&mut buf);
            assert!(
                res.is_err(),
                "no datagram expected {when}, got {:?}",
                res.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
            );
        }
    }

    impl Drop for Supervisor {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    async fn ask(stream: &mut TcpStream, line: &str) -> String {
        stream
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        timeout(Duration::from_secs(3), stream.read_to_string(&mut answer))
            .await
            .expect("an answer within 3 s")
            .unwrap();
        answer
    }

    #[tokio::test]
    async fn ready_means_the_reported_port_accepts_connections() {
        let (one, two) = (Supervisor::new(), Supervisor::new());
        let (stop1, stop2) = (CancellationToken::new(), CancellationToken::new());
        let server1 = tokio::spawn(run(one.notifier(), stop1.clone()));
        let server2 = tokio::spawn(run(two.notifier(), stop2.clone()));
        let mut addrs = Vec::new();
        for (sup, word) in [(&one, "ping"), (&two, "pong")] {
            let addr = sup.ready().await;
            // Right after READY, with nothing in between.
            let mut conn = TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("READY said {addr}, but connecting failed: {e}"));
            assert_eq!(ask(&mut conn, word).await, format!("echo {word}\n"));
            addrs.push(addr);
        }
        one.nothing_more("before shutdown");
        two.nothing_more("before shutdown");
        assert_ne!(
            addrs[0], addrs[1],
            "two servers, two ports, each on its own socket"
        );
        for (sup, stop, server) in [(&one, stop1, server1), (&two, stop2, server2)] {
            stop.cancel();
            let msg = sup.next("STOPPING=1").await;
            assert_eq!(
                msg.get("STOPPING").map(String::as_str),
                Some("1"),
                "got {msg:?}"
            );
            timeout(Duration::from_secs(3), server)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            sup.nothing_more("after STOPPING=1");
        }
    }

    /// A fake manager that records each message. On READY=1 it connects to the STATUS address
    /// at once, inside `notify`: `run` cannot take another step (such as a late `bind`) first.
    #[derive(Clone, Default)]
    struct Probe(Arc<Mutex<Vec<String>>>);

    impl Notify for Probe {
        async fn notify(&self, state: &str) -> io::Result<()> {
            let mut seen = state.to_string();
            if state.lines().any(|l| l == "READY=1") {
                let addr = state
                    .lines()
                    .find_map(|l| l.strip_prefix("STATUS=listening on "))
                    .and_then(|a| a.parse::<SocketAddr>().ok());
                let ok = addr.is_some_and(|a| std::net::TcpStream::connect(a).is_ok());
                seen += if ok {
                    " (connected)"
                } else {
                    " (no connection)"
                };
            }
            self.0.lock().unwrap().push(seen);
            Ok(())
        }
    }

    #[tokio::test]
    async fn ready_is_sent_only_once_the_port_accepts() {
        for stop_early in [true, false] {
            let probe = Probe::default();
            let stop = CancellationToken::new();
            if stop_early {
                stop.cancel();
            }
            let server = tokio::spawn(run(probe.clone(), stop.clone()));
            timeout(Duration::from_secs(3), async {
                while probe.0.lock().unwrap().is_empty() {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .expect("READY=1 within 3 s");
            stop.cancel();
            timeout(Duration::from_secs(3), server)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let seen = probe.0.lock().unwrap().clone();
            assert!(
                seen.len() == 2 && seen[0].ends_with("(connected)") && seen[1] == "STOPPING=1",
                "expected READY=1 with STATUS=listening on <addr>, where a connect made right \
                 then succeeds, then STOPPING=1; got {seen:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_is_sent_when_shutdown_starts_not_after_the_drain() {
        let sup = Supervisor::new();
        let stop = CancellationToken::new();
        let mut server = tokio::spawn(run(sup.notifier(), stop.clone()));
        let addr = sup.ready().await;
        // `slow` connects first and says nothing yet; once `quick` is answered, `slow` has
        // been accepted too: it is a request in flight.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        let mut quick = TcpStream::connect(addr).await.unwrap();
        assert_eq!(ask(&mut quick, "quick").await, "echo quick\n");
        sup.nothing_more("before shutdown");

        stop.cancel();
        let msg = sup
            .next("STOPPING=1 while a request is still in flight")
            .await;
        assert_eq!(
            msg.get("STOPPING").map(String::as_str),
            Some("1"),
            "got {msg:?}"
        );
        assert!(
            timeout(Duration::from_secs(3600), &mut server)
                .await
                .is_err(),
            "run returned before the in-flight request was done (an hour, paused clock)"
        );
        assert_eq!(
            ask(&mut slow, "slow").await,
            "echo slow\n",
            "the request in flight when shutdown started is still answered (drain)"
        );
        timeout(Duration::from_secs(3), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        sup.nothing_more("after STOPPING=1");
    }

    #[tokio::test]
    async fn without_notify_socket_notifying_does_nothing() {
        let none = |_: &str| None;
        let notifier = Notifier::from_env(&none);
        let notifier2 = Notifier::from_env(&none);
        assert!(
            notifier.notify("READY=1").await.is_ok(),
            "no NOTIFY_SOCKET: not started by systemd, notify is a no-op, not an error"
        );
        let stop = CancellationToken::new();
        stop.cancel();
        let res = timeout(Duration::from_secs(3), run(notifier2, stop))
            .await
            .unwrap();
        assert!(
            res.is_ok(),
            "run without NOTIFY_SOCKET: expected Ok, got {res:?}"
        );
    }
}
