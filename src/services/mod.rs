//! Throwaway PostgreSQL and Redis servers that the runner owns (PRODUCT.md §7). A server starts
//! the first time an exercise needs it, in a temp folder of its own, on a Unix socket only (no
//! TCP port), as an unprivileged account when the runner is root, and is reused by every later
//! run of this process (watch mode). On every way out of the runner (the end of a command, `q`,
//! a signal, a panic) `exec::lifetime` calls back here: the servers are shut down, whatever is
//! left is killed with the rest of the runner's processes, and then their folders are removed.
//! A system cluster or a running Redis is never touched.
mod find;
mod postgres;
mod redis;
mod user;

use crate::exec::{self, lifetime};
use crate::pack::Exercise;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Makes a server that cannot start a failure rather than a skip (`dev check` in CI).
pub const REQUIRE_VAR: &str = "BACKLINGS_REQUIRE_SERVICES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Postgres,
    Redis,
}

impl Service {
    pub const ALL: [Service; 2] = [Service::Postgres, Service::Redis];

    /// From the name used in info.toml's `requires` (and as the workspace's cargo feature).
    pub fn parse(name: &str) -> Option<Service> {
        match name {
            "postgres" => Some(Service::Postgres),
            "redis" => Some(Service::Redis),
            _ => None,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Service::Postgres => "PostgreSQL",
            Service::Redis => "Redis",
        }
    }

    fn binaries(self) -> &'static [&'static str] {
        match self {
            Service::Postgres => &postgres::BINARIES,
            Service::Redis => &redis::BINARIES,
        }
    }

    /// How to install it, one line per platform.
    pub fn install(self) -> &'static str {
        match self {
            Service::Postgres => {
                "Debian/Ubuntu: sudo apt-get install postgresql\n  macOS: brew install postgresql@16"
            }
            Service::Redis => {
                "Debian/Ubuntu: sudo apt-get install redis-server\n  macOS: brew install redis"
            }
        }
    }
}

/// Why a server is not there.
#[derive(Debug, Clone)]
pub enum ServiceError {
    /// Its binaries are not installed (or not found where we look).
    Missing { service: Service, why: String },
    /// Found, but a throwaway server did not start.
    Failed { service: Service, why: String },
    /// The runner is shutting down.
    Closing,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Missing { service, why } => {
                write!(f, "{} is not installed here: {why}", service.title())
            }
            ServiceError::Failed { service, why } => write!(
                f,
                "{} is installed, but a throwaway server did not start: {why}",
                service.title()
            ),
            ServiceError::Closing => f.write_str("the runner is shutting down"),
        }
    }
}

impl ServiceError {
    /// The message for the learner: what is missing and what to do about it.
    pub fn explain(&self) -> String {
        match self {
            ServiceError::Missing { service, .. } => format!(
                "{self}.\nTo take this optional track, install {}:\n  {}\nthen run `backlings doctor` to check that a throwaway server starts.",
                service.title(),
                service.install()
            ),
            ServiceError::Failed { .. } => {
                format!("{self}\nRun `backlings doctor` to see what was found.")
            }
            ServiceError::Closing => self.to_string(),
        }
    }
}

/// One server the runner started.
struct Server {
    service: Service,
    dir: PathBuf,
    env: Vec<(String, String)>,
    handle: Handle,
}

enum Handle {
    /// The postmaster `pg_ctl` left behind (re-parented to the runner, a subreaper).
    Postmaster(i32),
    /// `redis-server` in the foreground, a process group of the runner's.
    Redis(std::process::Child, lifetime::Group),
}

impl Server {
    fn alive(&mut self) -> bool {
        match &mut self.handle {
            Handle::Postmaster(pid) => alive(*pid),
            Handle::Redis(child, _) => matches!(child.try_wait(), Ok(None)),
        }
    }

