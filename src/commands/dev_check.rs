//! `backlings dev check`: the gate for a pack (PRODUCT.md §5). Every exercise must fail as
//! shipped, every solution must pass and be clean, its tests must be the exercise's tests byte
//! for byte, and every mutant (`mutants/<name>.toml`: a small change to the solution, a
//! plausible wrong fix or a cheat) must apply and fail the test it names, so that the tests
//! are proven strong, not just red.
//!
//! All variants are bins of one Cargo package under `<pack>/target/backlings-dev-check/`,
//! generated exactly like the learner's manifest, so one `cargo` invocation builds them all in
//! parallel and the build cache survives between checks.
use super::generated;
use crate::error::{Context, Error, Result};
use crate::exec::{self, Verdict, cargo, process::Cancel};
use crate::fsutil::write_atomic;
use crate::pack::mutants::{Kind, Mutant, MutantFile, edits_between};
use crate::pack::{Exercise, Pack, protected};
use crate::term::Term;
use crate::workspace::manifest;
use console::style;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Every exercise keeps at least this many mutants.
const MIN_MUTANTS: usize = 3;

pub struct Options {
    pub repeat: Option<u32>,
    pub jobs: usize,
    pub only: Vec<String>,
    /// Also run cargo-mutants over every selected solution.
    pub generated: bool,
    /// An exercise whose server cannot start is a problem, not a skip (CI).
    pub require_services: bool,
}

/// What a variant of an exercise must do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The exercise as shipped: fails (a time-out only when the pack says so).
    Shipped,
    /// The reference solution: passes, running every shipped test.
    Solution,
    /// A wrong fix or a cheat: fails the test it names.
    Mutant,
}

struct Variant<'a> {
    ex: &'a Exercise,
    expect: Expect,
    /// The bin name in the check package.
    bin: String,
    /// The file, absolute.
    file: PathBuf,
    /// Shown in the table, e.g. `mutant buffer_unordered`.
    label: String,
    /// For a mutant: which test must catch it.
    mutant: Option<Mutant>,
    /// The shipped tests: a solution must run and pass each of them.
    expected: Vec<String>,
}

/// One row of the result table.
struct Problem {
    exercise: String,
    check: String,
    why: String,
}

impl Problem {
    fn new(exercise: &str, check: &str, why: impl Into<String>) -> Problem {
        Problem {
            exercise: exercise.into(),
            check: check.into(),
            why: why.into(),
        }
    }
}

