// mutant: sets SO_REUSEADDR instead: it does not let two listening sockets share a port on Linux; the second bind fails
// event_loop5_reuseport_cluster: Node's cluster, the Rust way
//
// Node runs one event loop per process, so `cluster` forks several processes that share a
// port. In Rust, one process can run several accept loops on one port: each socket sets
// `SO_REUSEPORT` before `bind`, and the kernel spreads incoming connections between them. (A
// multi-threaded tokio runtime already uses every core; this is how you add isolated accept
// loops, or several processes, for a zero-downtime restart.)
//
// Why it matters: for a zero-downtime deploy, the new version binds the same port while the
// old one still serves; without SO_REUSEPORT the new process gets "address already in use"
// and the deploy fails.
//
// What to do: in `reuseport_listener`, set `SO_REUSEPORT` on the socket before `bind`.
// Run `backlings hint` if you are stuck.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket};

/// A listener on `addr` that other sockets with `SO_REUSEPORT` may share.
pub fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Must be set before bind, on every socket that shares the port.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

/// An accept loop: answers each connection with one line and counts it.
pub async fn serve(listener: TcpListener, name: &'static str, served: Arc<AtomicUsize>) {
    while let Ok((mut conn, _)) = listener.accept().await {
        served.fetch_add(1, Ordering::SeqCst);
        let _ = conn
            .write_all(format!("hello from {name}\n").as_bytes())
            .await;
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpStream;
    use tokio::time::timeout;

    async fn ask(addr: SocketAddr) -> String {
        let conn = TcpStream::connect(addr).await.expect("connect");
        let mut line = String::new();
        BufReader::new(conn)
            .read_line(&mut line)
            .await
            .expect("read");
        line
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_accept_loops_share_one_port() {
        let first = reuseport_listener("127.0.0.1:0".parse().unwrap()).expect("first bind");
        let addr = first.local_addr().unwrap();
        let second = reuseport_listener(addr)
            .expect("a second socket must bind the same port: is SO_REUSEPORT set before bind?");
        let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        tokio::spawn(serve(first, "a", a.clone()));
        tokio::spawn(serve(second, "b", b.clone()));

        let answers = timeout(Duration::from_secs(10), async {
            let mut answers = Vec::new();
            for _ in 0..40 {
                answers.push(ask(addr).await);
            }
            answers
        })
        .await
        .expect("every connection must be answered");
        assert!(
            answers
                .iter()
                .all(|l| l == "hello from a\n" || l == "hello from b\n"),
            "every answer comes from one of the two loops: {answers:?}"
        );
        let total = a.load(Ordering::SeqCst) + b.load(Ordering::SeqCst);
        assert_eq!(total, 40, "expected 40 connections served in total");
    }

    #[tokio::test]
    async fn a_socket_without_reuseport_is_refused() {
        let first = reuseport_listener("127.0.0.1:0".parse().unwrap()).expect("first bind");
        let addr = first.local_addr().unwrap();
        assert!(
            TcpListener::bind(addr).await.is_err(),
            "a plain listener must not be able to take the shared port"
        );
    }
}
