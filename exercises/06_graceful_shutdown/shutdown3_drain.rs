// shutdown3_drain: stop accepting, drain, then return
//
// A graceful shutdown has two steps. First stop accepting: close the listener, so that the
// kernel refuses new connections instead of queueing them for a process that will never read
// them. Then drain: wait for every request that is already in flight to finish, whether it is
// answered or its client goes away. Only then may `serve` return.
//
// Why it matters: when an instance stops during a rolling deploy, it still has requests in
// flight. If it exits at once, those users get reset connections and half-done writes. Node's
// `server.close(callback)` does the same two steps: stop listening, call back when the last
// connection ends.
//
// Production caveat: a refused connection does not move to another instance by itself; its
// client just gets an error. In Kubernetes, the SIGTERM and the removal of the pod from the
// Service's endpoints happen at the same time (see "Termination of Pods" in the Pod lifecycle
// docs), so new connections keep arriving for a moment. The usual order is: fail readiness (or
// wait in a preStop hook), keep serving until the load balancer has taken the instance out,
// then stop accepting and drain.
//
// What to do: in `serve`, after the accept loop, close the listener, then wait for every
// connection task in `conns` and count the ones that answered. Note that dropping a `JoinSet`
// aborts the tasks still in it. Run `backlings hint` if you are stuck.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// What the handler needs. `backend` stands in for a slow dependency (a database, a payment
/// API): each request takes one permit from it before it can answer. The tests hand out the
/// permits, so they decide when a request finishes.
pub struct App {
    pub backend: Semaphore,
    /// The handler reports each connection's peer address here as soon as it starts.
    pub accepted: mpsc::UnboundedSender<SocketAddr>,
}

/// Reads one line (a name) and answers `hello <name>`.
async fn handle(mut stream: TcpStream, app: Arc<App>) -> io::Result<()> {
    let _ = app.accepted.send(stream.peer_addr()?);
    let (reader, mut writer) = stream.split();
    let mut line = String::new();
    BufReader::new(reader).read_line(&mut line).await?;
    // No newline: the client went away before the end of its request.
    let Some(name) = line.strip_suffix('\n') else {
        return Err(io::ErrorKind::UnexpectedEof.into());
    };
    // The slow part of the request.
    app.backend
        .acquire()
        .await
        .expect("backend closed")
        .forget();
    writer.write_all(format!("hello {name}\n").as_bytes()).await
}

