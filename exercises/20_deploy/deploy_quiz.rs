// deploy_quiz: from start to exit code, in the order a supervisor can trust
//
// Everything of this topic, in one startup sequence:
// 1. Config from the environment, every bad variable reported at once, the API key from
//    `API_KEY_FILE` (owner-only) or `API_KEY`. A bad config is not a crash: log one JSON error
//    line per bad variable and exit with 78, `EX_CONFIG` from sysexits.h, which tells the
//    operator "fix the config, restarting will not help". Nothing is bound, no READY is sent.
// 2. The JSON logger, with the filter from the config, scoped to the service (no global).
// 3. Bind; a port already in use is a runtime failure: log it and exit with 1, no READY.
// 4. READY=1 (with `STATUS=listening on <addr>`) once bound, then serve until cancelled.
// 5. STOPPING=1 as soon as shutdown starts, then drain the requests in flight, and exit 0.
//
// Why it matters: systemd restarted a service that exited 101 (a panic on a missing variable)
// forty times in a minute. With 78, `RestartPreventExitStatus=78` stops the loop, and one
// clear log line per variable tells the operator what to fix.
//
// Production caveat: in a container the service usually runs as PID 1, and Linux ignores
// signals whose action is the default for PID 1: without a SIGTERM handler, `docker stop`
// waits its grace period (10 s by default) and sends SIGKILL, which no drain survives.
// Handle SIGTERM (it cancels `shutdown` here) or run under an init such as `docker run --init`.
//
// What to do: write `run` and `serve`, following the steps above; the helpers are done (`run`
// notifies through `Notify`: `SdNotify` in production, a fake manager in the tests).
// Run `backlings hint` if you are stuck.

use std::os::unix::fs::PermissionsExt;
use std::{fmt, io, io::Read, net::SocketAddr, path::PathBuf, sync::Arc};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixDatagram};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::instrument::WithSubscriber;
use tracing::{Subscriber, error, info, warn};
use tracing_subscriber::{EnvFilter, filter::ParseError, fmt::MakeWriter};

pub const EX_CONFIG: u8 = 78;

pub struct Secret<T>(T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub log_filter: String,
    pub api_key: Secret<String>,
}

/// One bad variable: its name and what is wrong (never its secret value).
#[derive(Debug)]
pub struct BadVar(pub &'static str, pub String);

/// Reads LISTEN_ADDR (default 0.0.0.0:8080), LOG_FILTER (default "info"), API_KEY_FILE or
/// API_KEY (required), and reports every bad variable.
pub fn load(env: &impl Fn(&str) -> Option<String>) -> Result<Config, Vec<BadVar>> {
    let mut bad = Vec::new();
    let listen = env("LISTEN_ADDR").unwrap_or_else(|| "0.0.0.0:8080".into());
    let listen = listen
        .parse()
        .map_err(|e| bad.push(BadVar("LISTEN_ADDR", format!("{listen:?}: {e}"))));
    let log_filter = env("LOG_FILTER").unwrap_or_else(|| "info".into());
    if let Err(e) = EnvFilter::try_new(&log_filter) {
        bad.push(BadVar("LOG_FILTER", format!("{log_filter:?}: {e}")));
    }
    let api_key = match (env("API_KEY_FILE"), env("API_KEY")) {
        (Some(path), _) => read_secret_file(&path).map_err(|e| bad.push(BadVar("API_KEY_FILE", e))),
        (None, Some(key)) => Ok(Secret(key)),
        (None, None) => {
            bad.push(BadVar("API_KEY", "required".into()));
            Err(())
        }
    };
    match (listen, api_key) {
        (Ok(listen), Ok(api_key)) if bad.is_empty() => Ok(Config {
            listen,
            log_filter,
            api_key,
        }),
        _ => Err(bad),
    }
}

/// cfg2's check: the mode of the file opened (it follows symlinks), then its content.
fn read_secret_file(path: &str) -> Result<Secret<String>, String> {
    let err = |e: io::Error| format!("{path}: {e}");
    let mut file = std::fs::File::open(path).map_err(err)?;
    let mode = file.metadata().map_err(err)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!("{path} has mode {mode:o}: chmod 600 it"));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(err)?;
    Ok(Secret(text.strip_suffix('\n').unwrap_or(&text).to_string()))
}

