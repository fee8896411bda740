//! Who a server runs as. `initdb` refuses to run as root, so when the runner is root the servers
//! run as an unprivileged account (`postgres` if it exists, else `nobody`), which owns their
//! folder. The runner, as root, can still reach the socket as a client.
use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The account to run servers as: none (the runner's own) unless the runner is root.
pub fn for_servers() -> Result<Option<Account>, String> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Some(a) = lookup(name) {
            return Ok(Some(a));
        }
    }
    Err("the runner is root, and neither a `postgres` nor a `nobody` account exists to run the server as (initdb refuses root)".into())
}

/// The account's uid and gid, from the password database.
fn lookup(name: &str) -> Option<Account> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getpwnam_r fills `pwd` and `buf`, both ours and large enough (ERANGE otherwise);
    // `result` points at `pwd` or is null.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if r != 0 || result.is_null() {
            return None;
        }
        Some(Account {
            name: name.to_string(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        })
    }
}

/// Runs `cmd` as `account`, if any (std drops supplementary groups when root sets a uid).
pub fn run_as(cmd: &mut Command, account: Option<&Account>) {
    if let Some(a) = account {
        cmd.uid(a.uid).gid(a.gid);
    }
}

/// Gives `path` and everything below it to `account`, if any.
pub fn give(path: &Path, account: Option<&Account>) -> io::Result<()> {
    let Some(a) = account else { return Ok(()) };
    std::os::unix::fs::lchown(path, Some(a.uid), Some(a.gid))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for e in std::fs::read_dir(path)? {
            give(&e?.path(), account)?;
        }
    }
    Ok(())
}
