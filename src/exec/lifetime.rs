//! The one owner of every process the runner starts (PRODUCT.md §3: nothing the runner started
//! outlives it). Builds and test runs are spawned here, each as the leader of a new process
//! group and tagged with a run token in its environment; the registry knows every live group.
//! On SIGINT, SIGTERM or SIGHUP, on a panic and on a normal exit it kills them all, and every
//! other descendant, waits for them to die, and then the runner exits (128 + the signal).
//!
//! Process groups keep the terminal's signals away from the children, so this module is what
//! stops them. The token and the subreaper (see `reap`) catch what leaves its group.
use super::reap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The environment variable that tags every process of one run, descendants included.
pub const RUN_VAR: &str = "BACKLINGS_RUN";
/// How long killing may take before the runner gives up on a process stuck in the kernel.
const KILL_BOUND: Duration = Duration::from_secs(3);

struct Registry {
    /// Live groups: (leader pid = pgid, run token).
    groups: Vec<(i32, String)>,
    /// Set once the runner is going away: no new process may start.
    closing: bool,
    /// Set once a signal or a panic is taking the runner down: that path exits.
    exiting: bool,
    /// Watch mode takes the first signal itself, to quit through its own clean-up.
    listener: Option<Box<dyn Fn(i32) + Send>>,
    /// Run before a forced exit (watch mode restores the terminal).
    at_exit: Vec<fn()>,
    /// Run on every way out, before everything is killed (stop servers gracefully) and after
    /// (remove what they leave on disk).
    before_kill: Vec<fn()>,
    after_kill: Vec<fn()>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    groups: Vec::new(),
    closing: false,
    exiting: false,
    listener: None,
    at_exit: Vec::new(),
    before_kill: Vec::new(),
    after_kill: Vec::new(),
});
static NEXT_RUN: AtomicU64 = AtomicU64::new(1);

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while holding the lock must not stop the clean-up that follows it.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A registry on the way out, unless this very thread holds it (a panic inside `spawn`):
/// then the clean-up goes on without it rather than deadlock.
pub(crate) fn lock_on_exit<T>(lock: &'static Mutex<T>) -> Option<MutexGuard<'static, T>> {
    for _ in 0..200 {
        match lock.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(e)) => return Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(5))
            }
        }
    }
    None
}

/// Takes ownership of the runner's children: becomes a subreaper, turns SIGINT, SIGTERM and
/// SIGHUP into a clean-up and exit, and kills everything on a panic. Called first in `main`.
pub fn install() -> io::Result<()> {
    reap::become_subreaper();
    // signal-hook's own self-pipe is a close-on-exec socket pair: no test process inherits it
    // (a hand-written pipe was inherited, and a test writing to it looked like a signal).
    let mut signals =
        signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM, libc::SIGHUP])?;
    std::thread::spawn(move || {
        for sig in signals.forever() {
            let listener = registry().listener.take();
            match listener {
                // The first signal goes to watch mode; a second one forces the exit.
                Some(tell) => tell(sig),
                None => exit_now(128 + sig),
            }
        }
    });
    // A panic anywhere leaves the runner in no state to go on: after the message, the same
    // way out as a signal, with the exit code of a panic.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        exit_now(101);
    }));
    Ok(())
}

/// Sends the next signal to `tell` instead of exiting; for watch mode, which quits through its
/// own clean-up (restore the terminal, save state). The one after it still exits at once.
pub fn take_signals(tell: impl Fn(i32) + Send + 'static) {
    registry().listener = Some(Box::new(tell));
}

/// Runs `f` before a forced exit (a second signal in watch mode, or a panic).
pub fn at_exit(f: fn()) {
    registry().at_exit.push(f);
}

/// Runs `stop` on every way out of the runner (the end of `main`, a signal, a panic) before
/// its processes are killed, and `clean` after they are dead: for the services, which stop
/// their servers gracefully first and remove their folders last.
pub fn on_shutdown(stop: fn(), clean: fn()) {
    let mut reg = registry();
    reg.before_kill.push(stop);
    reg.after_kill.push(clean);
}

/// Kills every process the runner started and waits for them, on the way out of `main`. If a
/// signal is already taking the runner down, waits for that path to exit instead, so that its
/// exit code wins.
pub fn finish() {
    if registry().exiting {
        loop {
            std::thread::park();
        }
    }
    shut_down();
}

fn exit_now(code: i32) -> ! {
    let hooks = match lock_on_exit(&REGISTRY) {
        Some(mut reg) => {
            reg.exiting = true;
            reg.at_exit.clone()
        }
        None => Vec::new(),
    };
    shut_down();
    for f in hooks {
        f();
    }
    std::process::exit(code);
}

