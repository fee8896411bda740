//! The hot path: build one exercise's test binary with a single cargo invocation, then run it
//! directly under the runner's own process-group, time-limit and output-cap control.
//! `run`, `verify`, `dev check` and watch mode all go through here, so they can never
//! disagree about whether an exercise passes.
pub mod capture;
pub mod cargo;
mod direct;
pub mod lifetime;
mod pool;
pub mod process;
mod reap;
pub mod report;
mod sanitize;

use crate::pack::{Exercise, Pack, protected};
pub use pool::parallel;
use process::{Cancel, Exit};
pub use sanitize::sanitize;
use std::fmt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Verdict {
    Pass {
        report: String,
    },
    BuildFailed {
        diagnostics: String,
    },
    TestsFailed {
        report: String,
        /// The libtest names of the tests that failed.
        failed: Vec<String>,
    },
    TimedOut {
        secs: u64,
        report: String,
    },
    OutOfMemory {
        mib: u64,
        report: String,
    },
    Missing {
        path: String,
    },
    /// A server the exercise needs is not there: an optional track, skipped.
    NeedsService {
        service: String,
        /// What is missing and how to install it.
        why: String,
        /// The exercise that teaches the same idea without a server.
        instead: Option<String>,
    },
    /// The protected tests were changed, or did not all run: never a pass.
    TestsEdited {
        why: String,
    },
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }

    /// An optional exercise that could not run here: it does not count against the learner.
    pub fn skipped(&self) -> bool {
        matches!(self, Verdict::NeedsService { .. })
    }

    /// A few words for tables and lists.
    pub fn label(&self) -> String {
        match self {
            Verdict::Pass { .. } => "passed".into(),
            Verdict::BuildFailed { .. } => "compile error".into(),
            Verdict::TestsFailed { .. } => "tests failed".into(),
            Verdict::TestsEdited { .. } => "tests were changed".into(),
            Verdict::TimedOut { secs, .. } => format!("timed out after {secs} s"),
            Verdict::OutOfMemory { mib, .. } => format!("used more than {mib} MiB of memory"),
            Verdict::Missing { .. } => "file missing".into(),
            Verdict::NeedsService { service, .. } => format!("skipped: needs {service}"),
        }
    }

    /// What the learner reads: the verdict's heading and its details.
    pub fn details(&self) -> String {
        match self {
            Verdict::Pass { report } | Verdict::TestsFailed { report, .. } => report.clone(),
            Verdict::TestsEdited { why } => format!("{why}\n"),
            Verdict::BuildFailed { diagnostics } => diagnostics.clone(),
            Verdict::TimedOut { secs, report } => format!(
                "{report}\nThe tests were stopped after {secs} s: probably a deadlock, an infinite loop or a server that never shut down.\n"
            ),
            Verdict::OutOfMemory { mib, report } => format!(
                "{report}\nThe tests were stopped when they used more than {mib} MiB of memory: probably a leak, a buffer that grows without bound, or printing without end (the test harness keeps each test's output in memory).\n"
            ),
            Verdict::Missing { path } => {
                format!("{path} is missing. Restore the shipped version with `backlings reset`.\n")
            }
            Verdict::NeedsService {
                service,
                why,
                instead,
            } => {
                let mut text = format!(
                    "This optional exercise needs a {service} server, so it is skipped.\n{why}\n"
                );
                if let Some(other) = instead {
                    text.push_str(&format!(
                        "Without a server, `{other}` teaches the same idea: `backlings run {other}`.\n"
                    ));
                }
                text
            }
        }
    }
}

/// Typed, because callers act on them: a missing cargo stops everything with one message.
#[derive(Debug)]
pub enum ExecError {
    CargoMissing,
    Cancelled,
    /// A system call failed; `what` names the command or path it was about.
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl ExecError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> ExecError {
        // `lifetime` refuses new processes this way once the runner is going away.
        if source.kind() == std::io::ErrorKind::Interrupted {
            return ExecError::Cancelled;
        }
        ExecError::Io {
            what: what.into(),
            source,
        }
    }
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::CargoMissing => f.write_str("cargo was not found on PATH"),
            ExecError::Cancelled => f.write_str("cancelled"),
            ExecError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExecError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ExecError> for crate::error::Error {
    fn from(e: ExecError) -> Self {
        use crate::error::Error;
        match e {
            ExecError::CargoMissing => Error::new(e.to_string())
                .help("install Rust with rustup (https://rustup.rs), then open a new terminal"),
            e => Error::new(e.to_string()),
        }
    }
}

/// The servers exercises may use (see `services`): per service name, the environment its
/// tests get, or why it is not there (shown to the learner as it is).
#[derive(Debug, Clone, Default)]
pub struct Provided {
    services: Vec<(String, Result<Env, String>)>,
}

/// Environment variables for a test process: `(name, value)`.
pub type Env = Vec<(String, String)>;

impl Provided {
    pub fn add(&mut self, service: &str, env: Result<Env, String>) {
        self.services.retain(|(s, _)| s != service);
        self.services.push((service.to_string(), env));
    }

