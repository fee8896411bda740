//! Running a child under the runner's control: its own process group (so a time-out or a
//! cancel kills every descendant), a time limit, and capped output.
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
    group: Mutex<Option<i32>>,
}

impl Cancel {
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        if let Some(pgid) = *self.0.group.lock().unwrap() {
            kill_group(pgid);
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    fn attach(&self, pgid: i32) {
        *self.0.group.lock().unwrap() = Some(pgid);
        // A cancel that raced the spawn must still take effect.
        if self.is_cancelled() {
            kill_group(pgid);
        }
    }

    fn detach(&self) {
        *self.0.group.lock().unwrap() = None;
    }
}

pub fn kill_group(pgid: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group; no memory is touched.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
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

/// Spawns `cmd` as the leader of a new process group and tells `cancel` about it.
pub fn spawn_in_group(cmd: &mut Command, cancel: &Cancel) -> io::Result<Child> {
    cmd.process_group(0);
    let child = cmd.spawn()?;
    cancel.attach(child.id() as i32);
    Ok(child)
}

/// Runs `cmd` to completion (or time-out, or cancel), killing its whole process group at the end
/// so that no descendant outlives it.
pub fn run_capped(mut cmd: Command, timeout: Duration, cancel: &Cancel) -> io::Result<Outcome> {
    let (reader, writer) = io::pipe()?;
    cmd.stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let child = spawn_in_group(&mut cmd, cancel);
    // Drop our copies of the pipe's write end, or the reader would never see EOF.
    drop(cmd);
    let mut child = child?;
    let pgid = child.id() as i32;

    let output = Arc::new(Mutex::new(Capped::new(OUTPUT_CAP)));
    let (done_tx, done_rx) = mpsc::channel();
    let sink = output.clone();
    std::thread::spawn(move || {
        pump(reader, &sink);
        let _ = done_tx.send(());
    });

    let (status_tx, status_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = status_tx.send(());
        status
    });
    let timed_out = status_rx.recv_timeout(timeout).is_err();
    kill_group(pgid);
    let status: ExitStatus = waiter.join().expect("wait thread")?;
    cancel.detach();
    // A descendant that left the group could hold the pipe open: don't wait for it forever.
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

    #[test]
    fn time_limit_kills_the_whole_group() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & echo started; wait"]);
        let out = run_capped(cmd, Duration::from_millis(300), &Cancel::default()).unwrap();
        assert_eq!(out.exit, Exit::TimedOut);
        assert!(out.output.text().contains("started"));
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
