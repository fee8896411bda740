//! `backlings dev check`: the gate for a pack (PRODUCT.md §5, issue #3). Every exercise must
//! fail as shipped, every solution must pass and be clean, and every mutant (a plausible wrong
//! fix under `mutants/<name>/`) must fail, so that the tests are proven strong, not just red.
//!
//! All variants are bins of one Cargo package under `<pack>/target/backlings-dev-check/`,
//! generated exactly like the learner's manifest, so one `cargo` invocation builds them all in
//! parallel and the build cache survives between checks.
use crate::error::{Context, Error, Result};
use crate::exec::{self, Verdict, cargo, process::Cancel};
use crate::fsutil::write_atomic;
use crate::pack::{Exercise, Pack};
use crate::term::Term;
use crate::workspace::manifest;
use console::style;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub struct Options {
    pub repeat: Option<u32>,
    pub jobs: usize,
    pub only: Vec<String>,
}

/// What a variant of an exercise must do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The exercise as shipped: fails (a time-out only when the pack says so).
    Shipped,
    /// The reference solution: passes.
    Solution,
    /// A plausible wrong fix: fails.
    Mutant,
}

struct Variant<'a> {
    ex: &'a Exercise,
    expect: Expect,
    /// The bin name in the check package.
    bin: String,
    /// The file, absolute.
    file: PathBuf,
    /// Shown in the table, e.g. `mutant then_instead_of_buffered`.
    label: String,
}

/// One row of the result table.
struct Problem {
    exercise: String,
    check: String,
    why: String,
}

pub fn check(term: &Term, pack_dir: &Path, opts: Options) -> Result<i32> {
    let started = Instant::now();
    let pack = Pack::from_dir(pack_dir)?;
    let dir = pack.dir().expect("a pack from a folder").to_path_buf();
    for name in &opts.only {
        if pack.info.exercise(name).is_none() {
            return Err(Error::usage(format!(
                "--only {name}: the pack has no exercise named {name:?}"
            )));
        }
    }
    let selected: Vec<&Exercise> = pack
        .info
        .exercises
        .iter()
        .filter(|e| opts.only.is_empty() || opts.only.contains(&e.name))
        .collect();
    let mut problems = static_checks(&pack, &dir, &selected);
    let variants = variants(&dir, &selected, &mut problems);
    let Some(lock) = pack.deps_lock() else {
        problems.push(Problem {
            exercise: "-".into(),
            check: "deps.lock".into(),
            why: "missing: run `backlings dev lock`".into(),
        });
        return Ok(report(term, &problems, started, 0));
    };
    let work = dir.join("target").join("backlings-dev-check");
    let target_dir = work.join("target");
    let cancel = Cancel::default();

    // 1. Build every variant with one cargo invocation, against the shipped lock file.
    let bins: Vec<(String, String)> = variants
        .iter()
        .map(|v| (v.bin.clone(), v.file.to_string_lossy().into_owned()))
        .collect();
    let variants_pkg = write_package(&work.join("variants"), &pack, &bins, &lock)?;
    let bar = term.progress_bar(
        variants.len() as u64,
        &format!(
            "Building {} variants of {} exercises",
            variants.len(),
            selected.len()
        ),
    );
    let req = cargo::Request {
        root: &variants_pkg,
        bins: &[],
        mode: cargo::Mode::Test,
        color: false,
        locked: true,
        target_dir: Some(&target_dir),
    };
    let built = cargo::build(&req, &cancel, |_| bar.tick())?;
    if lock_out_of_date(&built.stderr) {
        bar.finish_and_clear();
        problems.push(Problem {
            exercise: "-".into(),
            check: "deps.lock".into(),
            why: "does not match deps.toml: run `backlings dev lock`".into(),
        });
        return Ok(report(term, &problems, started, variants.len()));
    }

    // 2. Run each test binary under the same time limit and output cap as a learner's run.
    bar.set_message("testing");
    let verdicts = exec::parallel(opts.jobs, &variants, |_, v| {
        let verdict = match built.executables.get(&v.bin) {
            Some(exe) => exec::run_tests(&variants_pkg, exe, exec::Limits::of(v.ex), &cancel),
            None => Ok(Verdict::BuildFailed {
                diagnostics: built
                    .diagnostics
                    .get(&v.bin)
                    .map(|d| d.render())
                    .unwrap_or_else(|| built.stderr.clone()),
            }),
        };
        bar.inc(1);
        verdict
    });
    bar.finish_and_clear();
    for (v, verdict) in variants.iter().zip(verdicts) {
        let verdict = verdict?;
        if let Some(why) = judge(v, &verdict) {
            problems.push(Problem {
                exercise: v.ex.name.clone(),
                check: v.label.clone(),
                why,
            });
        }
    }

    // 3. Solutions are clippy-clean, as bins and in test cfg, and formatted.
    let solutions: Vec<(String, String)> = variants
        .iter()
        .filter(|v| v.expect == Expect::Solution)
        .map(|v| (v.ex.name.clone(), v.file.to_string_lossy().into_owned()))
        .collect();
    term.line(&format!("Linting {} solutions", solutions.len()));
    let lint_pkg = write_package(&work.join("solutions"), &pack, &solutions, &lock)?;
    let req = cargo::Request {
        root: &lint_pkg,
        bins: &[],
        mode: cargo::Mode::Clippy,
        color: false,
        locked: true,
        target_dir: Some(&target_dir),
    };
    let linted = cargo::build(&req, &cancel, |_| {})?;
    for ex in &selected {
        if let Some(d) = linted.diagnostics.get(&ex.name)
            && !(d.errors.is_empty() && d.warnings.is_empty())
        {
            problems.push(Problem {
                exercise: ex.name.clone(),
                check: "clippy".into(),
                why: first_lines(&d.render(), 12),
            });
        }
    }
    if !linted.success && linted.diagnostics.is_empty() {
        problems.push(Problem {
            exercise: "-".into(),
            check: "clippy".into(),
            why: format!("clippy did not run:\n{}", first_lines(&linted.stderr, 12)),
        });
    }
    problems.extend(rustfmt_check(&dir, &selected));

    // 4. Flakiness: every solution's tests, N times, with the machine busy.
    if let Some(n) = opts.repeat {
        problems.extend(repeat_solutions(
            term,
            &variants_pkg,
            &variants,
            &built,
            n,
            opts.jobs,
            &cancel,
        ));
    }
    Ok(report(term, &problems, started, variants.len()))
}