/// cfg3's logger. A bad filter is an error, never a silent fallback.
pub fn json_logger<W>(
    filter: &str,
    w: W,
) -> Result<impl Subscriber + Send + Sync + use<W>, ParseError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt().json().flatten_event(true);
    let filter = EnvFilter::try_new(filter)?;
    Ok(fmt.with_env_filter(filter).with_writer(w).finish())
}

/// The service manager's end: `state` is newline-separated assignments, sent as one message.
pub trait Notify: Send + Sync {
    fn notify(&self, state: &str) -> impl Future<Output = ()> + Send;
}

/// sd_notify: one datagram to the socket named by NOTIFY_SOCKET (`main` reads it), if any.
pub struct SdNotify(pub Option<PathBuf>);

impl Notify for SdNotify {
    async fn notify(&self, state: &str) {
        let Some(path) = &self.0 else { return };
        let socket = UnixDatagram::unbound();
        if let Err(e) = async { socket?.send_to(state.as_bytes(), path).await }.await {
            warn!(error = %e, state, "sd_notify failed");
        }
    }
}

/// One request per connection: `<api key> <word>` in, `echo <word>` (or `denied`) out.
async fn handle(stream: TcpStream, key: Arc<Secret<String>>) -> io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let (given, word) = line.trim_end().split_once(' ').unwrap_or_default();
    let authorized = given == key.0;
    info!(authorized, "request");
    let answer = match authorized {
        true => format!("echo {word}\n"),
        false => "denied\n".into(),
    };
    stream.get_mut().write_all(answer.as_bytes()).await
}

/// Runs the service until `shutdown` and returns the process's exit code.
pub async fn run<W>(
    env: impl Fn(&str) -> Option<String>,
    log: W,
    notifier: impl Notify,
    shutdown: CancellationToken,
) -> u8
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // TODO: step 1, then step 2: `load` the config; on errors, log one `error!` line per bad
    // variable (fields `var` and `reason`, message "bad config") with a logger on the default
    // filter and return EX_CONFIG. Otherwise build the logger from the config's filter and run
    // `serve` under it (`WithSubscriber`).
    todo!()
}

