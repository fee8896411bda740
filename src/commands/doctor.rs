use crate::error::Result;
use crate::services::{self, Service};
use crate::term::Term;
use console::style;
use std::path::Path;

enum Level {
    Ok,
    Warn,
    Problem,
}

pub fn doctor(term: &Term) -> Result<i32> {
    let mut problems = 0;
    let mut say = |level: Level, what: String, fix: Option<&str>| {
        let mark = match level {
            Level::Ok => style("✓").green(),
            Level::Warn => style("!").yellow(),
            Level::Problem => {
                problems += 1;
                style("✗").red()
            }
        };
        term.line(&format!("{mark} {what}"));
        if let Some(fix) = fix {
            term.line(&format!("    {fix}"));
        }
    };

    for tool in ["cargo", "rustc", "cargo-clippy", "rustfmt"] {
        match which::which(tool) {
            Ok(p) => say(Level::Ok, format!("{tool}: {}", p.display()), None),
            Err(_) if matches!(tool, "cargo" | "rustc") => say(
                Level::Problem,
                format!("{tool} is not on PATH"),
                Some("install Rust with rustup: https://rustup.rs"),
            ),
            Err(_) => say(
                Level::Warn,
                format!("{tool} is not on PATH (only exercise authors need it)"),
                Some("rustup component add clippy rustfmt"),
            ),
        }
    }
    if let Some(version) = rustc_minor() {
        if version < 88 {
            say(
                Level::Problem,
                format!("rustc 1.{version} is too old: the exercises use edition 2024"),
                Some("run `rustup update` (Rust 1.88 or newer)"),
            );
        } else {
            say(
                Level::Ok,
                format!("rustc 1.{version} supports edition 2024"),
                None,
            );
        }
    }
    if let Some(max) = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        if max < 1024 {
            say(
                Level::Warn,
                format!("inotify allows only {max} watches"),
                Some("raise fs.inotify.max_user_watches, or use `backlings --poll`"),
            );
        } else {
            say(Level::Ok, format!("inotify allows {max} watches"), None);
        }
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    match drops_events(&cwd) {
        Some(why) => say(
            Level::Warn,
            format!("{}: {why}: file events may be lost", cwd.display()),
            Some("watch mode notices this within a second; `backlings --poll` avoids it"),
        ),
        None => say(
            Level::Ok,
            "the file system delivers file events".into(),
            None,
        ),
    }
    for (level, line) in build_path() {
        say(level, line, None);
    }
    // The optional tracks: what was found, its version, and whether a throwaway server
    // really starts here (it is stopped, and its folder removed, when doctor exits).
    for service in Service::ALL {
        let probe = services::probe(service);
        let title = service.title();
        match (&probe.found, &probe.start) {
            (Err(why), _) => say(
                Level::Warn,
                format!("{title} not found ({why}): its optional track is skipped"),
                Some(&format!(
                    "to take it, install it:\n      {}",
                    service.install().replace("\n  ", "\n      ")
                )),
            ),
            (Ok(bins), start) => {
                let where_ = bins
                    .first()
                    .and_then(|b| b.parent())
                    .map_or(String::new(), |d| d.display().to_string());
                let version = probe.version.as_deref().unwrap_or("version unknown");
                say(
                    Level::Ok,
                    format!("{title} found in {where_}: {version}"),
                    None,
                );
                match start {
                    Some(Ok(took)) => say(
                        Level::Ok,
                        format!(
                            "a throwaway {title} server starts (Unix socket only) in {:.2} s",
                            took.as_secs_f64()
                        ),
                        None,
                    ),
                    Some(Err(why)) => say(
                        Level::Problem,
                        format!("a throwaway {title} server does not start: {why}"),
                        Some("its optional track is skipped until this is fixed"),
                    ),
                    None => {}
                }
            }
        }
    }
    Ok(if problems == 0 { 0 } else { 1 })
}

/// Which path builds the exercises: cargo every time, or rustc directly once cargo has built
/// an exercise and its command was captured; and, inside a workspace, what is captured.
fn build_path() -> Vec<(Level, String)> {
    use crate::exec::capture;
    if let Err(why) = capture::enabled() {
        return vec![(
            Level::Ok,
            format!("build path: cargo for every save ({why})"),
        )];
    }
    let mut lines = vec![(
        Level::Ok,
        "build path: direct rustc with incremental compilation, after one cargo build per exercise (BACKLINGS_BUILD=cargo turns it off)".to_string(),
    )];
    let Ok(ws) = crate::workspace::Workspace::find() else {
        return lines;
    };
    let all = capture::all(&ws.root);
    let current: Vec<&capture::Captured> =
        all.iter().filter_map(|(_, c)| c.as_ref().ok()).collect();
    let stale: Vec<(&String, &String)> = all
        .iter()
        .filter_map(|(n, c)| c.as_ref().err().map(|why| (n, why)))
        .collect();
    let release = current
        .first()
        .and_then(|c| c.version.lines().find_map(|l| l.strip_prefix("release: ")))
        .map(|r| format!(", rustc {r}"))
        .unwrap_or_default();
    lines.push((
        Level::Ok,
        match current.len() {
            1 => format!("    1 exercise builds directly{release}"),
            n => format!("    {n} exercises build directly{release}"),
        },
    ));
    if let Some((name, why)) = stale.first() {
        lines.push((
            Level::Ok,
            format!(
                "    {} go through cargo on their next build ({name}: {why}), which captures their command again",
                stale.len()
            ),
        ));
    }
    for (name, _) in &all {
        if let Some(why) = capture::last_fallback(&ws.root, name) {
            lines.push((
                Level::Ok,
                format!("    {name} last went back to cargo because {why}"),
            ));
        }
    }
    lines
}

fn rustc_minor() -> Option<u32> {
    let out = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

/// Why a folder's file system is known to drop inotify events, if it is.
fn drops_events(dir: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let fs_type = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, mount, ty) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(mount)
                .then(|| (mount.len(), ty.to_string()))
        })
        .max()?
        .1;
    let wsl = std::fs::read_to_string("/proc/version")
        .is_ok_and(|v| v.to_lowercase().contains("microsoft"));
    match fs_type.as_str() {
        "nfs" | "nfs4" | "9p" | "cifs" | "smb3" | "drvfs" | "v9fs" | "virtiofs" | "fuse.sshfs" => {
            Some(format!("it is on {fs_type}"))
        }
        _ if wsl && dir.starts_with("/mnt") => Some("it is a Windows drive under WSL".into()),
        _ => None,
    }
}