/// Regenerates `deps.lock` from `deps.toml`.
pub fn lock(term: &Term, pack_dir: &Path) -> Result<i32> {
    let pack = Pack::from_dir(pack_dir)?;
    let dir = pack.dir().expect("a pack from a folder").to_path_buf();
    let pkg = dir.join("target").join("backlings-dev-check").join("lock");
    std::fs::create_dir_all(pkg.join("src"))
        .context(|| format!("cannot create {}", pkg.display()))?;
    write_atomic(&pkg.join("src/main.rs"), b"fn main() {}\n")?;
    let manifest = manifest::with_bins(&pack.deps_toml(), &[("lock".into(), "src/main.rs".into())]);
    write_atomic(&pkg.join("Cargo.toml"), manifest.as_bytes())?;
    let _ = std::fs::remove_file(pkg.join("Cargo.lock"));
    let status = std::process::Command::new("cargo")
        .args(["generate-lockfile", "-q"])
        .current_dir(&pkg)
        .status()
        .map_err(|_| Error::from(exec::ExecError::CargoMissing))?;
    if !status.success() {
        return Err(Error::new("cargo generate-lockfile failed")
            .help("check deps.toml, and that crates.io is reachable"));
    }
    let lock = std::fs::read(pkg.join("Cargo.lock"))?;
    write_atomic(&dir.join("deps.lock"), &lock).context(|| "cannot write deps.lock".into())?;
    term.line(&format!("Wrote {}", dir.join("deps.lock").display()));
    Ok(0)
}

