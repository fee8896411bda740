//! A throwaway Redis on a Unix socket only: `redis-server --port 0 --unixsocket DIR/redis.sock
//! --save '' --appendonly no`, in the foreground, as a process group of the runner's. Ready
//! once it answers PING on the socket.
use super::user::{self, Account};
use crate::exec::lifetime::{self, Group};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARIES: [&str; 1] = ["redis-server"];
/// A bound for a server that never comes up, not an expected time.
const READY_BOUND: Duration = Duration::from_secs(10);

pub struct Started {
    pub child: Child,
    pub group: Group,
    pub env: Vec<(String, String)>,
}

pub fn start(bins: &[PathBuf], dir: &Path, account: Option<&Account>) -> Result<Started, String> {
    let sock = dir.join("redis.sock");
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let mut cmd = Command::new(&bins[0]);
    cmd.args(["--port", "0", "--unixsocket"])
        .arg(&sock)
        .args([
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--daemonize", "no", "--dir"])
        .arg(dir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    user::run_as(&mut cmd, account);
    let (mut child, group) =
        lifetime::spawn(&mut cmd).map_err(|e| format!("cannot run redis-server: {e}"))?;
    let deadline = Instant::now() + READY_BOUND;
    loop {
        if ping(&sock) {
            break;
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(match exited {
                Some(status) => format!("redis-server exited ({status}):\n{}", tail.join("\n")),
                None => format!(
                    "redis-server did not answer on {} within {} s:\n{}",
                    sock.display(),
                    READY_BOUND.as_secs(),
                    tail.join("\n")
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(Started {
        child,
        group,
        env: vec![(
            "REDIS_URL".into(),
            format!("redis+unix://{}", sock.display()),
        )],
    })
}

/// Whether a Redis server answers PING on the socket.
fn ping(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}
