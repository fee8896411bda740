//! Running a child under the runner's control: its own process group, registered with
//! `lifetime` (so a time-out, a cancel, a signal or the runner's exit kills every descendant,
//! including those that left the group), a time limit, a memory limit and capped output.
use super::lifetime::{self, Group, Run};
use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// How much output is kept from each end of a stream; the middle is counted and dropped.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// A handle that stops a running build or test, from another thread.
#[derive(Clone, Default)]
pub struct Cancel(Arc<CancelInner>);

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    run: Mutex<Option<Run>>,
}

impl Cancel {
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        if let Some(run) = &*self.0.run.lock().unwrap() {
            run.kill();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    fn attach(&self, run: &Run) {
        let mut slot = self.0.run.lock().unwrap();
        *slot = Some(run.clone());
        // A cancel that raced the spawn must still take effect.
        if self.is_cancelled() {
            run.kill();
        }
    }

    /// Called before the leader is reaped: after that its group id may belong to others.
    fn detach(&self) {
        *self.0.run.lock().unwrap() = None;
    }
}

/// A child that leads its own registered process group.
pub struct Running {
    pub child: Child,
    group: Group,
}

impl Running {
    /// Waits for the leader to exit, kills whatever it left behind (its group, and what left
    /// the group), and only then reaps it.
    pub fn finish(mut self, cancel: &Cancel) -> io::Result<ExitStatus> {
        wait_exited(self.child.id() as i32)?;
        cancel.detach();
        self.group.run().kill();
        self.child.wait()
    }
}

/// Spawns `cmd` as the leader of a new process group owned by `lifetime`, and tells `cancel`.
pub fn spawn_in_group(cmd: &mut Command, cancel: &Cancel) -> io::Result<Running> {
    let (child, group) = lifetime::spawn(cmd)?;
    cancel.attach(group.run());
    Ok(Running { child, group })
}

/// Blocks until the child `pid` has exited, without reaping it (`WNOWAIT`): while the zombie
/// leader exists, its process group id cannot be reused, so killing the group stays safe.
fn wait_exited(pid: i32) -> io::Result<()> {
    loop {
        // SAFETY: waitid(2) fills a siginfo_t we own; WNOWAIT leaves the child unreaped.
        let r = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Limits the address space of the process `cmd` starts (and of its descendants) to `mib`.
/// An allocation past it fails, and Rust's allocation-error handler aborts the process.
pub fn limit_memory(cmd: &mut Command, mib: u64) {
    let bytes = mib.saturating_mul(1024 * 1024) as libc::rlim_t;
    // SAFETY: setrlimit(2) is async-signal-safe and touches only the new process.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Keeps the first and last `cap` bytes of a stream and counts what lies between.
#[derive(Debug, Default)]
pub struct Capped {
    cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    omitted: u64,
}

impl Capped {
    pub fn new(cap: usize) -> Self {
        Capped {
            cap,
            ..Default::default()
        }
    }

    pub fn push(&mut self, mut data: &[u8]) {
        let room = self.cap.saturating_sub(self.head.len());
        let take = room.min(data.len());
        self.head.extend_from_slice(&data[..take]);
        data = &data[take..];
        if data.len() >= self.cap {
            self.omitted += (self.tail.len() + data.len() - self.cap) as u64;
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.cap..]);
            return;
        }
        self.tail.extend(data);
        let over = self.tail.len().saturating_sub(self.cap);
        if over > 0 {
            self.tail.drain(..over);
            self.omitted += over as u64;
        }
    }

    pub fn omitted(&self) -> u64 {
        self.omitted
    }

    /// The kept text, with a line where bytes were left out.
    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.head).into_owned();
        if self.omitted > 0 {
            s.push_str(&format!(
                "\n[... {} bytes of output omitted ...]\n",
                self.omitted
            ));
        }
        let (a, b) = self.tail.as_slices();
        s.push_str(&String::from_utf8_lossy(&[a, b].concat()));
        s
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
    Cancelled,
}

pub struct Outcome {
    pub exit: Exit,
    /// stdout and stderr, interleaved as written.
    pub output: Capped,
}

/// Runs `cmd` to completion (or time-out, or cancel), then kills what it left behind, so that
/// no descendant outlives it and none holds the output pipe open.
pub fn run_capped(mut cmd: Command, timeout: Duration, cancel: &Cancel) -> io::Result<Outcome> {
    let (reader, writer) = io::pipe()?;
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let running = spawn_in_group(&mut cmd, cancel);
    // Drop our copies of the pipe's write end, or the reader would never see EOF.
    drop(cmd);
    let Running { mut child, group } = running?;

    let output = Arc::new(Mutex::new(Capped::new(OUTPUT_CAP)));
    let (done_tx, done_rx) = mpsc::channel();
    let sink = output.clone();
    std::thread::spawn(move || {
        pump(reader, &sink);
        let _ = done_tx.send(());
    });

    let pid = child.id() as i32;
    let (exited_tx, exited_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let r = wait_exited(pid);
        let _ = exited_tx.send(());
        r
    });
    let timed_out = exited_rx.recv_timeout(timeout).is_err();
    cancel.detach();
    group.run().kill();
    waiter.join().expect("wait thread")?;
    let status: ExitStatus = child.wait()?;
    drop(group);
    // Everything that held the pipe is dead now; the bound is for a process stuck in the
    // kernel, or one that escaped on a system without a subreaper.
    let _ = done_rx.recv_timeout(Duration::from_secs(2));