fn static_checks(pack: &Pack, dir: &Path, selected: &[&Exercise]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut add = |ex: &str, check: &str, why: String| {
        problems.push(Problem {
            exercise: ex.into(),
            check: check.into(),
            why,
        })
    };
    for ex in selected {
        match std::fs::read_to_string(dir.join(ex.path())) {
            Ok(text) if !text.contains("TODO") => add(
                &ex.name,
                "TODO marker",
                format!("{} has no `TODO` for the learner", ex.path()),
            ),
            Ok(text) if text.contains("thread::sleep") => add(
                &ex.name,
                "wall-clock sleep",
                format!(
                    "{} calls thread::sleep: tests must not wait on the wall clock; use \
                     #[tokio::test(start_paused = true)], a gate (Notify, Semaphore) or an injected clock",
                    ex.path()
                ),
            ),
            Ok(_) => {}
            Err(e) => add(&ex.name, "exercise file", format!("{}: {e}", ex.path())),
        }
        if !dir.join(ex.solution_path()).is_file() {
            add(
                &ex.name,
                "solution file",
                format!("{} is missing", ex.solution_path()),
            );
        }
        if ex.hints.is_empty() || ex.hints.iter().any(|h| h.trim().is_empty()) {
            add(
                &ex.name,
                "hints",
                "every exercise needs hints, none of them empty".into(),
            );
        }
    }
    // Files nobody would ever see: an unlisted exercise, a solution or mutants without one.
    for (folder, expected) in [
        (
            "exercises",
            pack.info
                .exercises
                .iter()
                .map(|e| e.path())
                .collect::<Vec<_>>(),
        ),
        (
            "solutions",
            pack.info
                .exercises
                .iter()
                .map(|e| e.solution_path())
                .collect(),
        ),
    ] {
        for file in rs_files(&dir.join(folder)) {
            let rel = file
                .strip_prefix(dir)
                .unwrap_or(&file)
                .to_string_lossy()
                .into_owned();
            if !expected.contains(&rel) {
                add(
                    "-",
                    "unlisted file",
                    format!("{rel} is not an exercise in info.toml"),
                );
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("mutants")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if pack.info.exercise(&name).is_none() {
                add(
                    "-",
                    "unlisted file",
                    format!("mutants/{name}/ belongs to no exercise in info.toml"),
                );
            }
        }
    }
    problems
}

fn variants<'a>(
    dir: &Path,
    selected: &[&'a Exercise],
    problems: &mut Vec<Problem>,
) -> Vec<Variant<'a>> {
    let mut out = Vec::new();
    for &ex in selected {
        for (expect, rel, label) in [
            (Expect::Shipped, ex.path(), "as shipped"),
            (Expect::Solution, ex.solution_path(), "solution"),
        ] {
            let file = dir.join(&rel);
            if file.is_file() {
                let bin = format!(
                    "{}__{}",
                    ex.name,
                    if expect == Expect::Shipped {
                        "shipped"
                    } else {
                        "solution"
                    }
                );
                out.push(Variant {
                    ex,
                    expect,
                    bin,
                    file,
                    label: label.into(),
                });
            }
        }
        let mutants = rs_files(&dir.join("mutants").join(&ex.name));
        if mutants.len() < 2 {
            problems.push(Problem {
                exercise: ex.name.clone(),
                check: "mutants".into(),
                why: format!(
                    "{} found under mutants/{}/; keep at least 2 plausible wrong fixes",
                    mutants.len(),
                    ex.name
                ),
            });
        }
        for file in mutants {
            let stem = file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let slug: String = stem
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            let first = std::fs::read_to_string(&file).unwrap_or_default();
            if !first.starts_with("// mutant:") {
                problems.push(Problem {
                    exercise: ex.name.clone(),
                    check: format!("mutant {stem}"),
                    why: "the first line must be `// mutant: <the wrong fix, and why the tests catch it>`".into(),
                });
            }
            out.push(Variant {
                ex,
                expect: Expect::Mutant,
                bin: format!("{}__mutant_{slug}", ex.name),
                file,
                label: format!("mutant {stem}"),
            });
        }
    }
    out
}

/// Why a variant's verdict is wrong, if it is.
fn judge(v: &Variant, verdict: &Verdict) -> Option<String> {
    match (v.expect, verdict) {
        (Expect::Solution, Verdict::Pass { .. }) => None,
        (Expect::Solution, other) => Some(format!(
            "fails ({}):\n{}",
            other.label(),
            first_lines(&other.details(), 15)
        )),
        (_, Verdict::Pass { .. }) => Some(match v.expect {
            Expect::Shipped => "passes as shipped: the learner has nothing to do".into(),
            _ => "passes: the tests do not catch this wrong fix".into(),
        }),
        // A wrong fix the compiler rejects proves nothing about the tests.
        (Expect::Mutant, Verdict::BuildFailed { diagnostics }) => Some(format!(
            "does not compile, so it does not test the tests: a mutant must be a wrong fix that builds\n{}",
            first_lines(diagnostics, 8)
        )),
        (Expect::Mutant, Verdict::TimedOut { secs, .. }) if !v.ex.shipped_times_out => {
            Some(format!(
                "fails only by timing out after {secs} s: wrap what can hang in a (paused-clock) timeout"
            ))
        }
        (Expect::Shipped, Verdict::TimedOut { secs, .. }) if !v.ex.shipped_times_out => {
            Some(format!(
                "fails only by timing out after {secs} s: wrap what can hang in a (paused-clock) timeout, or set shipped_times_out"
            ))
        }
        _ => None,
    }
}

fn rustfmt_check(dir: &Path, selected: &[&Exercise]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for ex in selected {
        for rel in [ex.solution_path(), ex.path()] {
            let file = dir.join(&rel);
            if !file.is_file() {
                continue;
            }
            let out = std::process::Command::new("rustfmt")
                .args(["--edition", "2024", "--check"])
                .arg(&file)
                .output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(_) => problems.push(Problem {
                    exercise: ex.name.clone(),
                    check: "rustfmt".into(),
                    why: format!("{rel} is not formatted: run `rustfmt --edition 2024 {rel}`"),
                }),
                Err(e) => {
                    problems.push(Problem {
                        exercise: "-".into(),
                        check: "rustfmt".into(),
                        why: format!("cannot run rustfmt ({e}): `rustup component add rustfmt`"),
                    });
                    return problems;
                }
            }
        }
    }
    problems
}

