use crate::error::{Error, Result};
use crate::pack::Exercise;
use crate::progress::Progress;
use crate::term::Term;
use crate::workspace::Workspace;
use console::style;
use serde::Serialize;

pub struct Filter {
    pub pending: bool,
    pub done: bool,
    pub topic: Option<String>,
}

impl Filter {
    fn keeps(&self, ex: &Exercise, done: bool) -> bool {
        let topic_ok = self
            .topic
            .as_deref()
            .is_none_or(|t| ex.topic == t || ex.topic.get(3..) == Some(t));
        topic_ok && !(self.pending && done) && (!self.done || done)
    }
}

#[derive(Serialize)]
struct JsonList<'a> {
    done: usize,
    total: usize,
    current: &'a str,
    exercises: Vec<JsonExercise<'a>>,
}

#[derive(Serialize)]
struct JsonExercise<'a> {
    name: &'a str,
    topic: &'a str,
    phase: &'a str,
    path: String,
    status: &'static str,
    current: bool,
    /// An optional track: it needs these servers.
    optional: bool,
    requires: &'a [String],
}

pub fn list(term: &Term, filter: Filter, json: bool) -> Result<i32> {
    let ws = Workspace::find()?;
    // sync: a curriculum update shows up here as it does in watch mode.
    let progress = Progress::new(&ws);
    let state = progress.sync();
    super::show_warnings(term, &progress);
    let state = state?;
    let info = &ws.pack.info;
    if let Some(t) = &filter.topic
        && !info
            .exercises
            .iter()
            .any(|e| &e.topic == t || e.topic.get(3..) == Some(t.as_str()))
    {
        let mut topics: Vec<&str> = info.exercises.iter().map(|e| e.topic.as_str()).collect();
        topics.dedup();
        return Err(Error::usage(format!("there is no topic {t:?}"))
            .help(format!("topics: {}", topics.join(", "))));
    }
    let current = state.current(info).name.as_str();
    if json {
        let exercises = info
            .exercises
            .iter()
            .filter(|e| filter.keeps(e, state.is_done(&e.name)))
            .map(|e| JsonExercise {
                name: &e.name,
                topic: &e.topic,
                phase: &e.phase,
                path: e.path(),
                status: if state.is_done(&e.name) {
                    "done"
                } else {
                    "pending"
                },
                current: e.name == current,
                optional: !e.requires.is_empty(),
                requires: &e.requires,
            })
            .collect();
        let out = JsonList {
            done: state.done_count(info),
            total: info.exercises.len(),
            current,
            exercises,
        };
        term.line(&serde_json::to_string_pretty(&out).expect("serializes"));
        return Ok(0);
    }
    for phase in &info.phases {
        let in_phase: Vec<&Exercise> = info
            .exercises
            .iter()
            .filter(|e| e.phase == phase.name)
            .collect();
        if in_phase.is_empty() {
            continue;
        }
        let done = in_phase.iter().filter(|e| state.is_done(&e.name)).count();
        let shown: Vec<&&Exercise> = in_phase
            .iter()
            .filter(|e| filter.keeps(e, state.is_done(&e.name)))
            .collect();
        if shown.is_empty() {
            continue;
        }
        term.line(&format!(
            "{} {} {done}/{}",
            style(&phase.title).bold(),
            bar(done, in_phase.len(), 20),
            in_phase.len()
        ));
        let mut topic = "";
        for ex in shown {
            if ex.topic != topic {
                topic = &ex.topic;
                let t_all: Vec<_> = in_phase.iter().filter(|e| e.topic == topic).collect();
                let t_done = t_all.iter().filter(|e| state.is_done(&e.name)).count();
                let optional = if t_all.iter().any(|e| !e.requires.is_empty()) {
                    style(" (optional)").dim().to_string()
                } else {
                    String::new()
                };
                term.line(&format!("  {topic} {t_done}/{}{optional}", t_all.len()));
            }
            let (mark, status) = if state.is_done(&ex.name) {
                (style("✓").green(), style("done").green())
            } else {
                (style("·").dim(), style("pending").dim())
            };
            let here = if ex.name == current {
                style(" ← current").yellow().bold().to_string()
            } else {
                String::new()
            };
            let needs = if ex.requires.is_empty() {
                String::new()
            } else {
                style(format!(" (optional: needs {})", ex.requires.join(", ")))
                    .dim()
                    .to_string()
            };
            term.line(&format!("    {mark} {:<36} {status}{needs}{here}", ex.name));
        }
    }
    let done = state.done_count(info);
    term.line(&format!(
        "\n{} {done}/{} exercises done",
        bar(done, info.exercises.len(), 40),
        info.exercises.len()
    ));
    Ok(0)
}

/// A static bar, `[=====     ]`.
pub fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0);
    format!("[{}{}]", "=".repeat(filled), " ".repeat(width - filled))
}