    pub fn has(&self, service: &str) -> bool {
        self.services.iter().any(|(s, _)| s == service)
    }

    /// Why `service` is not there, if it is not.
    pub fn why_not(&self, service: &str) -> Option<String> {
        match self.services.iter().find(|(s, _)| s == service) {
            Some((_, Ok(_))) => None,
            Some((_, Err(why))) => Some(why.clone()),
            None => Some("No server was started for it.".into()),
        }
    }

    /// The environment and cargo features for `ex`, or the verdict that skips it.
    pub fn for_exercise(&self, ex: &Exercise) -> Result<(Env, Vec<String>), Verdict> {
        let mut env = Vec::new();
        for service in &ex.requires {
            let found = self.services.iter().find(|(s, _)| s == service);
            match found.map(|(_, r)| r) {
                Some(Ok(e)) => env.extend(e.iter().cloned()),
                Some(Err(why)) => return Err(needs(ex, service, why.clone())),
                None => {
                    return Err(needs(ex, service, "No server was started for it.".into()));
                }
            }
        }
        Ok((env, ex.requires.clone()))
    }
}

fn needs(ex: &Exercise, service: &str, why: String) -> Verdict {
    Verdict::NeedsService {
        service: service.to_string(),
        why,
        instead: ex.instead.clone(),
    }
}

/// What one test run may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout_secs: u64,
    /// The test process's address space (RLIMIT_AS), descendants included.
    pub memory_mib: u64,
}

impl Limits {
    pub fn of(ex: &Exercise) -> Limits {
        Limits {
            timeout_secs: ex.timeout_secs,
            memory_mib: ex.memory_mib,
        }
    }
}

#[derive(Clone, Copy)]
pub struct Options {
    pub color: bool,
    pub locked: bool,
    /// Test binaries run at once (`run_many`).
    pub jobs: usize,
}

/// What is known before building, for an exercise that can run.
struct Prepared {
    /// The shipped tests, which must all run and pass.
    expected: Vec<String>,
    /// The servers' environment for its tests.
    env: Vec<(String, String)>,
    /// The workspace's cargo features its bin requires (one per service).
    features: Vec<String>,
}

/// Builds and tests one exercise in the Cargo package at `root`, with the servers in
/// `services` (see `services::provide`).
pub fn run_exercise(
    root: &Path,
    pack: &Pack,
    ex: &Exercise,
    opts: Options,
    services: &Provided,
    cancel: &Cancel,
) -> Result<Verdict, ExecError> {
    let prepared = match precheck(root, pack, ex, services) {
        Ok(p) => p,
        Err(v) => return Ok(v),
    };
    // Pack checks (`locked`) build exactly as cargo does; learners take the hot path, unless
    // it is turned off (`BACKLINGS_BUILD=cargo`, a rustc wrapper of their own).
    let hot = !opts.locked && capture::enabled().is_ok();
    if hot && let Ok(captured) = capture::current(root, &ex.name) {
        match direct::build(root, &captured, opts.color, cancel)? {
            direct::Direct::Built(exe) => {
                return run_tests(
                    root,
                    &exe,
                    Limits::of(ex),
                    &prepared.expected,
                    &prepared.env,
                    cancel,
                );
            }
            direct::Direct::Failed(d) => {
                return Ok(Verdict::BuildFailed {
                    diagnostics: sanitize(&d.render(), true),
                });
            }
            // The environment moved under the captured command: cargo captures it again.
            direct::Direct::Fallback(why) => {
                capture::forget(root, &capture::crate_name(&ex.name), &why)
            }
        }
    }
    let bins = [ex.name.clone()];
    let built = build_tests(root, &bins, &prepared.features, opts, hot, cancel, |_| {})?;
    match built.executables.get(&ex.name) {
        Some(exe) => run_tests(
            root,
            exe,
            Limits::of(ex),
            &prepared.expected,
            &prepared.env,
            cancel,
        ),
        None => Ok(build_failure(&built, &ex.name)),
    }
}