    fn stop(self) {
        match self.handle {
            Handle::Postmaster(pid) => postgres::stop(pid),
            Handle::Redis(child, group) => {
                signal_and_wait(child.id() as i32, libc::SIGTERM);
                drop(group);
            }
        }
    }
}

#[derive(Default)]
struct Registry {
    servers: Vec<Server>,
    /// Every folder made for a server, removed last on the way out.
    dirs: Vec<PathBuf>,
    /// Set on the way out: no server starts after it.
    closed: bool,
    hooked: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    servers: Vec::new(),
    dirs: Vec::new(),
    closed: false,
    hooked: false,
});
/// One start at a time; never taken on the way out, which must not wait for a start.
static STARTING: Mutex<()> = Mutex::new(());

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The environment for a test that uses `service`: the running server's, or a new one's.
pub fn ensure(service: Service) -> Result<Vec<(String, String)>, ServiceError> {
    let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    let dead = {
        let mut reg = registry();
        if reg.closed {
            return Err(ServiceError::Closing);
        }
        if !reg.hooked {
            lifetime::on_shutdown(stop_all, remove_dirs);
            reg.hooked = true;
        }
        match reg.servers.iter().position(|s| s.service == service) {
            Some(i) if reg.servers[i].alive() => return Ok(reg.servers[i].env.clone()),
            // It died (a test shut it down, say): a fresh one takes its place.
            Some(i) => Some(reg.servers.remove(i)),
            None => None,
        }
    };
    if let Some(dead) = dead {
        let dir = dead.dir.clone();
        dead.stop();
        let _ = std::fs::remove_dir_all(&dir);
        registry().dirs.retain(|d| *d != dir);
    }
    start(service)
}

fn start(service: Service) -> Result<Vec<(String, String)>, ServiceError> {
    let failed = |why: String| ServiceError::Failed { service, why };
    let bins =
        find::find(service.binaries()).map_err(|why| ServiceError::Missing { service, why })?;
    let account = user::for_servers().map_err(failed)?;
    let name = match service {
        Service::Postgres => "postgres",
        Service::Redis => "redis",
    };
    let dir = tempfile::Builder::new()
        .prefix(&format!("backlings-{name}-"))
        .tempdir_in(base_dir(account.is_some()))
        .map_err(|e| failed(format!("cannot create a temp folder: {e}")))?;
    let path = dir.path().to_path_buf();
    registry().dirs.push(path.clone());
    let started = user::give(&path, account.as_ref())
        .map_err(|e| format!("cannot hand {} over to its account: {e}", path.display()))
        .and_then(|()| match service {
            Service::Postgres => postgres::start(&bins, &path, account.as_ref())
                .map(|s| (Handle::Postmaster(s.pid), s.env)),
            Service::Redis => redis::start(&bins, &path, account.as_ref())
                .map(|s| (Handle::Redis(s.child, s.group), s.env)),
        });
    match started {
        Ok((handle, env)) => {
            let path = dir.keep();
            registry().servers.push(Server {
                service,
                dir: path,
                env: env.clone(),
                handle,
            });
            Ok(env)
        }
        Err(why) => {
            // pg_ctl may give up waiting on a postmaster that still runs.
            if let Some(pid) = std::fs::read_to_string(path.join("data/postmaster.pid"))
                .ok()
                .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok())
            {
                postgres::stop(pid);
            }
            drop(dir);
            registry().dirs.retain(|d| *d != path);
            Err(failed(why))
        }
    }
}

