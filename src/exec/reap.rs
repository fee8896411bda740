//! Finding and killing the runner's descendants through the process table, for those that left
//! their process group (`setsid`, a double fork). On Linux the runner is a child subreaper, so
//! such orphans are re-parented to it and stay in its tree of descendants; elsewhere only
//! process groups are used and these functions find nothing.

/// Kills every live descendant of the runner for which `pick(pid, pgid)` holds, again and
/// again until none is left (a fork bomb keeps forking while it is being killed), waits until
/// each one killed is dead, and reaps those re-parented to the runner, except `keep` (direct
/// children that their owner reaps). Gives up after `bound`, which only a process stuck in
/// the kernel could exhaust.
pub fn kill_descendants(
    mut pick: impl FnMut(i32, i32) -> bool,
    keep: &[i32],
    bound: std::time::Duration,
) {
    #[cfg(target_os = "linux")]
    {
        let deadline = std::time::Instant::now() + bound;
        let me = std::process::id() as i32;
        // Once picked, always followed: a dying process's environment may no longer be read.
        let mut killed = std::collections::HashSet::new();
        let mut quiet = 0;
        loop {
            let live: Vec<linux::Proc> = linux::descendants(me)
                .into_iter()
                .filter(|p| !p.zombie && !keep.contains(&p.pid))
                .filter(|p| killed.contains(&p.pid) || pick(p.pid, p.pgid))
                .collect();
            for p in &live {
                // SAFETY: kill(2) touches no memory; the pid is our descendant.
                unsafe { libc::kill(p.pid, libc::SIGKILL) };
                killed.insert(p.pid);
            }
            for p in live.iter().filter(|p| p.ppid == me) {
                linux::reap(p.pid, deadline);
            }
            // Two quiet passes: a process in the middle of execve shows an empty environment
            // for a moment, and one pass could miss it.
            quiet = if live.is_empty() { quiet + 1 } else { 0 };
            if quiet == 2 || std::time::Instant::now() > deadline {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (&mut pick, keep, bound);
    }
}

/// Reaps the zombies re-parented to the runner: processes that left a run's group and then
/// exited on their own, which would otherwise pile up over a long watch session. Direct
/// children are left to their owners: those started here are `keep` (each leads its own
/// group), and untracked ones (`Command::output`) share the runner's process group.
pub fn reap_orphans(keep: &[i32]) {
    #[cfg(target_os = "linux")]
    {
        let me = std::process::id() as i32;
        // SAFETY: getpgrp(2) cannot fail and touches no memory.
        let own_group = unsafe { libc::getpgrp() };
        for p in linux::descendants(me) {
            if p.zombie && p.ppid == me && p.pgid != own_group && !keep.contains(&p.pid) {
                let mut status = 0;
                // SAFETY: waitpid(2) on a zombie child that no other code waits for.
                unsafe { libc::waitpid(p.pid, &mut status, libc::WNOHANG) };
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = keep;
    }
}

/// Whether the process's environment holds `var=value`: how a run finds its own processes
/// after they left its process group.
pub fn has_env(pid: i32, var: &str, value: &str) -> bool {
    #[cfg(target_os = "linux")]
    {
        let want = format!("{var}={value}");
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|e| e == want.as_bytes()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (pid, var, value);
        false
    }
}

/// Makes orphaned descendants re-parent to the runner instead of PID 1, so that they can be
/// found and killed. Best effort: without it, process groups still cover the usual case.
pub fn become_subreaper() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(2) with integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    pub struct Proc {
        pub pid: i32,
        pub ppid: i32,
        pub pgid: i32,
        pub zombie: bool,
    }

    /// Every process whose chain of parents leads to `root`, from /proc/*/stat.
    pub fn descendants(root: i32) -> Vec<Proc> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut children: HashMap<i32, Vec<Proc>> = HashMap::new();
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(p) = stat(pid) {
                children.entry(p.ppid).or_default().push(p);
            }
        }
        let mut out = Vec::new();
        let mut todo = vec![root];
        while let Some(parent) = todo.pop() {
            for p in children.remove(&parent).unwrap_or_default() {
                todo.push(p.pid);
                out.push(p);
            }
        }
        out
    }

    fn stat(pid: i32) -> Option<Proc> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid ...`, where comm may hold spaces and parentheses.
        let mut rest = text.get(text.rfind(')')? + 2..)?.split_ascii_whitespace();
        let state = rest.next()?;
        let ppid = rest.next()?.parse().ok()?;
        let pgid = rest.next()?.parse().ok()?;
        Some(Proc {
            pid,
            ppid,
            pgid,
            zombie: state == "Z" || state == "X",
        })
    }

    /// Waits for one killed child of ours, polling so that a stuck one cannot hang us.
    pub fn reap(pid: i32, deadline: Instant) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid(2) on a specific child that no other code waits for.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r != 0 || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
