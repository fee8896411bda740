//! The hot path without cargo: the rustc command cargo ran for a bin's test target (see
//! `capture`), run again with incremental compilation in a folder the runner owns and the
//! output in a folder of its own, never cargo's `target/debug/deps`. Its diagnostics are
//! read from rustc's JSON messages and filtered the way cargo filters them, so that a compile
//! error reads the same on both paths.
use super::ExecError;
use super::capture::{self, Captured};
use super::cargo::Diagnostics;
use super::process::{Cancel, spawn_in_group};
use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub enum Direct {
    /// The test executable.
    Built(PathBuf),
    /// The learner's code does not compile: the diagnostics, as cargo would show them.
    Failed(Diagnostics),
    /// Not the code but the environment (a missing rlib, another toolchain's crate, a crash
    /// of rustc): the caller goes through cargo, which captures the command again.
    Fallback(String),
}

/// The error codes that point at the build's environment, not at the learner's code: a
/// crate that cannot be found (E0463), found twice (E0464, E0523), compiled by another
/// rustc or against other versions (E0460, E0514), or with broken metadata (E0786, E0462).
const ENVIRONMENT_CODES: &[&str] = &[
    "E0460", "E0461", "E0462", "E0463", "E0464", "E0514", "E0519", "E0523", "E0786",
];

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "$message_type")]
    kind: Option<String>,
    message: Option<String>,
    level: Option<String>,
    code: Option<Code>,
    rendered: Option<String>,
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

/// Builds `captured`'s bin with rustc directly.
pub fn build(
    root: &Path,
    captured: &Captured,
    color: bool,
    cancel: &Cancel,
) -> Result<Direct, ExecError> {
    let inv = &captured.invocation;
    let Some(name) = arg_value(&inv.args, "--crate-name") else {
        return Ok(Direct::Fallback(
            "the captured command names no crate".into(),
        ));
    };
    let dir = capture::build_dir(root, name);
    let out = dir.join("out");
    std::fs::create_dir_all(&out)
        .map_err(|e| ExecError::io(format!("cannot create {}", out.display()), e))?;
    let exe = out.join(format!(
        "{name}{}",
        capture::extra_filename(&inv.args).unwrap_or("")
    ));
    let mut args = Vec::with_capacity(inv.args.len() + 2);
    let mut it = inv.args.iter();
    while let Some(a) = it.next() {
        if a == "--out-dir" {
            it.next();
            args.push(a.clone());
            args.push(out.display().to_string());
        } else if a.starts_with("--out-dir=") {
            args.push(format!("--out-dir={}", out.display()));
        } else {
            args.push(a.clone());
        }
    }
    args.push("-C".into());
    args.push(format!("incremental={}", dir.join("incr").display()));
    args.extend(prefer_dynamic(captured.libdir.as_deref()));

    let mut cmd = Command::new(&captured.rustc);
    cmd.args(&args)
        .envs(&inv.env)
        .current_dir(&inv.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut running = spawn_in_group(&mut cmd, cancel)
        .map_err(|e| ExecError::io(format!("cannot start {}", captured.rustc.display()), e))?;
    let stderr = running.child.stderr.take().expect("piped stderr");
    let mut diagnostics = Diagnostics::default();
    let mut codes = Vec::new();
    let mut other = String::new();
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Message>(&line) else {
            other.push_str(&line);
            other.push('\n');
            continue;
        };
        if msg.kind.as_deref() != Some("diagnostic") {
            continue;
        }
        let text = msg.message.as_deref().unwrap_or("");
        // Cargo drops rustc's own summary lines and prints its own (which the runner hides).
        if text.starts_with("aborting due to")
            || text.ends_with("warning emitted")
            || text.ends_with("warnings emitted")
        {
            continue;
        }
        let Some(rendered) = msg.rendered else {
            continue;
        };
        // Cargo asks rustc for colour always, and strips it when its caller did not ask.
        let rendered = if color {
            rendered
        } else {
            super::sanitize(&rendered, false)
        };
        let error = msg.level.as_deref() == Some("error");
        if error && let Some(c) = msg.code {
            codes.push(c.code);
        }
        let list = if error {
            &mut diagnostics.errors
        } else {
            &mut diagnostics.warnings
        };
        if !list.contains(&rendered) {
            list.push(rendered);
        }
    }
    let status = running
        .finish(cancel)
        .map_err(|e| ExecError::io("waiting for rustc", e))?;
    if cancel.is_cancelled() {
        return Err(ExecError::Cancelled);
    }
    Ok(verdict(
        status.code(),
        exe,
        diagnostics,
        &codes,
        other.trim(),
    ))
}