    let exit = if cancel.is_cancelled() {
        Exit::Cancelled
    } else if timed_out {
        Exit::TimedOut
    } else if let Some(code) = status.code() {
        Exit::Code(code)
    } else {
        Exit::Signal(status.signal().unwrap_or(0))
    };
    let output = std::mem::take(&mut *output.lock().unwrap());
    Ok(Outcome { exit, output })
}

/// Copies a stream into a `Capped` buffer until EOF.
pub fn pump(mut from: impl Read, into: &Mutex<Capped>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => into.lock().unwrap().push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_keeps_both_ends_and_counts_the_middle() {
        let mut c = Capped::new(4);
        c.push(b"abcdef");
        c.push(b"ghij");
        assert_eq!(c.omitted(), 2);
        assert_eq!(c.text(), "abcd\n[... 2 bytes of output omitted ...]\nghij");
        let mut big = Capped::new(3);
        big.push(&[b'x'; 100]);
        big.push(b"end");
        assert_eq!(big.omitted(), 97, "103 bytes in, 3 kept at each end");
        assert!(big.text().ends_with("end"));
    }

    #[test]
    fn small_output_is_kept_whole() {
        let mut c = Capped::new(10);
        c.push(b"hello");
        c.push(b" world");
        assert_eq!(c.text(), "hello world");
    }

    /// Whether `pid` is still running (not gone, not a zombie).
    fn running(pid: i32) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(") ")
            .is_some_and(|(_, r)| !r.starts_with('Z') && !r.starts_with('X'))
    }

    #[test]
    fn time_limit_kills_the_whole_group() {
        let mut cmd = Command::new("sh");
        // The sleep's output goes elsewhere, so that only the kill can end the run quickly.
        cmd.args(["-c", "sleep 30 >/dev/null & echo started $!; wait"]);
        let out = run_capped(cmd, Duration::from_millis(300), &Cancel::default()).unwrap();
        assert_eq!(out.exit, Exit::TimedOut);
        let text = out.output.text();
        let pid: i32 = text
            .trim()
            .strip_prefix("started ")
            .unwrap()
            .parse()
            .unwrap();
        assert!(!running(pid), "the sleep {pid} outlived the time limit");
    }

    #[test]
    fn a_process_that_left_the_group_neither_survives_nor_holds_the_verdict() {
        super::super::reap::become_subreaper();
        let mut cmd = Command::new("sh");
        // The escapee keeps the output pipe open; the shell exits at once, successfully.
        cmd.args(["-c", "setsid sleep 30 & echo escaped $!"]);
        let started = std::time::Instant::now();
        let out = run_capped(cmd, Duration::from_secs(10), &Cancel::default()).unwrap();
        assert_eq!(out.exit, Exit::Code(0));
        // Before, the runner waited 2 s for the pipe and left the sleep running.
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        let text = out.output.text();
        let pid: i32 = text
            .trim()
            .strip_prefix("escaped ")
            .unwrap()
            .parse()
            .unwrap();
        assert!(!running(pid), "the escaped sleep {pid} is still running");
    }

    #[test]
    fn memory_limit_applies_to_the_child() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "ulimit -v"]);
        limit_memory(&mut cmd, 64);
        let out = run_capped(cmd, Duration::from_secs(10), &Cancel::default()).unwrap();
        assert!(
            out.output.text().starts_with("65536"),
            "{}",
            out.output.text()
        );
    }

    #[test]
    fn exit_codes_and_merged_output() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = run_capped(cmd, Duration::from_secs(10), &Cancel::default()).unwrap();
        assert_eq!(out.exit, Exit::Code(3));
        assert_eq!(out.output.text(), "out\nerr\n");
    }
}