async fn serve(config: Config, notifier: impl Notify, shutdown: CancellationToken) -> u8 {
    // TODO: steps 3 to 5. Log "config loaded" (field `config`: `?config`) first, "listening"
    // (field `addr`) just before READY, "shutting down" just before STOPPING, and "stopped" at
    // the end (or "bind failed", then exit 1). Spawned tasks log through the same logger.
    todo!()
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::sync::mpsc;
    use tokio::time::timeout;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Capture {
        type Writer = Capture;
        fn make_writer(&'w self) -> Capture {
            self.clone()
        }
    }

    impl Capture {
        fn raw(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
        fn lines(&self) -> Vec<Value> {
            self.raw()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
                .collect()
        }
        fn messages(&self) -> Vec<String> {
            let msg = |l: &Value| l["message"].as_str().unwrap_or("?").to_string();
            self.lines().iter().map(msg).collect()
        }
    }

    /// One message to the manager, with the log's messages when it was sent, and for READY=1
    /// the connection the manager opened to the STATUS address right then (if it could).
    struct Sent {
        state: String,
        log: Vec<String>,
        conn: Option<std::net::TcpStream>,
    }

    /// A fake service manager. It acts inside `notify`, before `run` takes another step.
    struct Manager(Capture, mpsc::UnboundedSender<Sent>);

    impl Notify for Manager {
        async fn notify(&self, state: &str) {
            let addr = state.strip_prefix("READY=1\nSTATUS=listening on ");
            let addr = addr.and_then(|a| a.parse::<SocketAddr>().ok());
            let conn = addr.and_then(|a| std::net::TcpStream::connect(a).ok());
            let (state, log) = (state.to_string(), self.0.messages());
            let _ = self.1.send(Sent { state, log, conn });
        }
    }

    type Inbox = mpsc::UnboundedReceiver<Sent>;

    fn manager(log: &Capture) -> (Manager, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Manager(log.clone(), tx), rx)
    }

    async fn next(inbox: &mut Inbox, expected: &str) -> Sent {
        let got = timeout(Duration::from_secs(3), inbox.recv()).await;
        got.ok()
            .flatten()
            .unwrap_or_else(|| panic!("expected {expected} within 3 s"))
    }

    fn nothing_sent(inbox: &mut Inbox) {
        let got = inbox.try_recv().map(|s| s.state);
        assert!(got.is_err(), "no (further) notification expected: {got:?}");
    }

    static N: AtomicUsize = AtomicUsize::new(0);

    /// A unique path in the temp dir (a key file or a socket), removed when dropped.
    struct Temp(PathBuf);

    impl Temp {
        fn new(kind: &str) -> Temp {
            let n = N.fetch_add(1, Ordering::SeqCst);
            let name = format!("deploy-quiz-{}-{n}.{kind}", std::process::id());
            let path = std::env::temp_dir().join(name);
            let _ = std::fs::remove_file(&path);
            Temp(path)
        }
        fn key_file(content: &str, mode: u32) -> Temp {
            let t = Temp::new("key");
            std::fs::write(&t.0, content).unwrap();
            std::fs::set_permissions(&t.0, std::fs::Permissions::from_mode(mode)).unwrap();
            t
        }
        fn path(&self) -> String {
            self.0.to_str().unwrap().to_string()
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        move |k| map.get(k).cloned()
    }

    async fn ask(addr: SocketAddr, line: &str) -> String {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        let read = conn.read_to_string(&mut answer);
        timeout(Duration::from_secs(3), read)
            .await
            .expect("an answer within 3 s")
            .unwrap();
        answer
    }

    /// The full life of the service with the API key `key` read from `key_env`.
    async fn full_run(key: &str, key_env: (&str, String)) {
        let (log, stop) = (Capture::default(), CancellationToken::new());
        let (manager, mut inbox) = manager(&log);
        let vars = [("LISTEN_ADDR", "127.0.0.1:0".into()), key_env];
        let mut service = tokio::spawn(run(env(&vars), log.clone(), manager, stop.clone()));

        let ready = next(&mut inbox, "READY=1").await;
        let addr: SocketAddr = ready
            .state
            .strip_prefix("READY=1\nSTATUS=listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "expected \"READY=1\\nSTATUS=listening on <addr>\", got {:?}",
                    ready.state
                )
            });
        // The manager's connection, made as READY=1 was sent: it becomes a request in flight.
        let slow = ready.conn.unwrap_or_else(|| {
            panic!("READY=1 said {addr}, but connecting right then failed: bind, then READY")
        });
        slow.set_nonblocking(true).unwrap();
        let mut slow = TcpStream::from_std(slow).unwrap();
        assert_eq!(
            ready.log,
            ["config loaded", "listening"],
            "the log when READY=1 is sent"
        );
        assert_eq!(
            log.lines()[1]["addr"],
            addr.to_string(),
            "the listening line's addr field"
        );
        // An event from outside the service, while the service runs on this thread.
        tracing::info!("not the service");
        assert_eq!(
            log.messages().len(),
            2,
            "an event from outside the service reached its log: scope the logger to the \
             service's future (`with_subscriber`), not to the thread (`set_default`)"
        );
        assert_eq!(
            ask(addr, &format!("{key} hi")).await,
            "echo hi\n",
            "the right key"
        );
        assert_eq!(ask(addr, "guess hi").await, "denied\n", "a wrong key");
        assert_eq!(ask(addr, &format!("{key} quick")).await, "echo quick\n");
        nothing_sent(&mut inbox);
        stop.cancel();
        let stopping = next(&mut inbox, "STOPPING=1").await;
        assert_eq!(stopping.state, "STOPPING=1");
        assert_eq!(
            stopping.log.last().map(String::as_str),
            Some("shutting down"),
            "the log when STOPPING=1 is sent: \"shutting down\" is its last line"
        );
        assert!(
            timeout(Duration::from_secs(3600), &mut service)
                .await
                .is_err(),
            "the service must drain before it exits: with a request in flight, it still runs \
             an hour later (paused clock)"
        );
        slow.write_all(format!("{key} late\n").as_bytes())
            .await
            .unwrap();
        let code = timeout(Duration::from_secs(3), service)
            .await
            .expect("exit within 3 s");
        assert_eq!(code.unwrap(), 0, "a clean shutdown exits with 0");
        let mut answer = String::new();
        slow.read_to_string(&mut answer).await.unwrap();
        assert_eq!(answer, "echo late\n", "the request in flight is answered");

        let expected = [
            "config loaded",
            "listening",
            "request",
            "request",
            "request",
            "shutting down",
            "request",
            "stopped",
        ];
        assert_eq!(log.messages(), expected, "the whole event sequence");
        let authorized: Vec<_> = log
            .lines()
            .iter()
            .map(|l| l["authorized"].clone())
            .collect();
        assert_eq!(
            authorized[2..5],
            [true, false, true],
            "each request logs `authorized`"
        );
        let raw = log.raw();
        assert!(
            !raw.contains(key) && raw.contains("[redacted]"),
            "the key never logged: {raw}"
        );
        nothing_sent(&mut inbox);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clean_run_readies_serves_stops_drains_and_exits_0() {
        let file = Temp::key_file("k-file-1\n", 0o600);
        full_run("k-file-1", ("API_KEY_FILE", file.path())).await;
        full_run("k-env-2", ("API_KEY", "k-env-2".into())).await;
    }

    async fn exit_code(vars: &[(&str, String)]) -> (u8, Capture) {
        let log = Capture::default();
        let (manager, mut inbox) = manager(&log);
        let service = run(env(vars), log.clone(), manager, CancellationToken::new());
        let code = timeout(Duration::from_secs(3), service)
            .await
            .expect("exits at once");
        nothing_sent(&mut inbox);
        (code, log)
    }

    fn errors(log: &Capture) -> Vec<(String, String)> {
        let field = |l: &Value, k: &str| l[k].as_str().unwrap_or("?").to_string();
        log.lines()
            .iter()
            .map(|l| (field(l, "level"), field(l, "var")))
            .collect()
    }

    #[tokio::test]
    async fn a_bad_config_exits_78_with_every_error_and_no_ready() {
        let vars = [
            ("LISTEN_ADDR", "localhost:80".into()),
            ("LOG_FILTER", "info,db=loud".into()),
        ];
        let (code, log) = exit_code(&vars).await;
        assert_eq!(
            code, EX_CONFIG,
            "bad config: expected exit code 78 (EX_CONFIG)"
        );
        let e = |v: &str| ("ERROR".to_string(), v.to_string());
        let want = [e("LISTEN_ADDR"), e("LOG_FILTER"), e("API_KEY")];
        assert_eq!(
            errors(&log),
            want,
            "one ERROR line per bad variable, in order"
        );

        let file = Temp::key_file("topsecret\n", 0o644);
        let vars = [
            ("API_KEY_FILE", file.path()),
            ("LOG_FILTER", "error".into()),
        ];
        let (code, log) = exit_code(&vars).await;
        assert_eq!(
            code, EX_CONFIG,
            "a key file readable by others: expected exit code 78"
        );
        assert_eq!(
            errors(&log),
            [e("API_KEY_FILE")],
            "the file's variable is named"
        );
        let raw = log.raw();
        assert!(
            raw.contains("644") && !raw.contains("topsecret"),
            "the mode, not the key: {raw}"
        );

        let vars = [
            ("API_KEY", "k".into()),
            ("LOG_FILTER", "debug,db=loud".into()),
        ];
        let (code, log) = exit_code(&vars).await;
        assert_eq!(
            code, EX_CONFIG,
            "LOG_FILTER=debug,db=loud alone: expected exit code 78"
        );
        assert_eq!(
            errors(&log),
            [e("LOG_FILTER")],
            "an invalid filter is a config error"
        );

        let (code, log) = exit_code(&[("LOG_FILTER", "off".into())]).await;
        assert_eq!(code, EX_CONFIG, "no API key: expected exit code 78");
        assert_eq!(
            errors(&log),
            [e("API_KEY")],
            "LOG_FILTER=off belongs to a config that failed: the errors use the default filter"
        );
    }

    #[tokio::test]
    async fn a_port_in_use_exits_1_without_ready() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let vars = [
            ("LISTEN_ADDR", taken.local_addr().unwrap().to_string()),
            ("API_KEY", "k".into()),
            ("LOG_FILTER", "warn".into()),
        ];
        let (code, log) = exit_code(&vars).await;
        assert_eq!(
            code, 1,
            "bind failed: a runtime failure, exit code 1 (not 0, not 78)"
        );
        assert_eq!(
            log.messages(),
            ["bind failed"],
            "one error line, nothing at info (filter warn)"
        );
    }

    #[tokio::test]
    async fn sd_notify_sends_one_datagram_to_notify_socket() {
        let sock = Temp::new("sock");
        let manager = UnixDatagram::bind(&sock.0).unwrap();
        for state in ["READY=1\nSTATUS=listening on 127.0.0.1:9", "STOPPING=1"] {
            SdNotify(Some(sock.0.clone())).notify(state).await;
            let mut buf = [0u8; 512];
            let n = timeout(Duration::from_secs(3), manager.recv(&mut buf))
                .await
                .expect("a datagram within 3 s")
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&buf[..n]), state, "one datagram");
        }
        SdNotify(None).notify("READY=1").await;
    }
}