/// Where server folders go: `TMPDIR` when it is set; otherwise `/dev/shm` when it is a roomy
/// tmpfs (a cluster's ~30 MB are written at every start, and on a disk that other builds keep
/// busy that write alone took seconds), else `/tmp`. A folder whose path is so long that a
/// socket path in it would pass the 107-byte limit of `sun_path`, or (for a server run as
/// another account) that is closed to others on the way, gives way to `/tmp`.
fn base_dir(other_account: bool) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    const ROOM: u64 = 512 * 1024 * 1024;
    let tmp = match std::env::var_os("TMPDIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None if free_bytes(std::path::Path::new("/dev/shm")).is_some_and(|b| b >= ROOM) => {
            PathBuf::from("/dev/shm")
        }
        None => PathBuf::from("/tmp"),
    };
    let open_to_others = || {
        tmp.ancestors()
            .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
    };
    if tmp.as_os_str().len() <= 60 && (!other_account || open_to_others()) {
        tmp
    } else {
        PathBuf::from("/tmp")
    }
}

/// The bytes free for an unprivileged user in the file system of `dir`, if it is a folder.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    if !dir.is_dir() {
        return None;
    }
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs(2) fills the struct we own from a NUL-terminated path.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
}

/// The servers `exercises` need, started (or reused) now, for `exec`.
pub fn provide(exercises: &[&Exercise]) -> exec::Provided {
    let mut provided = exec::Provided::default();
    for ex in exercises {
        for name in &ex.requires {
            if provided.has(name) {
                continue;
            }
            let env = match Service::parse(name) {
                Some(s) => ensure(s).map_err(|e| e.explain()),
                None => Err(format!("backlings does not know the service {name:?}")),
            };
            provided.add(name, env);
        }
    }
    provided
}

/// Whether a server that cannot start is a failure (`--require-services`, or CI's variable).
pub fn required_by_env() -> bool {
    std::env::var_os(REQUIRE_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

/// What `doctor` shows for one service.
pub struct Probe {
    /// The binaries found, or where they were looked for.
    pub found: Result<Vec<PathBuf>, String>,
    pub version: Option<String>,
    /// How long a throwaway server took until a client could connect, or why it did not start.
    pub start: Option<Result<Duration, String>>,
}

/// Finds `service`, and starts a throwaway server to show that it works.
pub fn probe(service: Service) -> Probe {
    let found = find::find(service.binaries());
    let version = found
        .as_ref()
        .ok()
        .and_then(|bins| find::version(bins.last()?));
    let start = found.is_ok().then(|| {
        let t = Instant::now();
        ensure(service)
            .map(|_| t.elapsed())
            .map_err(|e| e.to_string())
    });
    Probe {
        found,
        version,
        start,
    }
}

/// First hook on the way out: no new server, and each running one shut down (bounded).
fn stop_all() {
    let servers = match lifetime::lock_on_exit(&REGISTRY) {
        Some(mut reg) => {
            reg.closed = true;
            std::mem::take(&mut reg.servers)
        }
        None => return,
    };
    for s in servers {
        s.stop();
    }
}

/// Last hook on the way out, once every process is dead: the folders go.
fn remove_dirs() {
    let dirs = match lifetime::lock_on_exit(&REGISTRY) {
        Some(mut reg) => std::mem::take(&mut reg.dirs),
        None => return,
    };
    for d in dirs {
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// Whether `pid` is a live process (a zombie child of ours is reaped, and is not).
fn alive(pid: i32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid(2) and kill(2) with integer arguments; `status` is ours.
    unsafe {
        match libc::waitpid(pid, &mut status, libc::WNOHANG) {
            0 => true,
            r if r == pid => false,
            // Not our child (no subreaper here): it lives while it can be signalled.
            _ => libc::kill(pid, 0) == 0,
        }
    }
}

/// Sends `sig`, and waits until the process is gone; SIGKILL after a bound.
fn signal_and_wait(pid: i32, sig: i32) {
    const BOUND: Duration = Duration::from_secs(3);
    // SAFETY: kill(2) touches no memory; the pid is a server this runner started.
    unsafe { libc::kill(pid, sig) };
    for (signal, bound) in [(None, BOUND), (Some(libc::SIGKILL), Duration::from_secs(1))] {
        if let Some(s) = signal {
            // SAFETY: as above.
            unsafe { libc::kill(pid, s) };
        }
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if !alive(pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