/// 1 if the connection answered its request, 0 if it failed. `serve` never aborts a task, so
/// a `JoinError` is a panic in the handler: it is re-raised, so that it fails the test.
fn served(res: Result<io::Result<()>, JoinError>) -> usize {
    match res {
        Ok(answered) => usize::from(answered.is_ok()),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Serves connections until `shutdown` is cancelled, then shuts down gracefully.
/// Returns how many requests were answered.
pub async fn serve(listener: TcpListener, shutdown: CancellationToken, app: Arc<App>) -> usize {
    let mut conns = JoinSet::new();
    let mut count = 0;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            // Reap finished connections as we go, so the set does not grow forever.
            Some(res) = conns.join_next() => count += served(res),
            res = listener.accept() => {
                if let Ok((stream, _)) = res {
                    conns.spawn(handle(stream, app.clone()));
                }
            }
        }
    }
    // TODO: stop accepting (close the listener), then drain: wait for every task left in
    // `conns`, adding `served(res)` to `count`. Returning now drops `conns`, which aborts them.
    count
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::task::JoinHandle;
    use tokio::time::timeout;

    // Real time here (sockets): these limits only fire when something is wrong.
    const LIMIT: Duration = Duration::from_secs(2);

    struct Server {
        addr: SocketAddr,
        shutdown: CancellationToken,
        app: Arc<App>,
        accepted: mpsc::UnboundedReceiver<SocketAddr>,
        handle: JoinHandle<usize>,
    }

    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, accepted) = mpsc::unbounded_channel();
        let app = Arc::new(App {
            backend: Semaphore::new(0),
            accepted: tx,
        });
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(serve(listener, shutdown.clone(), app.clone()));
        Server {
            addr,
            shutdown,
            app,
            accepted,
            handle,
        }
    }

    /// Connects and waits until the server's handler for this connection has started.
    async fn connect(server: &mut Server) -> TcpStream {
        let stream = TcpStream::connect(server.addr).await.unwrap();
        let me = stream.local_addr().unwrap();
        let got = timeout(LIMIT, server.accepted.recv())
            .await
            .expect("the server never started a handler for the connection");
        assert_eq!(got, Some(me), "the handler reported another connection");
        stream
    }

    /// Sends `name` and returns the whole answer ("" if the connection was cut).
    fn request(mut stream: TcpStream, name: &str) -> JoinHandle<String> {
        let line = format!("{name}\n");
        tokio::spawn(async move {
            stream.write_all(line.as_bytes()).await.unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer).await;
            answer
        })
    }

    /// A client that sends half a request and goes away: its connection fails.
    async fn go_away(mut stream: TcpStream) {
        stream.write_all(b"hal").await.unwrap();
        drop(stream);
    }

    async fn answer(client: JoinHandle<String>, name: &str) {
        let got = timeout(LIMIT, client)
            .await
            .expect("the client got no answer within 2 s")
            .unwrap();
        assert_eq!(
            got,
            format!("hello {name}\n"),
            "the request from {name} was in flight: it must be answered, not cut off"
        );
    }

    async fn finish(server: Server) -> usize {
        timeout(LIMIT, server.handle)
            .await
            .expect("serve() did not return within 2 s of the last request finishing")
            .unwrap()
    }

    async fn assert_still_draining(server: &Server, what: &str) {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(
            !server.handle.is_finished(),
            "serve() returned while {what} was still in flight: it must drain first"
        );
    }

    #[tokio::test]
    async fn in_flight_requests_are_answered_before_serve_returns() {
        for n in [1, 3] {
            let mut server = start().await;
            let mut clients = Vec::new();
            for i in 0..n {
                let stream = connect(&mut server).await;
                clients.push(request(stream, &format!("c{i}")));
            }
            server.shutdown.cancel();
            assert_still_draining(&server, "every request").await;
            // All but the last request finish: serve() must still wait for that one.
            server.app.backend.add_permits(n - 1);
            assert_still_draining(&server, "a request").await;
            server.app.backend.add_permits(1);
            for (i, client) in clients.into_iter().enumerate() {
                answer(client, &format!("c{i}")).await;
            }
            assert_eq!(
                finish(server).await,
                n,
                "{n} in-flight requests were answered: expected {n}"
            );
        }
    }

    #[tokio::test]
    async fn answered_requests_are_counted_and_failed_ones_are_not() {
        // (answered before the shutdown, failed before it, in flight, failed during the drain)
        for (before, failed_before, during, failed_during) in [(1, 1, 3, 1), (2, 0, 1, 2)] {
            let mut server = start().await;
            server.app.backend.add_permits(before);
            for i in 0..before {
                let stream = connect(&mut server).await;
                answer(request(stream, &format!("early{i}")), &format!("early{i}")).await;
            }
            for _ in 0..failed_before {
                go_away(connect(&mut server).await).await;
            }
            let mut clients = Vec::new();
            for i in 0..during {
                let stream = connect(&mut server).await;
                clients.push(request(stream, &format!("late{i}")));
            }
            let mut leaving = Vec::new();
            for _ in 0..failed_during {
                leaving.push(connect(&mut server).await);
            }
            server.shutdown.cancel();
            // These clients go away while the server drains: their connections fail, and the
            // drain must neither hang on them nor count them.
            for stream in leaving {
                go_away(stream).await;
            }
            server.app.backend.add_permits(during);
            for (i, client) in clients.into_iter().enumerate() {
                answer(client, &format!("late{i}")).await;
            }
            let expected = before + during;
            assert_eq!(
                finish(server).await,
                expected,
                "{before} answered before the shutdown and {during} during the drain; \
                 {failed_before} + {failed_during} clients went away and were not answered: \
                 expected {expected}"
            );
        }
    }

    #[tokio::test]
    async fn new_connections_are_refused_during_the_drain() {
        let mut server = start().await;
        let ada = request(connect(&mut server).await, "ada");
        server.shutdown.cancel();
        let mut refused = false;
        for _ in 0..20 {
            match TcpStream::connect(server.addr).await {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    refused = true;
                    break;
                }
                _ => tokio::task::yield_now().await,
            }
        }
        assert!(
            refused,
            "while draining, new connections must be refused (drop the listener before draining)"
        );
        server.app.backend.add_permits(1);
        answer(ada, "ada").await;
        assert_eq!(
            finish(server).await,
            1,
            "one request was answered: expected 1"
        );
    }
}