/// The folder where the check's packages live. One per `--only` selection, so that two checks
/// of different exercises at once never rewrite each other's manifest; the target folder (and
/// so the build cache) is shared.
fn work_dir(dir: &Path, only: &[String]) -> (PathBuf, PathBuf) {
    let root = dir.join("target").join("backlings-dev-check");
    let key = if only.is_empty() {
        "all".to_string()
    } else {
        let mut names = only.to_vec();
        names.sort();
        format!("only-{:016x}", fnv1a(names.join(",").as_bytes()))
    };
    (root.join(key), root.join("target"))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn check(term: &Term, pack_dir: &Path, opts: Options) -> Result<i32> {
    let started = Instant::now();
    let pack = Pack::from_dir(pack_dir)?;
    let dir = pack.dir().expect("a pack from a folder").to_path_buf();
    let all_selected = select(&pack, &opts.only)?;
    let (work, target_dir) = work_dir(&dir, &opts.only);
    let mut problems = static_checks(&pack, &dir, &all_selected);
    // Exercises that need a server run against a throwaway one; without it they are skipped,
    // unless servers are required (CI), where that is a problem.
    let needing: Vec<&Exercise> = all_selected
        .iter()
        .copied()
        .filter(|e| !e.requires.is_empty())
        .collect();
    let provided = crate::services::provide(&needing);
    let mut selected = Vec::new();
    let mut skipped = Vec::new();
    for ex in &all_selected {
        match ex.requires.iter().find_map(|s| provided.why_not(s)) {
            None => selected.push(*ex),
            Some(why) if opts.require_services => problems.push(Problem::new(
                &ex.name,
                "services",
                format!("servers are required here, and this one is not available:\n{why}"),
            )),
            Some(_) => skipped.push(ex.name.as_str()),
        }
    }
    if !skipped.is_empty() {
        term.line(&format!(
            "Skipped {} exercise(s) whose server is not available: {} (`backlings doctor` says why; \
             --require-services or {}=1 makes this a failure)",
            skipped.len(),
            skipped.join(", "),
            crate::services::REQUIRE_VAR
        ));
    }
    let features: Vec<String> = {
        let mut f: Vec<String> = selected.iter().flat_map(|e| e.requires.clone()).collect();
        f.sort();
        f.dedup();
        f
    };
    let env_of = |ex: &Exercise| {
        provided
            .for_exercise(ex)
            .map(|(env, _)| env)
            .unwrap_or_default()
    };
    let variants = variants(&dir, &work, &selected, &mut problems)?;
    let Some(lock) = pack.deps_lock() else {
        problems.push(Problem::new(
            "-",
            "deps.lock",
            "missing: run `backlings dev lock`",
        ));
        return Ok(report(term, &problems, started, 0));
    };
    let cancel = Cancel::default();

    // 1. Build every variant with one cargo invocation, against the shipped lock file.
    let bins: Vec<manifest::Bin> = variants
        .iter()
        .map(|v| {
            (
                v.bin.clone(),
                v.file.to_string_lossy().into_owned(),
                v.ex.requires.clone(),
            )
        })
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
        capture: false,
        features: &features,
    };
    let built = cargo::build(&req, &cancel, |_| bar.tick())?;
    if lock_out_of_date(&built.stderr) {
        bar.finish_and_clear();
        problems.push(Problem::new(
            "-",
            "deps.lock",
            "does not match deps.toml: run `backlings dev lock`",
        ));
        return Ok(report(term, &problems, started, variants.len()));
    }

    // 2. Run each test binary under the same time limit and output cap as a learner's run.
    bar.set_message("testing");
    let verdicts = exec::parallel(opts.jobs, &variants, |_, v| {
        let verdict = match built.executables.get(&v.bin) {
            Some(exe) => exec::run_tests(
                &variants_pkg,
                exe,
                exec::Limits::of(v.ex),
                &v.expected,
                &env_of(v.ex),
                &cancel,
            ),
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
        if let Some(why) = judge(v, &verdict?) {
            problems.push(Problem::new(&v.ex.name, &v.label, why));
        }
    }

    // 3. Solutions are clippy-clean, as bins and in test cfg, and formatted.
    let solutions: Vec<manifest::Bin> = variants
        .iter()
        .filter(|v| v.expect == Expect::Solution)
        .map(|v| {
            (
                v.ex.name.clone(),
                v.file.to_string_lossy().into_owned(),
                v.ex.requires.clone(),
            )
        })
        .collect();
    // Every selected exercise may have been skipped (its server is missing): a package
    // with no bins does not parse, so there is nothing to lint.
    if !solutions.is_empty() {
        term.line(&format!("Linting {} solutions", solutions.len()));
        let lint_pkg = write_package(&work.join("solutions"), &pack, &solutions, &lock)?;
        let req = cargo::Request {
            root: &lint_pkg,
            bins: &[],
            mode: cargo::Mode::Clippy,
            color: false,
            locked: true,
            target_dir: Some(&target_dir),
            capture: false,
            features: &features,
        };
        problems.extend(lint_problems(
            &selected,
            cargo::build(&req, &cancel, |_| {})?,
        ));
    }
    problems.extend(rustfmt_check(&dir, &all_selected));

    // 4. Generated mutants: cargo-mutants over the learner's part of every solution. Those
    // that need a server are left to their hand-written mutants: cargo-mutants' own cargo
    // runs know nothing of the runner's servers.
    if opts.generated {
        let plain: Vec<&Exercise> = selected
            .iter()
            .copied()
            .filter(|e| e.requires.is_empty())
            .collect();
        problems.extend(generated_mutants(
            term,
            &pack,
            &plain,
            &work,
            &target_dir,
            opts.jobs,
            &cancel,
        )?);
    }

    // 5. Flakiness: every solution's tests, N times, with the machine busy.
    if let Some(n) = opts.repeat {
        problems.extend(repeat_solutions(
            term,
            &variants_pkg,
            &variants,
            &built,
            n,
            opts.jobs,
            &env_of,
            &cancel,
        ));
    }
    Ok(report(term, &problems, started, variants.len()))
}

/// Runs cargo-mutants, prints its table, and returns a problem for every missed mutant that is
/// not accepted and every acceptance that no longer matches.
fn generated_mutants(
    term: &Term,
    pack: &Pack,
    selected: &[&Exercise],
    work: &Path,
    target_dir: &Path,
    jobs: usize,
    cancel: &Cancel,
) -> Result<Vec<Problem>> {
    let started = Instant::now();
    let found = generated::run(term, pack, selected, work, target_dir, jobs, cancel)?;
    for row in generated::table(selected, &found) {
        term.line(&row);
    }
    term.line(&format!(
        "cargo-mutants took {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    let mut problems = Vec::new();
    for (ex, f) in selected.iter().zip(found) {
        let f = match f {
            Ok(f) => f,
            Err(e) => {
                problems.push(Problem::new(&ex.name, "generated mutants", e.message));
                continue;
            }
        };
        for name in &f.missed {
            problems.push(Problem::new(
                &ex.name,
                "generated mutant",
                format!(
                    "missed: {name}\nstrengthen the tests, or accept it in {} with a reason:\n\
                     [[accepted]]\nmutant = {:?}\nwhy = \"...\"\n(the diff is in {})",
                    mutants_path(ex),
                    generated::description(name),
                    generated::out_dir(work, ex).join("diff").display()
                ),
            ));
        }
        for stale in &f.stale {
            problems.push(Problem::new(
                &ex.name,
                "accepted mutant",
                format!(
                    "{stale:?} is accepted in {} but no generated mutant matches it any more: remove it",
                    mutants_path(ex)
                ),
            ));
        }
    }
    Ok(problems)
}

/// The exercises named by `--only`, or all of them.
fn select<'a>(pack: &'a Pack, only: &[String]) -> Result<Vec<&'a Exercise>> {
    for name in only {
        if pack.info.exercise(name).is_none() {
            return Err(Error::usage(format!(
                "--only {name}: the pack has no exercise named {name:?}"
            )));
        }
    }
    Ok(pack
        .info
        .exercises
        .iter()
        .filter(|e| only.is_empty() || only.contains(&e.name))
        .collect())
}

/// `backlings dev mutant NAME SLUG`: turns an edited copy of the solution into a mutant in
/// `mutants/NAME.toml`, replacing any mutant of the same name.
pub struct NewMutant {
    pub name: String,
    pub slug: String,
    pub file: PathBuf,
    pub catches: String,
    pub why: String,
    pub cheat: bool,
}

pub fn mutant(term: &Term, pack_dir: &Path, m: NewMutant) -> Result<i32> {
    let pack = Pack::from_dir(pack_dir)?;
    let dir = pack.dir().expect("a pack from a folder").to_path_buf();
    let ex = pack.info.exercise(&m.name).ok_or_else(|| {
        Error::usage(format!("the pack has no exercise named {:?}", m.name))
            .help("see the names in info.toml")
    })?;
    if !crate::pack::is_valid_name(&m.slug) {
        return Err(Error::usage(format!(
            "mutant name {:?} must use only a-z, 0-9 and _",
            m.slug
        )));
    }
    let solution = read_text(&dir.join(ex.solution_path()))?;
    let edited = read_text(&m.file)?;
    let edits = edits_between(&solution, &edited);
    let mutant = Mutant {
        name: m.slug.clone(),
        kind: if m.cheat { Kind::Cheat } else { Kind::Wrong },
        why: m.why,
        catches: m.catches,
        edits,
    };
    match mutant.apply(&solution) {
        Ok(text) if text == edited => {}
        Ok(_) => {
            return Err(Error::new(
                "the edits do not reproduce your file (a bug in backlings: please report it)",
            ));
        }
        Err(e) => {
            return Err(Error::new(format!("{}: {e}", m.file.display()))
                .help("change only the code above the tests' banner"));
        }
    }
    let path = dir.join(mutants_path(ex));
    let mut file = if path.is_file() {
        MutantFile::parse(&read_text(&path)?)
            .map_err(|e| Error::new(format!("{}: {e}", path.display())))?
    } else {
        MutantFile::default()
    };
    file.mutants.retain(|old| old.name != mutant.name);
    file.mutants.push(mutant);
    write_atomic(&path, file.to_toml().as_bytes())
        .context(|| format!("cannot write {}", path.display()))?;
    term.line(&format!(
        "Wrote mutant {} to {}. Run `backlings dev check --only {}` to see it caught.",
        m.slug,
        path.display(),
        ex.name
    ));
    Ok(0)
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).context(|| format!("cannot read {}", path.display()))
}

fn mutants_path(ex: &Exercise) -> String {
    format!("mutants/{}.toml", ex.name)
}

/// Regenerates `deps.lock` from `deps.toml`.
pub fn lock(term: &Term, pack_dir: &Path) -> Result<i32> {
    let pack = Pack::from_dir(pack_dir)?;
    let dir = pack.dir().expect("a pack from a folder").to_path_buf();
    let pkg = dir.join("target").join("backlings-dev-check").join("lock");
    std::fs::create_dir_all(pkg.join("src"))
        .context(|| format!("cannot create {}", pkg.display()))?;
    write_atomic(&pkg.join("src/main.rs"), b"fn main() {}\n")
        .context(|| format!("cannot write {}", pkg.join("src/main.rs").display()))?;
    let manifest = manifest::with_bins(
        &pack.deps_toml(),
        &[("lock".into(), "src/main.rs".into(), Vec::new())],
    );
    write_atomic(&pkg.join("Cargo.toml"), manifest.as_bytes())
        .context(|| format!("cannot write {}", pkg.join("Cargo.toml").display()))?;
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
    let lock = std::fs::read(pkg.join("Cargo.lock"))
        .context(|| format!("cannot read {}", pkg.join("Cargo.lock").display()))?;
    write_atomic(&dir.join("deps.lock"), &lock).context(|| "cannot write deps.lock".into())?;
    term.line(&format!("Wrote {}", dir.join("deps.lock").display()));
    Ok(0)
}

fn static_checks(pack: &Pack, dir: &Path, selected: &[&Exercise]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut add = |ex: &str, check: &str, why: String| problems.push(Problem::new(ex, check, why));
    // A service an exercise requires is a cargo feature of the workspace (its bin's
    // `required-features`), which deps.toml must declare.
    let features: Vec<String> = toml::from_str::<toml::Table>(&pack.deps_toml())
        .ok()
        .and_then(|t| t.get("features")?.as_table().cloned())
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    for ex in selected {
        for service in &ex.requires {
            if !features.contains(service) {
                add(
                    &ex.name,
                    "services",
                    format!(
                        "requires {service:?}, but deps.toml declares no feature {service:?}: add \
                         `[features] {service} = [\"dep:<its client crate>\"]` (or `[]`)"
                    ),
                );
            }
        }
    }
    for ex in selected {
        let exercise = std::fs::read_to_string(dir.join(ex.path()));
        match &exercise {
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
        match (
            &exercise,
            std::fs::read_to_string(dir.join(ex.solution_path())),
        ) {
            (_, Err(_)) => add(
                &ex.name,
                "solution file",
                format!("{} is missing", ex.solution_path()),
            ),
            (Ok(exercise), Ok(solution)) => {
                if let Some(why) = tests_differ(ex, exercise, &solution) {
                    add(&ex.name, "protected tests", why);
                }
            }
            (Err(_), Ok(_)) => {}
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
            let file = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                add(
                    "-",
                    "mutants",
                    format!(
                        "mutants/{file}/ is the old format (whole-file copies): keep mutants as \
                         edits in mutants/<exercise>.toml; `backlings dev mutant` writes them"
                    ),
                );
                continue;
            }
            let known = file
                .strip_suffix(".toml")
                .is_some_and(|n| pack.info.exercise(n).is_some());
            if !known {
                add(
                    "-",
                    "unlisted file",
                    format!("mutants/{file} belongs to no exercise in info.toml"),
                );
            }
        }
    }
    problems
}

/// The protected region (banner and tests) of the exercise and its solution must be the same
/// bytes: the learner is judged by the tests the solution was proven against.
fn tests_differ(ex: &Exercise, exercise: &str, solution: &str) -> Option<String> {
    let Some((_, shipped)) = protected::split(exercise) else {
        return Some(format!(
            "{} has no `{} below this line.` banner above its tests",
            ex.path(),
            protected::BANNER
        ));
    };
    let Some((_, solved)) = protected::split(solution) else {
        return Some(format!(
            "{} has no `{} below this line.` banner above its tests",
            ex.solution_path(),
            protected::BANNER
        ));
    };
    if shipped == solved {
        return None;
    }
    let line = shipped
        .lines()
        .zip(solved.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| shipped.lines().count().min(solved.lines().count()));
    Some(format!(
        "the tests below the banner differ between {} and {} (at the banner's line + {line}): they must be identical, byte for byte",
        ex.path(),
        ex.solution_path()
    ))
}

/// The variants to build: each exercise as shipped, its solution, and its mutants (applied to
/// the solution and written under `work/mutants/`).
fn variants<'a>(
    dir: &Path,
    work: &Path,
    selected: &[&'a Exercise],
    problems: &mut Vec<Problem>,
) -> Result<Vec<Variant<'a>>> {
    let mut out = Vec::new();
    let mutant_dir = work.join("mutants");
    std::fs::create_dir_all(&mutant_dir)
        .context(|| format!("cannot create {}", mutant_dir.display()))?;
    for &ex in selected {
        let solution_file = dir.join(ex.solution_path());
        let solution = std::fs::read_to_string(&solution_file).ok();
        let expected = solution
            .as_deref()
            .and_then(protected::split)
            .map(|(_, region)| protected::test_names(region))
            .unwrap_or_default();
        for (expect, rel, label, suffix) in [
            (Expect::Shipped, ex.path(), "as shipped", "shipped"),
            (Expect::Solution, ex.solution_path(), "solution", "solution"),
        ] {
            let file = dir.join(&rel);
            if file.is_file() {
                out.push(Variant {
                    ex,
                    expect,
                    bin: format!("{}__{suffix}", ex.name),
                    file,
                    label: label.into(),
                    mutant: None,
                    expected: expected.clone(),
                });
            }
        }
        let Some(solution) = solution else { continue };
        for (mutant, text) in mutants_of(dir, ex, &solution, &expected, problems) {
            let bin = format!("{}__mutant_{}", ex.name, mutant.name);
            let file = mutant_dir.join(format!("{bin}.rs"));
            if std::fs::read_to_string(&file).ok().as_deref() != Some(&text) {
                write_atomic(&file, text.as_bytes())
                    .context(|| format!("cannot write {}", file.display()))?;
            }
            out.push(Variant {
                ex,
                expect: Expect::Mutant,
                bin,
                file,
                label: format!("mutant {}", mutant.name),
                mutant: Some(mutant),
                expected: expected.clone(),
            });
        }
    }
    Ok(out)
}

