// mutant: drains but keeps the listener open until `serve` returns; new connections during the drain are queued in the backlog instead of refused
// shutdown3_drain: stop accepting, drain, then return
//
// A graceful shutdown has two steps. First stop accepting: close the listener, so that new
// clients are refused at once and go to another instance. Then drain: wait for every request
// that is already in flight to finish. Only then may `serve` return.
//
// Why it matters: during a rolling deploy, the load balancer still has requests on their way to
// the old instance. If it exits at once, those users get reset connections and half-done
// writes. Node's `server.close(callback)` does the same two steps: stop listening, call back
// when the last connection ends.
//
// What to do: in `serve`, after the accept loop, drop the listener, then wait for every
// connection task in `conns` and count the ones that answered. Note that dropping a `JoinSet`
// aborts the tasks still in it. Run `backlings hint` if you are stuck.

use std::io;
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
    /// The handler reports the name in each request here once it has read it.
    pub started: mpsc::UnboundedSender<String>,
}

/// Reads one line (a name) and answers `hello <name>`.
async fn handle(mut stream: TcpStream, app: Arc<App>) -> io::Result<()> {
    let (reader, mut writer) = stream.split();
    let mut line = String::new();
    if BufReader::new(reader).read_line(&mut line).await? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let name = line.trim().to_string();
    let _ = app.started.send(name.clone());
    // The slow part of the request.
    app.backend
        .acquire()
        .await
        .expect("backend closed")
        .forget();
    writer.write_all(format!("hello {name}\n").as_bytes()).await
}

/// 1 if the connection answered its request, 0 if it failed or was aborted.
/// A panic in the handler is re-raised, so that it fails the test.
fn served(res: Result<io::Result<()>, JoinError>) -> usize {
    match res {
        Ok(Ok(())) => 1,
        Ok(Err(_)) => 0,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => 0,
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
    while let Some(res) = conns.join_next().await {
        count += served(res);
    }
    drop(listener);
    count
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
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
        started: mpsc::UnboundedReceiver<String>,
        handle: JoinHandle<usize>,
    }

    async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, started) = mpsc::unbounded_channel();
        let app = Arc::new(App {
            backend: Semaphore::new(0),
            started: tx,
        });
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(serve(listener, shutdown.clone(), app.clone()));
        Server {
            addr,
            shutdown,
            app,
            started,
            handle,
        }
    }

    /// Sends `name` and returns the whole answer ("" if the connection was cut).
    fn client(addr: SocketAddr, name: &str) -> JoinHandle<String> {
        let request = format!("{name}\n");
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer).await;
            answer
        })
    }

    async fn wait_started(server: &mut Server, name: &str) {
        let got = timeout(LIMIT, server.started.recv())
            .await
            .expect("the request never reached the handler");
        assert_eq!(got.as_deref(), Some(name));
    }

    async fn answer(client: JoinHandle<String>) -> String {
        timeout(LIMIT, client)
            .await
            .expect("the client got no answer within 2 s")
            .unwrap()
    }

    async fn finish(server: Server) -> usize {
        timeout(LIMIT, server.handle)
            .await
            .expect("serve() did not return within 2 s of the last request finishing")
            .unwrap()
    }

    #[tokio::test]
    async fn an_in_flight_request_is_answered_before_serve_returns() {
        let mut server = start().await;
        let ada = client(server.addr, "ada");
        wait_started(&mut server, "ada").await;

        server.shutdown.cancel();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !server.handle.is_finished(),
            "serve() returned while a request was still in flight: it must drain first"
        );

        server.app.backend.add_permits(1);
        assert_eq!(
            answer(ada).await,
            "hello ada\n",
            "the in-flight request must be answered, not cut off"
        );
        assert_eq!(
            finish(server).await,
            1,
            "one request was answered: expected 1"
        );
    }

    #[tokio::test]
    async fn every_request_is_counted_and_answered() {
        let mut server = start().await;
        server.app.backend.add_permits(1);
        let early = client(server.addr, "early");
        wait_started(&mut server, "early").await;
        assert_eq!(answer(early).await, "hello early\n");

        let names = ["a", "b", "c"];
        let mut clients = Vec::new();
        for name in names {
            clients.push(client(server.addr, name));
            wait_started(&mut server, name).await;
        }
        server.shutdown.cancel();
        server.app.backend.add_permits(3);
        for (name, c) in names.iter().zip(clients) {
            assert_eq!(
                answer(c).await,
                format!("hello {name}\n"),
                "all 3 in-flight requests must be answered"
            );
        }
        assert_eq!(
            finish(server).await,
            4,
            "1 request before the shutdown and 3 during the drain: expected 4"
        );
    }

    #[tokio::test]
    async fn new_connections_are_refused_during_the_drain() {
        let mut server = start().await;
        let ada = client(server.addr, "ada");
        wait_started(&mut server, "ada").await;

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
        assert_eq!(answer(ada).await, "hello ada\n");
        assert_eq!(
            finish(server).await,
            1,
            "one request was answered: expected 1"
        );
    }
}