/// One cargo build of `bins`' tests (every bin of the package when there are several: cargo
/// leaves out those whose features are off), recording each bin's rustc command for the hot
/// path when `hot`.
fn build_tests(
    root: &Path,
    bins: &[String],
    features: &[String],
    opts: Options,
    hot: bool,
    cancel: &Cancel,
    on_built: impl FnMut(&str),
) -> Result<cargo::Built, ExecError> {
    let req = cargo::Request {
        root,
        bins: if bins.len() == 1 { bins } else { &[] },
        mode: cargo::Mode::Test,
        color: opts.color,
        locked: opts.locked,
        target_dir: None,
        capture: hot,
        features,
    };
    let started = std::time::SystemTime::now();
    let built = cargo::build(&req, cancel, on_built)?;
    if hot {
        capture::commit(root, bins, &built.executables, started);
    }
    Ok(built)
}

/// Builds many exercises with one cargo invocation (cargo runs rustc in parallel), then runs
/// their tests on `jobs` threads. `on_done` sees each verdict as it lands. Exercises that use a
/// server are built one by one with their features, so that the others' artifacts stay the
/// ones a learner's single runs use.
#[allow(clippy::too_many_arguments)]
pub fn run_many(
    root: &Path,
    pack: &Pack,
    exercises: &[&Exercise],
    opts: Options,
    services: &Provided,
    cancel: &Cancel,
    mut on_built: impl FnMut(&str),
    on_done: impl Fn(usize, &Verdict) + Sync,
) -> Result<Vec<Verdict>, ExecError> {
    let mut prepared = Vec::with_capacity(exercises.len());
    let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(exercises.len());
    for ex in exercises {
        let (p, verdict) = match precheck(root, pack, ex, services) {
            Ok(p) => (Some(p), None),
            Err(v) => (None, Some(v)),
        };
        prepared.push(p);
        verdicts.push(verdict);
    }
    let plain: Vec<String> = exercises
        .iter()
        .zip(&prepared)
        .filter(|(_, p)| p.as_ref().is_some_and(|p| p.features.is_empty()))
        .map(|(ex, _)| ex.name.clone())
        .collect();
    // Learners' builds record each bin's rustc command for the hot path (see run_exercise).
    let hot = !opts.locked && capture::enabled().is_ok();
    let mut built = if plain.is_empty() {
        cargo::Built::default()
    } else {
        build_tests(root, &plain, &[], opts, hot, cancel, &mut on_built)?
    };
    let mut own_builds = std::collections::HashMap::new();
    for (ex, p) in exercises.iter().zip(&prepared) {
        let Some(p) = p.as_ref().filter(|p| !p.features.is_empty()) else {
            continue;
        };
        let bins = [ex.name.clone()];
        let one = build_tests(root, &bins, &p.features, opts, hot, cancel, &mut on_built)?;
        if let Some(exe) = one.executables.get(&ex.name) {
            built.executables.insert(ex.name.clone(), exe.clone());
        } else {
            own_builds.insert(ex.name.clone(), one);
        }
    }
    for (i, v) in verdicts.iter_mut().enumerate() {
        let name = &exercises[i].name;
        if v.is_none() && !built.executables.contains_key(name) {
            *v = Some(build_failure(own_builds.get(name).unwrap_or(&built), name));
        }
        if let Some(v) = v {
            on_done(i, v);
        }
    }
    let todo: Vec<usize> = (0..exercises.len())
        .filter(|&i| verdicts[i].is_none())
        .collect();
    let results = parallel(opts.jobs, &todo, |_, &i| {
        if cancel.is_cancelled() {
            return Err(ExecError::Cancelled);
        }
        let ex = exercises[i];
        let exe = &built.executables[&ex.name];
        let p = prepared[i].as_ref().expect("prepared when not decided");
        let v = run_tests(root, exe, Limits::of(ex), &p.expected, &p.env, cancel)?;
        on_done(i, &v);
        Ok(v)
    });
    for (&i, r) in todo.iter().zip(results) {
        verdicts[i] = Some(r?);
    }
    Ok(verdicts
        .into_iter()
        .map(|v| v.expect("every exercise got a verdict"))
        .collect())
}

