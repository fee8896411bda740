//! `backlings dev check --generated`: cargo-mutants over every selected solution. It replaces
//! function bodies with defaults, flips operators and deletes statements in the learner's code
//! (it skips `#[cfg(test)]`, so exactly what a learner edits). A mutant the tests miss is a
//! defect, like a hand-written mutant that passes, unless `mutants/<name>.toml` accepts it with
//! a reason.
//!
//! The solutions are copied into a package of their own, and cargo-mutants runs in place
//! there, once per exercise and several at once, with cargo limited to that exercise's bin and
//! the dev check's target folder, so the dependencies are not built again.
use crate::error::{Context, Error, Result};
use crate::exec::process::{Cancel, Exit, run_capped};
use crate::fsutil::write_atomic;
use crate::pack::mutants::{Accepted, MutantFile};
use crate::pack::{Exercise, Pack};
use crate::term::Term;
use crate::workspace::manifest;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The version CI installs; others work if their outcomes.json has the same shape.
pub const CARGO_MUTANTS_VERSION: &str = "27.1.0";

/// What cargo-mutants found for one exercise.
#[derive(Default)]
pub struct Found {
    pub generated: usize,
    pub caught: usize,
    pub timed_out: usize,
    pub unviable: usize,
    /// Missed mutants that `mutants/<name>.toml` accepts.
    pub accepted: usize,
    /// Missed and not accepted: each is a defect (cargo-mutants' full name, with its line).
    pub missed: Vec<String>,
    /// Accepted entries that no generated mutant matches any more.
    pub stale: Vec<String>,
}

#[derive(Deserialize)]
struct Outcomes {
    outcomes: Vec<Outcome>,
}

#[derive(Deserialize)]
struct Outcome {
    scenario: serde_json::Value,
    summary: String,
}

/// Runs cargo-mutants for each exercise. `Err` when it cannot run at all.
pub fn run(
    term: &Term,
    pack: &Pack,
    exercises: &[&Exercise],
    work: &Path,
    target_dir: &Path,
    jobs: usize,
    cancel: &Cancel,
) -> Result<Vec<Result<Found>>> {
    which::which("cargo-mutants").map_err(|_| {
        Error::new("cargo-mutants is not installed, so the generated mutants cannot be checked")
            .help(format!(
                "install it: `cargo install --locked cargo-mutants --version {CARGO_MUTANTS_VERSION}`"
            ))
    })?;
    let dir = pack.dir().expect("a pack from a folder");
    let pkg = work.join("generated");
    let src = pkg.join("src");
    std::fs::create_dir_all(&src).context(|| format!("cannot create {}", src.display()))?;
    let mut bins = Vec::new();
    for ex in exercises {
        let from = dir.join(ex.solution_path());
        let to = src.join(format!("{}.rs", ex.name));
        // A fresh copy each time: an interrupted run may have left a mutation in place.
        let text = std::fs::read(&from).context(|| format!("cannot read {}", from.display()))?;
        write_atomic(&to, &text).context(|| format!("cannot write {}", to.display()))?;
        bins.push((ex.name.clone(), format!("src/{}.rs", ex.name), Vec::new()));
    }
    let lock = pack.deps_lock().unwrap_or_default();
    let manifest = manifest::with_bins(&pack.deps_toml(), &bins);
    for (name, bytes) in [
        ("Cargo.toml", manifest.as_bytes()),
        ("Cargo.lock", &lock[..]),
    ] {
        let path = pkg.join(name);
        write_atomic(&path, bytes).context(|| format!("cannot write {}", path.display()))?;
    }
    let bar = term.progress_bar(
        exercises.len() as u64,
        &format!(
            "Running cargo-mutants over {} solutions, {jobs} at a time",
            exercises.len()
        ),
    );
    let results = crate::exec::parallel(jobs, exercises, |_, ex| {
        bar.set_message(ex.name.clone());
        let r = one(dir, &pkg, target_dir, ex, cancel);
        bar.inc(1);
        r
    });
    bar.finish_and_clear();
    Ok(results)
}

fn one(dir: &Path, pkg: &Path, target_dir: &Path, ex: &Exercise, cancel: &Cancel) -> Result<Found> {
    let out = pkg.join("out").join(&ex.name);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).context(|| format!("cannot create {}", out.display()))?;
    let mut cmd = Command::new("cargo");
    cmd.args(["mutants", "--in-place", "--no-shuffle", "--baseline=skip"])
        .arg("--file")
        .arg(format!("src/{}.rs", ex.name))
        // Every cargo call builds and tests this exercise's bin only, from the shipped lock.
        .arg(format!("--cargo-arg=--bin={}", ex.name))
        .arg("--cargo-arg=--locked")
        // A hung mutant is cut off well after a healthy run would have finished.
        .args(["--timeout", &(ex.timeout_secs + 20).to_string()])
        // `fn main() {}` is there for cargo; emptying it changes nothing.
        .args(["--exclude-re", r"replace main with \(\)"])
        .arg("--output")
        .arg(&out)
        .current_dir(pkg)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("CARGO_TERM_COLOR", "never");
    let ran = run_capped(cmd, Duration::from_secs(3600), cancel)
        .context(|| "cannot run cargo-mutants".into())?;
    if ran.exit == Exit::Cancelled {
        return Err(Error::new("cancelled"));
    }
    let path = out.join("mutants.out").join("outcomes.json");
    let accepted = accepted_of(dir, ex)?;
    // With nothing to mutate (say, the only function returns `impl Stream`), cargo-mutants
    // says so and writes no outcomes: that is a clean 0 of 0.
    if !path.exists() && ran.exit == Exit::Code(0) && ran.output.text().contains("Found 0 mutants")
    {
        return Ok(tally(&Outcomes { outcomes: vec![] }, &accepted));
    }
    let text = std::fs::read_to_string(&path).map_err(|_| {
        Error::new(format!(
            "cargo-mutants wrote no {}:\n{}",
            path.display(),
            ran.output.text().trim_end()
        ))
    })?;
    let outcomes: Outcomes = serde_json::from_str(&text).map_err(|e| {
        Error::new(format!(
            "{} is not what cargo-mutants {CARGO_MUTANTS_VERSION} writes: {e}",
            path.display()
        ))
    })?;
    Ok(tally(&outcomes, &accepted))
}