/// The shutdown hooks around killing everything.
fn shut_down() {
    let (before, after) = match lock_on_exit(&REGISTRY) {
        Some(reg) => (reg.before_kill.clone(), reg.after_kill.clone()),
        None => (Vec::new(), Vec::new()),
    };
    for f in before {
        f();
    }
    kill_everything();
    for f in after {
        f();
    }
}

/// Closes the registry to new processes, kills every group and every descendant, and waits
/// until they are dead.
fn kill_everything() {
    let leaders: Vec<i32> = match lock_on_exit(&REGISTRY) {
        Some(mut reg) => {
            reg.closing = true;
            reg.groups.iter().map(|(pgid, _)| *pgid).collect()
        }
        None => Vec::new(),
    };
    for &pgid in &leaders {
        kill_group(pgid);
    }
    // A command that never started a run (hint, list) has no descendants to look for: skip
    // the walk over /proc, which costs milliseconds on a busy machine at every start-up.
    if NEXT_RUN.load(Ordering::SeqCst) == 1 {
        return;
    }
    // Leaders stay unreaped for their owners' wait(); everything else is reaped here.
    reap::kill_descendants(|_, _| true, &leaders, KILL_BOUND);
}

fn kill_group(pgid: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// A live process group started here. Its leader must be reaped by the owner after `kill`
/// (before then, the unreaped leader keeps the group id from being reused).
pub struct Group {
    run: Run,
}

/// What it takes to kill one run from any thread: its group and its token.
#[derive(Clone)]
pub struct Run {
    pub pgid: i32,
    token: String,
}

/// Spawns `cmd` as the leader of a new process group, tagged with a fresh run token, and
/// registers it. Refused (`Interrupted`) once the runner is going away.
pub fn spawn(cmd: &mut Command) -> io::Result<(Child, Group)> {
    let token = format!(
        "{}-{}",
        std::process::id(),
        NEXT_RUN.fetch_add(1, Ordering::SeqCst)
    );
    cmd.process_group(0).env(RUN_VAR, &token);
    // Spawning under the lock: a shutdown either sees this group or stops it from starting.
    let mut reg = registry();
    if reg.closing {
        return Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "the runner is shutting down",
        ));
    }
    let child = cmd.spawn()?;
    let pgid = child.id() as i32;
    reg.groups.push((pgid, token.clone()));
    Ok((
        child,
        Group {
            run: Run { pgid, token },
        },
    ))
}

impl Group {
    pub fn run(&self) -> &Run {
        &self.run
    }
}

impl Run {
    /// Kills the group, then every descendant that carries this run's token (those that left
    /// the group), waits until all of them are dead, and reaps the ones re-parented to the
    /// runner.
    pub fn kill(&self) {
        kill_group(self.pgid);
        reap::kill_descendants(
            |pid, pgid| pgid == self.pgid || reap::has_env(pid, RUN_VAR, &self.token),
            &[self.pgid],
            KILL_BOUND,
        );
        // Under the lock, so that a leader just spawned is known before its zombie is seen.
        let reg = registry();
        let leaders: Vec<i32> = reg.groups.iter().map(|(pgid, _)| *pgid).collect();
        reap::reap_orphans(&leaders);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        registry().groups.retain(|(pgid, _)| *pgid != self.run.pgid);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn kill_takes_what_left_the_group_by_its_token() {
        reap::become_subreaper();
        let mut cmd = Command::new("sh");
        // The setsid'd sleep leaves the group and the session; the shell exits at once.
        cmd.args(["-c", "setsid sleep 77 >/dev/null & echo $!"])
            .stdout(std::process::Stdio::piped());
        let (mut child, group) = spawn(&mut cmd).unwrap();
        let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
        let escaped: i32 = out.trim().parse().unwrap();
        // Bounded: the sleep may still be in the middle of its execve.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !reap::has_env(escaped, RUN_VAR, &group.run.token) {
            assert!(
                std::time::Instant::now() < deadline,
                "no token in {escaped}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        group.run().kill();
        child.wait().unwrap();
        drop(group);
        let stat = std::fs::read_to_string(format!("/proc/{escaped}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map_or("", |(_, r)| &r[..1]);
        assert!(
            state.is_empty() || state == "Z",
            "the escaped sleep is still running: {stat}"
        );
    }

    #[test]
    fn orphans_that_exit_on_their_own_are_reaped() {
        reap::become_subreaper();
        let mut cmd = Command::new("sh");
        // A double fork whose grandchild exits by itself, re-parented to us.
        cmd.args(["-c", "(setsid sh -c 'echo $$' &) ; sleep 0.3"])
            .stdout(std::process::Stdio::piped());
        let (mut child, group) = spawn(&mut cmd).unwrap();
        let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
        let orphan: i32 = out.trim().parse().unwrap();
        group.run().kill();
        child.wait().unwrap();
        drop(group);
        assert!(
            !std::path::Path::new(&format!("/proc/{orphan}")).exists(),
            "the orphan {orphan} was left a zombie"
        );
    }
}