/// An exercise's mutants that apply, each with its source; every problem with the file or a
/// mutant is added to `problems`.
fn mutants_of(
    dir: &Path,
    ex: &Exercise,
    solution: &str,
    tests: &[String],
    problems: &mut Vec<Problem>,
) -> Vec<(Mutant, String)> {
    let rel = mutants_path(ex);
    let mut add = |check: String, why: String| problems.push(Problem::new(&ex.name, &check, why));
    let file = match std::fs::read_to_string(dir.join(&rel)) {
        Ok(text) => match MutantFile::parse(&text) {
            Ok(f) => f,
            Err(e) => {
                add("mutants".into(), format!("{rel}: {e}"));
                return Vec::new();
            }
        },
        Err(_) => MutantFile::default(),
    };
    if file.mutants.len() < MIN_MUTANTS {
        add(
            "mutants".into(),
            format!(
                "{} in {rel}; keep at least {MIN_MUTANTS}: plausible wrong fixes and at least one cheat",
                file.mutants.len()
            ),
        );
    }
    if file.no_cheat.is_none() && !file.mutants.iter().any(|m| m.kind == Kind::Cheat) {
        add(
            "mutants".into(),
            format!(
                "{rel} has no cheat (kind = \"cheat\"): a hard-coded answer, the mechanism done once, \
                 validation up front, or the work done inline; or say why none is plausible with `no_cheat = \"...\"`"
            ),
        );
    }
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for m in file.mutants {
        let check = format!("mutant {}", m.name);
        if !crate::pack::is_valid_name(&m.name) || !seen.insert(m.name.clone()) {
            add(
                check,
                "names must be unique within the exercise and use only a-z, 0-9 and _".into(),
            );
            continue;
        }
        if !tests.iter().any(|t| m.is_caught_by(t)) {
            add(
                check,
                format!(
                    "catches = {:?} is not a test of {}; its tests are: {}",
                    m.catches,
                    ex.name,
                    tests.join(", ")
                ),
            );
            continue;
        }
        match m.apply(solution) {
            Ok(text) => out.push((m, text)),
            Err(e) => add(
                check,
                format!(
                    "{e}; the solution changed under it: edit a copy of the solution to show the \
                     mutant again and run `backlings dev mutant {} {}`",
                    ex.name, m.name
                ),
            ),
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
            _ => "passes: the tests do not catch it".into(),
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
        (Expect::Mutant, Verdict::TestsFailed { failed, .. }) => {
            let m = v.mutant.as_ref().expect("a mutant variant has its mutant");
            (!failed.iter().any(|t| m.is_caught_by(t))).then(|| {
                format!(
                    "fails, but not in `{}`, the test it names; failed: {}",
                    m.catches,
                    if failed.is_empty() {
                        "none (a crash?)".to_string()
                    } else {
                        failed.join(", ")
                    }
                )
            })
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
#[allow(clippy::too_many_arguments)]
fn repeat_solutions(
    term: &Term,
    root: &Path,
    variants: &[Variant],
    built: &cargo::Built,
    n: u32,
    jobs: usize,
    env_of: &(dyn Fn(&Exercise) -> Vec<(String, String)> + Sync),
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
            let env = env_of(v.ex);
            for round in 1..=n {
                match exec::run_tests(root, exe, exec::Limits::of(v.ex), &v.expected, &env, cancel)
                {
                    Ok(Verdict::Pass { .. }) => {}
                    Ok(other) => failed.push((round, other)),
                    Err(e) => failed.push((
                        round,
                        Verdict::TestsFailed {
                            report: e.to_string(),
                            failed: Vec::new(),
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

fn write_package(pkg: &Path, pack: &Pack, bins: &[manifest::Bin], lock: &[u8]) -> Result<PathBuf> {
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

/// What clippy found in the solutions, per exercise, or that it did not run at all.
fn lint_problems(selected: &[&Exercise], linted: cargo::Built) -> Vec<Problem> {
    let mut problems = Vec::new();
    for ex in selected {
        if let Some(d) = linted.diagnostics.get(&ex.name)
            && !(d.errors.is_empty() && d.warnings.is_empty())
        {
            problems.push(Problem::new(
                &ex.name,
                "clippy",
                first_lines(&d.render(), 12),
            ));
        }
    }
    if !linted.success && linted.diagnostics.is_empty() {
        problems.push(Problem::new(
            "-",
            "clippy",
            format!("clippy did not run:\n{}", first_lines(&linted.stderr, 12)),
        ));
    }
    problems
}