fn accepted_of(dir: &Path, ex: &Exercise) -> Result<Vec<Accepted>> {
    let path = dir.join(format!("mutants/{}.toml", ex.name));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    Ok(MutantFile::parse(&text)
        .map_err(|e| Error::new(format!("{}: {e}", path.display())))?
        .accepted)
}

/// `src/x.rs:12:5: replace * with / in total` → `replace * with / in total`: line numbers move
/// whenever the solution changes, the description does not.
pub fn description(name: &str) -> &str {
    let mut rest = name;
    // Strip `file:line:col: `.
    for _ in 0..3 {
        match rest.split_once(':') {
            Some((_, r)) => rest = r,
            None => return name.trim(),
        }
    }
    rest.trim()
}

fn tally(outcomes: &Outcomes, accepted: &[Accepted]) -> Found {
    let mut found = Found::default();
    let mut used = vec![false; accepted.len()];
    for o in &outcomes.outcomes {
        let Some(name) = o
            .scenario
            .get("Mutant")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
        else {
            continue; // the baseline
        };
        found.generated += 1;
        match o.summary.as_str() {
            "CaughtMutant" => found.caught += 1,
            "Timeout" => found.timed_out += 1,
            "Unviable" => found.unviable += 1,
            _ => {
                let desc = description(name);
                match accepted.iter().position(|a| a.mutant == desc) {
                    Some(i) => {
                        used[i] = true;
                        found.accepted += 1;
                    }
                    None => found.missed.push(name.to_string()),
                }
            }
        }
    }
    found.stale = accepted
        .iter()
        .zip(used)
        .filter(|(_, u)| !u)
        .map(|(a, _)| a.mutant.clone())
        .collect();
    found
}

/// The table printed after the run, one row per exercise and a total.
pub fn table(exercises: &[&Exercise], found: &[Result<Found>]) -> Vec<String> {
    let w = exercises
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut rows = vec![format!(
        "{:<w$}  generated  caught  timed out  unviable  accepted  missed",
        "exercise"
    )];
    let mut total = Found::default();
    for (ex, f) in exercises.iter().zip(found) {
        let Ok(f) = f else {
            rows.push(format!("{:<w$}  (did not run)", ex.name));
            continue;
        };
        rows.push(row(&ex.name, w, f));
        total.generated += f.generated;
        total.caught += f.caught;
        total.timed_out += f.timed_out;
        total.unviable += f.unviable;
        total.accepted += f.accepted;
        total.missed.extend(f.missed.iter().cloned());
    }
    rows.push(row("total", w, &total));
    rows
}

fn row(name: &str, w: usize, f: &Found) -> String {
    format!(
        "{name:<w$}  {:>9}  {:>6}  {:>9}  {:>8}  {:>8}  {:>6}",
        f.generated,
        f.caught,
        f.timed_out,
        f.unviable,
        f.accepted,
        f.missed.len()
    )
}

/// Where the outcomes of one exercise are kept, for an author who wants the diffs.
pub fn out_dir(work: &Path, ex: &Exercise) -> PathBuf {
    work.join("generated")
        .join("out")
        .join(&ex.name)
        .join("mutants.out")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_drop_the_location() {
        assert_eq!(
            description("src/x.rs:12:5: replace * with / in total"),
            "replace * with / in total"
        );
        assert_eq!(
            description(
                "src/x.rs:3:1: replace <impl TryFrom<String> for Email>::try_from -> Result<Self, Self::Error> with Ok(Default::default())"
            ),
            "replace <impl TryFrom<String> for Email>::try_from -> Result<Self, Self::Error> with Ok(Default::default())"
        );
    }

    #[test]
    fn missed_mutants_count_unless_accepted_and_stale_acceptances_show() {
        let outcomes: Outcomes = serde_json::from_str(
            r#"{"outcomes": [
                {"scenario": "Baseline", "summary": "Success"},
                {"scenario": {"Mutant": {"name": "src/a.rs:1:1: replace f -> u32 with 0"}}, "summary": "CaughtMutant"},
                {"scenario": {"Mutant": {"name": "src/a.rs:2:1: replace * with / in f"}}, "summary": "MissedMutant"},
                {"scenario": {"Mutant": {"name": "src/a.rs:3:1: replace + with - in f"}}, "summary": "MissedMutant"},
                {"scenario": {"Mutant": {"name": "src/a.rs:4:1: replace f -> u32 with 1"}}, "summary": "Timeout"},
                {"scenario": {"Mutant": {"name": "src/a.rs:5:1: replace g with ()"}}, "summary": "Unviable"}
            ]}"#,
        )
        .unwrap();
        let accepted = vec![
            Accepted {
                mutant: "replace * with / in f".into(),
                why: "times one".into(),
            },
            Accepted {
                mutant: "replace h with ()".into(),
                why: "gone".into(),
            },
        ];
        let f = tally(&outcomes, &accepted);
        assert_eq!(
            (f.generated, f.caught, f.timed_out, f.unviable, f.accepted),
            (5, 1, 1, 1, 1)
        );
        assert_eq!(f.missed, ["src/a.rs:3:1: replace + with - in f"]);
        assert_eq!(f.stale, ["replace h with ()"]);
    }
}