/// Runs every solution's tests `n` times while busy threads keep the other cores loaded, and
/// reports every exercise whose tests ever failed.
fn repeat_solutions(
    term: &Term,
    root: &Path,
    variants: &[Variant],
    built: &cargo::Built,
    n: u32,
    jobs: usize,
    cancel: &Cancel,
) -> Vec<Problem> {
    let solutions: Vec<&Variant> = variants
        .iter()
        .filter(|v| v.expect == Expect::Solution && built.executables.contains_key(&v.bin))
        .collect();
    let bar = term.progress_bar(
        solutions.len() as u64 * u64::from(n),
        &format!(
            "Running {} solutions {n} times each, with the cores busy",
            solutions.len()
        ),
    );
    let stop = AtomicBool::new(false);
    let busy = std::thread::available_parallelism().map_or(1, |c| c.get().saturating_sub(1).max(1));
    let failures = std::thread::scope(|s| {
        for _ in 0..busy {
            s.spawn(|| {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            });
        }
        let results = exec::parallel(jobs, &solutions, |_, v| {
            let exe = &built.executables[&v.bin];
            let mut failed = Vec::new();
            for round in 1..=n {
                match exec::run_tests(root, exe, exec::Limits::of(v.ex), cancel) {
                    Ok(Verdict::Pass { .. }) => {}
                    Ok(other) => failed.push((round, other)),
                    Err(e) => failed.push((
                        round,
                        Verdict::TestsFailed {
                            report: e.to_string(),
                        },
                    )),
                }
                bar.inc(1);
            }
            failed
        });
        stop.store(true, Ordering::Relaxed);
        results
    });
    bar.finish_and_clear();
    solutions
        .iter()
        .zip(failures)
        .filter(|(_, f)| !f.is_empty())
        .map(|(v, f)| Problem {
            exercise: v.ex.name.clone(),
            check: format!("repeat {n}"),
            why: format!(
                "failed {} of {n} runs; first (run {}): {}\n{}",
                f.len(),
                f[0].0,
                f[0].1.label(),
                first_lines(&f[0].1.details(), 10)
            ),
        })
        .collect()
}

fn report(term: &Term, problems: &[Problem], started: Instant, variants: usize) -> i32 {
    let secs = started.elapsed().as_secs_f64();
    if problems.is_empty() {
        term.line(&format!(
            "{} dev check passed: {variants} variants built and tested in {secs:.1} s",
            style("✓").green().bold()
        ));
        return 0;
    }
    let w1 = problems
        .iter()
        .map(|p| p.exercise.len())
        .max()
        .unwrap_or(0)
        .max(8);
    let w2 = problems
        .iter()
        .map(|p| p.check.len())
        .max()
        .unwrap_or(0)
        .max(5);
    term.line(&format!("{:<w1$}  {:<w2$}  problem", "exercise", "check"));
    term.line(&format!(
        "{}  {}  {}",
        "-".repeat(w1),
        "-".repeat(w2),
        "-".repeat(40)
    ));
    for p in problems {
        let mut lines = p.why.lines();
        term.line(&format!(
            "{:<w1$}  {:<w2$}  {}",
            p.exercise,
            p.check,
            style(lines.next().unwrap_or("")).red()
        ));
        for l in lines {
            term.line(&format!("{:<w1$}  {:<w2$}    {l}", "", ""));
        }
    }
    term.line(&format!(
        "{} dev check failed: {} problem(s), {variants} variants, {secs:.1} s",
        style("✗").red().bold(),
        problems.len()
    ));
    1
}

fn write_package(
    pkg: &Path,
    pack: &Pack,
    bins: &[(String, String)],
    lock: &[u8],
) -> Result<PathBuf> {
    std::fs::create_dir_all(pkg).context(|| format!("cannot create {}", pkg.display()))?;
    let manifest = manifest::with_bins(&pack.deps_toml(), bins);
    let write = |name: &str, bytes: &[u8]| {
        let path = pkg.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(bytes) {
            write_atomic(&path, bytes).context(|| format!("cannot write {}", path.display()))?;
        }
        Ok::<_, Error>(())
    };
    write("Cargo.toml", manifest.as_bytes())?;
    write("Cargo.lock", lock)?;
    Ok(pkg.to_path_buf())
}

fn lock_out_of_date(stderr: &str) -> bool {
    stderr.contains("needs to be updated") || stderr.contains("--locked was passed")
}

fn rs_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rs_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn first_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    let mut s = lines.iter().take(n).copied().collect::<Vec<_>>().join("\n");
    if lines.len() > n {
        s.push_str(&format!("\n… ({} more lines)", lines.len() - n));
    }
    console::strip_ansi_codes(&s).into_owned()
}
