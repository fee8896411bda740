//! A throwaway PostgreSQL cluster in a folder of its own, on a Unix socket only:
//! `initdb --auth=trust --no-sync --wal-segsize=1` (or a copy of a cached, pristine cluster made by that same
//! command for this server version), then `pg_ctl -w start` with `listen_addresses=''`,
//! `fsync=off` and a 50 ms `deadlock_timeout`. Stopped with an immediate shutdown (SIGQUIT to
//! the postmaster), which also frees its shared memory.
use super::user::{self, Account};
use crate::exec::lifetime;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const BINARIES: [&str; 2] = ["initdb", "pg_ctl"];
/// The superuser `initdb -U` creates, which the exercises connect as.
const SUPERUSER: &str = "postgres";
const PORT: u16 = 5432;

/// A started cluster: the postmaster's pid and what the exercise's tests are given.
pub struct Started {
    pub pid: i32,
    pub env: Vec<(String, String)>,
}

/// Starts a cluster in `dir` (empty, owned by `account` if any) with the binaries `bins`
/// (initdb, pg_ctl).
pub fn start(bins: &[PathBuf], dir: &Path, account: Option<&Account>) -> Result<Started, String> {
    let (initdb, pg_ctl) = (&bins[0], &bins[1]);
    let data = dir.join("data");
    let template = template_path(pg_ctl, account);
    let from_template = template
        .as_deref()
        .is_some_and(|t| copy_tree(t, &data).is_ok());
    if from_template {
        user::give(&data, account)
            .map_err(|e| format!("cannot hand {} over: {e}", data.display()))?;
    } else {
        let _ = std::fs::remove_dir_all(&data);
        let mut cmd = Command::new(initdb);
        cmd.arg("-D").arg(&data).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            // 1 MiB WAL segments instead of 16: a third less to copy from the template.
            "--wal-segsize=1",
        ]);
        run(&mut cmd, dir, "initdb.log", account)?;
        if let Some(t) = &template {
            save_template(&data, t);
        }
    }
    // The port only names the socket file (`.s.PGSQL.5432`): there is no TCP listener.
    let options = format!(
        "-k '{}' -p {PORT} -c listen_addresses='' -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c deadlock_timeout=50ms",
        dir.display()
    );
    let mut cmd = Command::new(pg_ctl);
    cmd.arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("server.log"))
        .args(["-w", "-t", "30", "-o", &options, "start"]);
    run(&mut cmd, dir, "pg_ctl.log", account).map_err(|e| {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        format!("{e}\n{}", last_lines(&log, 8))
    })?;
    let pid = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok())
        .ok_or("pg_ctl started the server, but its postmaster.pid is unreadable")?;
    // pg_ctl -w has seen the server accept connections; a client here must get in too.
    let sock = dir.join(format!(".s.PGSQL.{PORT}"));
    std::os::unix::net::UnixStream::connect(&sock)
        .map_err(|e| format!("the server runs, but {} refuses: {e}", sock.display()))?;
    let host = dir.display().to_string();
    let encoded: String = host.replace('%', "%25").replace('/', "%2F");
    Ok(Started {
        pid,
        env: vec![
            ("PGHOST".into(), host),
            ("PGUSER".into(), SUPERUSER.into()),
            ("PGPORT".into(), PORT.to_string()),
            (
                "DATABASE_URL".into(),
                format!("postgresql://{SUPERUSER}@{encoded}/postgres"),
            ),
        ],
    })
}

/// Runs one of PostgreSQL's tools to its end, as `account`, with its output in `dir/log`.
/// Spawned through `lifetime`, so that the runner's exit stops it (and the postmaster that
/// `pg_ctl` leaves behind, which carries its run token).
fn run(cmd: &mut Command, dir: &Path, log: &str, account: Option<&Account>) -> Result<(), String> {
    let log_path = dir.join(log);
    let out = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    cmd.current_dir(dir)
        .env("LC_ALL", "C")
        // The learner's own PG* settings must not steer the throwaway cluster.
        .env_remove("PGDATA")
        .env_remove("PGPORT")
        .env_remove("PGHOST")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    user::run_as(cmd, account);
    let name = cmd.get_program().to_string_lossy().into_owned();
    let (mut child, group) = lifetime::spawn(cmd).map_err(|e| format!("cannot run {name}: {e}"))?;
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {name}: {e}"))?;
    drop(group);
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    Err(format!(
        "{name} failed ({status}):\n{}",
        last_lines(&text, 8)
    ))
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Where a pristine cluster for this server version and account is kept: under the user's
/// cache folder, keyed on `pg_ctl --version`, the binaries' folder and the account. Copying it
/// is several times faster than `initdb`.
fn template_path(pg_ctl: &Path, account: Option<&Account>) -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let version = super::find::version(pg_ctl)?;
    let key = format!(
        "{version}|{}|{}|-U {SUPERUSER} --auth=trust -E UTF8 --locale=C --wal-segsize=1",
        pg_ctl.display(),
        account.map_or(String::new(), |a| a.name.clone())
    );
    // `pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)`: the first word that is a number.
    let digits = version
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or("unknown");
    Some(cache.join("backlings").join(format!(
        "pg-template-{digits}-{:016x}",
        fnv1a(key.as_bytes())
    )))
}

/// Keeps a copy of a fresh cluster as the template, atomically (a copy, then a rename), so a
/// half-written template is never used. Best effort: without it, the next start runs initdb.
fn save_template(data: &Path, template: &Path) {
    let Some(parent) = template.parent() else {
        return;
    };
    if std::fs::create_dir_all(parent).is_err() {
        return;
    }
    let Ok(tmp) = tempfile::Builder::new()
        .prefix(".pg-template-")
        .tempdir_in(parent)
    else {
        return;
    };
    let staged = tmp.path().join("data");
    if copy_tree(data, &staged).is_ok() {
        let _ = std::fs::rename(&staged, template);
    }
}

/// Copies a folder tree, keeping file modes (PostgreSQL insists on 0700/0750 for its data).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        return std::os::unix::fs::symlink(std::fs::read_link(from)?, to);
    }
    if !meta.is_dir() {
        std::fs::copy(from, to)?;
        return Ok(());
    }
    std::fs::create_dir(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        copy_tree(&e.path(), &to.join(e.file_name()))?;
    }
    std::fs::set_permissions(
        to,
        std::fs::Permissions::from_mode(meta.permissions().mode() & 0o7777),
    )
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An immediate shutdown: the postmaster stops its backends and frees its shared memory.
pub fn stop(pid: i32) {
    super::signal_and_wait(pid, libc::SIGQUIT);
}
