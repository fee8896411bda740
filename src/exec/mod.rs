//! The hot path: build one exercise's test binary with a single cargo invocation, then run it
//! directly under the runner's own process-group, time-limit and output-cap control.
//! `run`, `verify`, `dev check` and watch mode all go through here, so they can never
//! disagree about whether an exercise passes.
pub mod cargo;
pub mod process;
pub mod report;

use crate::pack::{Exercise, Pack, protected};
use process::{Cancel, Exit};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    Io(String),
}

impl From<ExecError> for crate::error::Error {
    fn from(e: ExecError) -> Self {
        use crate::error::Error;
        match e {
            ExecError::CargoMissing => Error::new("cargo was not found on PATH")
                .help("install Rust with rustup (https://rustup.rs), then open a new terminal"),
            ExecError::Cancelled => Error::new("cancelled"),
            ExecError::Io(m) => Error::new(m),
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
    let bins = [ex.name.clone()];
    let req = cargo::Request {
        root,
        bins: &bins,
        mode: cargo::Mode::Test,
        color: opts.color,
        locked: opts.locked,
        target_dir: None,
    };
    let built = cargo::build(&req, cancel, |_| {})?;
    match built.executables.get(&ex.name) {
        Some(exe) => run_tests(root, exe, ex.timeout_secs, &expected, cancel),
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
        match precheck(root, pack, ex) {
            Ok(names) => {
                expected.push(names);
                verdicts.push(None);
            }
            Err(v) => {
                expected.push(Vec::new());
                verdicts.push(Some(v));
            }
        }
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
        };
        cargo::build(&req, cancel, on_built)?
    };
    for (i, v) in verdicts.iter_mut().enumerate() {
        if v.is_none() && !built.executables.contains_key(&exercises[i].name) {
            *v = Some(build_failure(&built, &exercises[i].name));
        }
        if let Some(v) = v {
            on_done(i, v);
        }
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Verdict>>> =
        verdicts.into_iter().map(std::sync::Mutex::new).collect();
    let failed: std::sync::Mutex<Option<ExecError>> = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, exercises.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= exercises.len() || cancel.is_cancelled() {
                        break;
                    }
                    if slots[i].lock().unwrap().is_some() {
                        continue;
                    }
                    let exe = &built.executables[&exercises[i].name];
                    match run_tests(root, exe, exercises[i].timeout_secs, &expected[i], cancel) {
                        Ok(v) => {
                            on_done(i, &v);
                            *slots[i].lock().unwrap() = Some(v);
                        }
                        Err(e) => *failed.lock().unwrap() = Some(e),
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e);
    }
    if cancel.is_cancelled() {
        return Err(ExecError::Cancelled);
    }
    Ok(slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap()
                .expect("every exercise got a verdict")
        })
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
        Some(d) if !d.errors.is_empty() => d.render(),
        _ => {
            let mut text = built.stderr.clone();
            if text.contains("edition2024") || text.contains("edition 2024") {
                text.push_str("\nYour Rust toolchain is too old for edition 2024: run `rustup update` (Rust 1.88 or newer).\n");
            }
            text
        }
    };
    Verdict::BuildFailed { diagnostics }
}

/// Runs a test binary directly: no cargo in the loop, our own time limit and output cap.
/// `expected` names the shipped tests: a run that passes without running each of them (a
/// crate-level `cfg` that drops them, say) is not a pass.
pub fn run_tests(
    root: &Path,
    exe: &Path,
    timeout_secs: u64,
    expected: &[String],
    cancel: &Cancel,
) -> Result<Verdict, ExecError> {
    let mut cmd = Command::new(exe);
    cmd.args(["--color", "never"])
        .current_dir(root)
        .env("BACKLINGS", "1")
        .env("RUST_BACKTRACE", "0");
    let out = process::run_capped(cmd, Duration::from_secs(timeout_secs), cancel)
        .map_err(|e| ExecError::Io(format!("cannot run {}: {e}", exe.display())))?;
    let text = out.output.text();
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
            secs: timeout_secs,
            report,
        },
        Exit::Code(0) => match expected.iter().find(|name| {
            !parsed
                .results
                .iter()
                .any(|(n, o)| n == *name && *o == report::Outcome::Ok)
        }) {
            Some(name) => Verdict::TestsEdited {
                why: format!(
                    "The shipped test `{name}` did not run and pass, so this is not a pass. \
                     Something in your code keeps the tests from running as shipped."
                ),
            },
            None => Verdict::Pass { report },
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
            failed: expected
                .iter()
                .filter(|name| {
                    !parsed
                        .results
                        .iter()
                        .any(|(n, o)| n == *name && *o == report::Outcome::Ok)
                })
                .cloned()
                .chain(parsed.failed())
                .collect(),
        },
    })
}

/// Runs `f` over `items` on `jobs` threads; results keep the input order.
pub fn parallel<T: Sync, R: Send>(
    jobs: usize,
    items: &[T],
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = f(i, item);
                    *slots[i].lock().unwrap() = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().unwrap().expect("every item ran"))
        .collect()
}
