//! One cargo invocation that builds test binaries (or lints them), read through cargo's
//! JSON messages: which executable belongs to which exercise, and each one's diagnostics.
use super::ExecError;
use super::process::{Cancel, Capped, pump, spawn_in_group};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `cargo test --no-run`: build the test binaries.
    Test,
    /// `cargo clippy --all-targets -- -D warnings`: lint the bins, test code included.
    Clippy,
}

pub struct Request<'a> {
    pub root: &'a Path,
    /// One bin to build, or none for all of them (callers pick what they need).
    pub bins: &'a [String],
    pub mode: Mode,
    pub color: bool,
    /// Refuse to touch Cargo.lock (pack checks: the shipped lock must be complete).
    pub locked: bool,
    /// A target directory other than the package's own (`dev check` shares one).
    pub target_dir: Option<&'a Path>,
    /// Record each bin's rustc command for the hot path (`capture`); test mode only.
    pub capture: bool,
    /// The package's cargo features to enable (the servers' client crates).
    pub features: &'a [String],
}

#[derive(Default)]
pub struct Built {
    /// Test executable per bin name.
    pub executables: HashMap<String, PathBuf>,
    /// Rendered errors and warnings per bin name, errors first.
    pub diagnostics: HashMap<String, Diagnostics>,
    /// What cargo itself printed (network, lock file and manifest errors).
    pub stderr: String,
    pub success: bool,
}

#[derive(Default, Clone)]
pub struct Diagnostics {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl Diagnostics {
    pub fn render(&self) -> String {
        self.errors
            .iter()
            .chain(&self.warnings)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("")
    }
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    target: Option<Target>,
    executable: Option<PathBuf>,
    profile: Option<Profile>,
    message: Option<CompilerMessage>,
    success: Option<bool>,
    package_id: Option<String>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct Profile {
    test: bool,
}

#[derive(Deserialize)]
struct CompilerMessage {
    level: String,
    rendered: Option<String>,
}

/// Builds, calling `on_unit` with the package id of each unit cargo finishes.
pub fn build(
    req: &Request,
    cancel: &Cancel,
    mut on_unit: impl FnMut(&str),
) -> Result<Built, ExecError> {
    let mut cmd = Command::new("cargo");
    let format = if req.color {
        "--message-format=json-diagnostic-rendered-ansi"
    } else {
        "--message-format=json"
    };
    match (req.mode, req.bins) {
        // The hot path: one test binary.
        (Mode::Test, [bin]) => cmd.args(["test", "--no-run", "-q", format, "--bin", bin]),
        // Every bin in test mode, where one broken bin must not stop the others: `cargo test`
        // has no --keep-going, `cargo build --tests` does and builds the same artifacts.
        (Mode::Test, _) => cmd.args(["build", "--tests", "--keep-going", "-q", format]),
        // Every bin, linted as a bin and in test cfg.
        (Mode::Clippy, _) => cmd.args(["clippy", "--all-targets", "--keep-going", "-q", format]),
    };
    if req.locked {
        cmd.arg("--locked");
    }
    if let Some(dir) = req.target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    if !req.features.is_empty() {
        cmd.arg("--features").arg(req.features.join(","));
    }
    if req.mode == Mode::Clippy {
        // Last: everything after `--` goes to clippy, not cargo.
        cmd.args(["--", "-D", "warnings"]);
    }
    if req.capture
        && req.mode == Mode::Test
        && let Some(env) = super::capture::cargo_env(req.root)
    {
        cmd.envs(env);
    }
    cmd.current_dir(req.root)
        .env("CARGO_TERM_PROGRESS_WHEN", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut running = spawn_in_group(&mut cmd, cancel).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ExecError::CargoMissing,
        _ => ExecError::io("cannot start cargo", e),
    })?;
    let child = &mut running.child;
    let stderr = Arc::new(Mutex::new(Capped::new(super::process::OUTPUT_CAP)));
    let err_pipe = child.stderr.take().expect("piped stderr");
    let err_sink = stderr.clone();
    let err_thread = std::thread::spawn(move || pump(err_pipe, &err_sink));

    let mut built = Built::default();
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Message>(&line) else {
            continue;
        };
        match msg.reason.as_str() {
            "compiler-artifact" => {
                if let Some(id) = &msg.package_id {
                    on_unit(id);
                }
                if let (Some(t), Some(exe), Some(p)) = (msg.target, msg.executable, msg.profile)
                    && p.test
                    && t.kind.iter().any(|k| k == "bin")
                {
                    built.executables.insert(t.name, exe);
                }
            }
            "compiler-message" => {
                let (Some(t), Some(m)) = (msg.target, msg.message) else {
                    continue;
                };
                let Some(rendered) = m.rendered else { continue };
                let d = built.diagnostics.entry(t.name).or_default();
                // In clippy mode cargo lints each bin twice (as a bin and as a test):
                // identical messages are shown once.
                let list = if m.level == "error" {
                    &mut d.errors
                } else {
                    &mut d.warnings
                };
                if !list.contains(&rendered) {
                    list.push(rendered);
                }
            }
            "build-finished" => built.success = msg.success.unwrap_or(false),
            _ => {}
        }
    }
    let status = running
        .finish(cancel)
        .map_err(|e| ExecError::io("waiting for cargo", e))?;
    let _ = err_thread.join();
    if cancel.is_cancelled() {
        return Err(ExecError::Cancelled);
    }
    built.success &= status.success();
    built.stderr = stderr.lock().unwrap().text();
    Ok(built)
}
