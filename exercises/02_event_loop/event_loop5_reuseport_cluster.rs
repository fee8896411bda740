// event_loop5_reuseport_cluster: several accept loops on one port
//
// Node runs one event loop per process, so it scales across cores with `cluster`: worker
// processes behind one port. By default Node's primary process accepts every connection and
// hands it to a worker in turn (round-robin, on every OS but Windows; Node's `cluster` docs).
// Linux offers another way, `SO_REUSEPORT`: several sockets, each with its own accept queue,
// bind the same port, and the kernel spreads incoming connections between them, with no
// process in the middle. Each socket must set the option before `bind`.
//
// Why it matters: several accept loops (or processes) on one port let a server spread accepts
// over cores, and let a new version of a service bind the port while the old one still runs.
// Without the option the second `bind` fails with "address already in use".
//
// Production caveat: the kernel picks a socket when a connection arrives. Close one listener,
// and the connections already waiting in its accept queue are aborted, unless the
// `net.ipv4.tcp_migrate_req` sysctl (Linux 5.14 and later, off by default) moves them to another
// listener of the group (the kernel's ip-sysctl docs). So a restart that simply closes the old
// listener drops connections.
//
// What to do: in `reuseport_listener`, set `SO_REUSEPORT` on the socket before `bind`.
// Run `backlings hint` if you are stuck.

use std::io;
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket};

/// A listener on `addr` that other sockets with `SO_REUSEPORT` may share.
pub fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // TODO: let other sockets bind this port too: set SO_REUSEPORT (before `bind`).
    socket.bind(addr)?;
    socket.listen(128)
}

/// An accept loop: answers each connection with one line that names this loop.
pub async fn serve(listener: TcpListener, name: &'static str) {
    while let Ok((mut conn, _)) = listener.accept().await {
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
    use std::collections::BTreeMap;
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpStream;
    use tokio::time::timeout;

    const NAMES: [&str; 3] = ["a", "b", "c"];

    async fn ask(addr: SocketAddr) -> String {
        let conn = TcpStream::connect(addr).await.expect("connect");
        let mut line = String::new();
        BufReader::new(conn)
            .read_line(&mut line)
            .await
            .expect("read");
        line
    }

    /// `loops` accept loops on one port; asks `conns` times, one connection after the other.
    /// Returns how many answers came from each loop.
    async fn share(loops: usize, conns: usize) -> BTreeMap<String, usize> {
        let first = reuseport_listener("127.0.0.1:0".parse().unwrap()).expect("first bind");
        let addr = first.local_addr().unwrap();
        tokio::spawn(serve(first, NAMES[0]));
        for name in &NAMES[1..loops] {
            let next = reuseport_listener(addr)
                .expect("another socket must bind the same port: is SO_REUSEPORT set before bind?");
            assert_eq!(
                next.local_addr().unwrap(),
                addr,
                "expected the same address"
            );
            tokio::spawn(serve(next, name));
        }
        // A guard against a hang only: a correct answer takes milliseconds.
        let answers = timeout(Duration::from_secs(5), async {
            let mut answers = BTreeMap::new();
            for _ in 0..conns {
                *answers.entry(ask(addr).await).or_insert(0) += 1;
            }
            answers
        });
        answers.await.expect("every connection must be answered")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_accept_loop_gets_connections() {
        for (loops, conns) in [(2, 40), (3, 60)] {
            let answers = share(loops, conns).await;
            let expected: Vec<String> = NAMES[..loops]
                .iter()
                .map(|n| format!("hello from {n}\n"))
                .collect();
            assert_eq!(
                answers.keys().cloned().collect::<Vec<_>>(),
                expected,
                "{conns} connections over {loops} loops: expected answers from every loop \
                 (a loop that gets none in {conns} has a chance below 1e-9), got {answers:?}"
            );
            assert_eq!(
                answers.values().sum::<usize>(),
                conns,
                "expected {conns} answers in all"
            );
        }
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