/// What rustc's exit says: built, the learner's error, or a reason to ask cargo.
fn verdict(
    code: Option<i32>,
    exe: PathBuf,
    diagnostics: Diagnostics,
    codes: &[String],
    other: &str,
) -> Direct {
    match code {
        Some(0) if exe.is_file() => Direct::Built(exe),
        Some(0) => Direct::Fallback(format!("rustc wrote no {}", exe.display())),
        // 1 is rustc's "the code has errors"; anything else (an internal compiler error,
        // a signal) is not the learner's to read.
        Some(1) => {
            if let Some(c) = codes
                .iter()
                .find(|c| ENVIRONMENT_CODES.contains(&c.as_str()))
            {
                Direct::Fallback(format!("rustc reported {c}"))
            } else if diagnostics.errors.is_empty() {
                let first = other.lines().next().unwrap_or("");
                Direct::Fallback(format!("rustc failed without an error message: {first}"))
            } else if diagnostics
                .errors
                .iter()
                .any(|e| super::sanitize(e, false).starts_with("error: extern location for"))
            {
                Direct::Fallback("a dependency's rlib is missing".into())
            } else {
                Direct::Failed(diagnostics)
            }
        }
        Some(c) => Direct::Fallback(format!("rustc exited with {c}")),
        None => Direct::Fallback("rustc was killed".into()),
    }
}

/// Links the standard library dynamically, which makes linking, a good part of a small
/// exercise's build, faster (scripts/bench). The test binary finds `libstd` through an rpath
/// to the toolchain's library folder, on Linux and macOS alike, so that nothing the tests
/// start inherits an `LD_LIBRARY_PATH`. Not when the folder cannot be written in an rpath,
/// or when `BACKLINGS_PREFER_DYNAMIC=0`.
fn prefer_dynamic(libdir: Option<&Path>) -> Vec<String> {
    let off = std::env::var("BACKLINGS_PREFER_DYNAMIC").is_ok_and(|v| v == "0");
    match libdir.and_then(Path::to_str) {
        Some(dir) if !off && !dir.contains([',', ' ']) && Path::new(dir).is_dir() => vec![
            "-C".into(),
            "prefer-dynamic".into(),
            "-C".into(),
            format!("link-arg=-Wl,-rpath,{dir}"),
        ],
        _ => Vec::new(),
    }
}

/// The value after `flag` (`--crate-name NAME`).
fn arg_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(e: &[&str]) -> Diagnostics {
        Diagnostics {
            errors: e.iter().map(|s| s.to_string()).collect(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn environment_errors_go_back_to_cargo_and_code_errors_do_not() {
        let exe = PathBuf::from("/nonexistent/exe");
        let env = verdict(
            Some(1),
            exe.clone(),
            errors(&["error[E0463]: can't find crate"]),
            &["E0463".into()],
            "",
        );
        assert!(matches!(env, Direct::Fallback(_)));
        let code = verdict(
            Some(1),
            exe.clone(),
            errors(&["error[E0308]: mismatched types"]),
            &["E0308".into()],
            "",
        );
        assert!(matches!(code, Direct::Failed(_)));
        let extern_gone = verdict(
            Some(1),
            exe.clone(),
            errors(&["error: extern location for tokio does not exist: /t/x.rlib"]),
            &[],
            "",
        );
        assert!(matches!(extern_gone, Direct::Fallback(_)));
        let ice = verdict(Some(101), exe.clone(), errors(&[]), &[], "panicked");
        assert!(matches!(ice, Direct::Fallback(_)));
        let silent = verdict(Some(1), exe.clone(), errors(&[]), &[], "");
        assert!(matches!(silent, Direct::Fallback(_)));
        let no_exe = verdict(Some(0), exe, errors(&[]), &[], "");
        assert!(matches!(no_exe, Direct::Fallback(_)));
    }
}