/// What is known before building: a missing file, a missing service, or shipped tests that
/// were changed. Otherwise the names of the shipped tests, which must all run and pass, and
/// what the servers give the tests.
fn precheck(
    root: &Path,
    pack: &Pack,
    ex: &Exercise,
    services: &Provided,
) -> Result<Prepared, Verdict> {
    let Ok(mine) = std::fs::read(root.join(ex.path())) else {
        return Err(Verdict::Missing { path: ex.path() });
    };
    let (env, features) = services.for_exercise(ex)?;
    let Some(pristine) = pack.file(&ex.path()) else {
        return Ok(Prepared {
            expected: Vec::new(),
            env,
            features,
        });
    };
    let pristine = String::from_utf8_lossy(&pristine);
    if let Err(t) = protected::check(&pristine, &String::from_utf8_lossy(&mine)) {
        return Err(Verdict::TestsEdited {
            why: format!(
                "{}\nRun `backlings reset {} --tests` to put the shipped tests back; your code stays as it is.",
                t.describe(&ex.path()),
                ex.name
            ),
        });
    }
    Ok(Prepared {
        expected: protected::split(&pristine)
            .map(|(_, region)| protected::test_names(region))
            .unwrap_or_default(),
        env,
        features,
    })
}

fn build_failure(built: &cargo::Built, name: &str) -> Verdict {
    let diagnostics = match built.diagnostics.get(name) {
        Some(d) if !d.errors.is_empty() => sanitize(&d.render(), true),
        _ => {
            let mut text = sanitize(&built.stderr, true);
            if text.contains("edition2024") || text.contains("edition 2024") {
                text.push_str("\nYour Rust toolchain is too old for edition 2024: run `rustup update` (Rust 1.88 or newer).\n");
            }
            text
        }
    };
    Verdict::BuildFailed { diagnostics }
}

/// Runs a test binary directly: no cargo in the loop, our own time limit, memory limit and
/// output cap. `expected` names the shipped tests: a run that passes without running each of
/// them (a crate-level `cfg` that drops them, say) is not a pass. `env` is the servers'.
pub fn run_tests(
    root: &Path,
    exe: &Path,
    limits: Limits,
    expected: &[String],
    env: &[(String, String)],
    cancel: &Cancel,
) -> Result<Verdict, ExecError> {
    let mut cmd = Command::new(exe);
    cmd.args(["--color", "never"])
        .current_dir(root)
        .env("BACKLINGS", "1")
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().map(|(k, v)| (k, v)));
    process::limit_memory(&mut cmd, limits.memory_mib);
    let out = process::run_capped(cmd, Duration::from_secs(limits.timeout_secs), cancel)
        .map_err(|e| ExecError::io(format!("cannot run {}", exe.display()), e))?;
    // Test output reaches the learner's terminal: no control sequences from it.
    let text = sanitize(&out.output.text(), false);
    let parsed = report::parse(&text);
    let mut report = parsed.render().unwrap_or_else(|| text.clone());
    if out.output.omitted() > 0 && !report.contains("bytes of output omitted") {
        // The flood was printed outside libtest's capture: say so, or it silently vanishes.
        report = format!(
            "[... {} bytes of output omitted: the tests printed far too much ...]\n{report}",
            out.output.omitted()
        );
    }
    Ok(match out.exit {
        Exit::Cancelled => return Err(ExecError::Cancelled),
        Exit::TimedOut => Verdict::TimedOut {
            secs: limits.timeout_secs,
            report,
        },
        Exit::Code(0) => match not_passed(&parsed, expected).next() {
            Some(name) => Verdict::TestsEdited {
                why: format!(
                    "The shipped test `{name}` did not run and pass, so this is not a pass. \
                     Something in your code keeps the tests from running as shipped."
                ),
            },
            None => Verdict::Pass { report },
        },
        Exit::Signal(libc::SIGABRT) if out_of_memory(&text) => Verdict::OutOfMemory {
            mib: limits.memory_mib,
            report,
        },
        Exit::Code(_) => Verdict::TestsFailed {
            report,
            failed: parsed.failed(),
        },
        Exit::Signal(sig) => Verdict::TestsFailed {
            report: format!(
                "{report}\nThe test process was killed by signal {sig} (a crash, or it ran out of memory).\n"
            ),
            // The crash took every test that had not passed yet with it.
            failed: not_passed(&parsed, expected)
                .cloned()
                .chain(parsed.failed())
                .collect(),
        },
    })
}

/// The expected tests that the report does not show as passed.
fn not_passed<'a>(
    parsed: &'a report::TestReport,
    expected: &'a [String],
) -> impl Iterator<Item = &'a String> {
    expected.iter().filter(|name| {
        !parsed
            .results
            .iter()
            .any(|(n, o)| n == *name && *o == report::Outcome::Ok)
    })
}

/// How a test process that hit its memory limit is told apart: the limit makes an allocation
/// fail, and Rust's allocation-error handler prints this line and aborts (SIGABRT).
fn out_of_memory(output: &str) -> bool {
    output.contains("memory allocation of ") && output.contains(" bytes failed")
}
