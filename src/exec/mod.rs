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
    NeedsService {
        service: String,
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
            Verdict::NeedsService { service } => format!("needs {service}"),
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
            Verdict::NeedsService { service } => format!(
                "This exercise needs a {service} server, which backlings cannot start here yet. Run `backlings doctor`; it is skipped for now.\n"
            ),
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

/// Builds and tests one exercise in the Cargo package at `root`.
pub fn run_exercise(
    root: &Path,
    pack: &Pack,
    ex: &Exercise,
    opts: Options,
    cancel: &Cancel,
) -> Result<Verdict, ExecError> {
    let expected = match precheck(root, pack, ex) {
        Ok(expected) => expected,
        Err(v) => return Ok(v),
    };
    // Pack checks (`locked`) build exactly as cargo does; learners take the hot path, unless
    // it is turned off (`BACKLINGS_BUILD=cargo`, a rustc wrapper of their own).
    let hot = !opts.locked && capture::enabled().is_ok();
    if hot && let Ok(captured) = capture::current(root, &ex.name) {
        match direct::build(root, &captured, opts.color, cancel)? {
            direct::Direct::Built(exe) => {
                return run_tests(root, &exe, Limits::of(ex), &expected, cancel);
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
    let req = cargo::Request {
        root,
        bins: &bins,
        mode: cargo::Mode::Test,
        color: opts.color,
        locked: opts.locked,
        target_dir: None,
        capture: hot,
    };
    let started = std::time::SystemTime::now();
    let built = cargo::build(&req, cancel, |_| {})?;
    if hot {
        capture::commit(root, &bins, &built.executables, started);
    }
    match built.executables.get(&ex.name) {
        Some(exe) => run_tests(root, exe, Limits::of(ex), &expected, cancel),
        None => Ok(build_failure(&built, &ex.name)),
    }
}

/// Builds many exercises with one cargo invocation (cargo runs rustc in parallel), then runs
/// their tests on `jobs` threads. `on_done` sees each verdict as it lands.
pub fn run_many(
    root: &Path,
    pack: &Pack,
    exercises: &[&Exercise],
    opts: Options,
    cancel: &Cancel,
    on_built: impl FnMut(&str),
    on_done: impl Fn(usize, &Verdict) + Sync,
) -> Result<Vec<Verdict>, ExecError> {
    let mut expected = Vec::with_capacity(exercises.len());
    let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(exercises.len());
    for ex in exercises {
        let (names, verdict) = match precheck(root, pack, ex) {
            Ok(names) => (names, None),
            Err(v) => (Vec::new(), Some(v)),
        };
        expected.push(names);
        verdicts.push(verdict);
    }
    let bins: Vec<String> = exercises
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| v.is_none())
        .map(|(ex, _)| ex.name.clone())
        .collect();
    let built = if bins.is_empty() {
        cargo::Built::default()
    } else {
        let one = if bins.len() == 1 { &bins[..] } else { &[] };
        let req = cargo::Request {
            root,
            bins: one,
            mode: cargo::Mode::Test,
            color: opts.color,
            locked: opts.locked,
            target_dir: None,
            capture: !opts.locked,
        };
        let started = std::time::SystemTime::now();
        let built = cargo::build(&req, cancel, on_built)?;
        if !opts.locked && capture::enabled().is_ok() {
            capture::commit(root, &bins, &built.executables, started);
        }
        built
    };
    for (i, v) in verdicts.iter_mut().enumerate() {
        if v.is_none() && !built.executables.contains_key(&exercises[i].name) {
            *v = Some(build_failure(&built, &exercises[i].name));
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
        let v = run_tests(root, exe, Limits::of(ex), &expected[i], cancel)?;
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
/// were changed. Otherwise the names of the shipped tests, which must all run and pass.
fn precheck(root: &Path, pack: &Pack, ex: &Exercise) -> Result<Vec<String>, Verdict> {
    let Ok(mine) = std::fs::read(root.join(ex.path())) else {
        return Err(Verdict::Missing { path: ex.path() });
    };
    if let Some(s) = ex.requires.first() {
        return Err(Verdict::NeedsService { service: s.clone() });
    }
    let Some(pristine) = pack.file(&ex.path()) else {
        return Ok(Vec::new());
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
    Ok(protected::split(&pristine)
        .map(|(_, region)| protected::test_names(region))
        .unwrap_or_default())
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
/// them (a crate-level `cfg` that drops them, say) is not a pass.
pub fn run_tests(
    root: &Path,
    exe: &Path,
    limits: Limits,
    expected: &[String],
    cancel: &Cancel,
) -> Result<Verdict, ExecError> {
    let mut cmd = Command::new(exe);
    cmd.args(["--color", "never"])
        .current_dir(root)
        .env("BACKLINGS", "1")
        .env("RUST_BACKTRACE", "0");
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
