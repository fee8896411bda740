//! The `info.toml` model and its validation (PRODUCT.md §4).
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use toml::Spanned;

pub const FORMAT_VERSION: u32 = 1;
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;
/// The test process's address-space limit. Virtual, not resident: tokio's worker threads and
/// malloc's per-thread arenas reserve far more than they touch, and every exercise of the
/// pack passes under this (`dev check` proves it).
pub const DEFAULT_MEMORY_MIB: u64 = 2048;
const MEMORY_MIB_RANGE: std::ops::RangeInclusive<u64> = 64..=65536;
const KNOWN_SERVICES: [&str; 2] = ["postgres", "redis"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInfo {
    format_version: Spanned<u32>,
    welcome_message: String,
    final_message: String,
    #[serde(default)]
    phases: Vec<RawPhase>,
    #[serde(default)]
    exercises: Vec<RawExercise>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    name: Spanned<String>,
    title: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExercise {
    name: Spanned<String>,
    topic: Spanned<String>,
    phase: Spanned<String>,
    #[serde(default)]
    hints: Vec<String>,
    timeout_secs: Option<Spanned<u64>>,
    memory_mib: Option<Spanned<u64>>,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    /// For an exercise that needs a server: the one that teaches the same idea without it.
    instead: Option<Spanned<String>>,
    /// The shipped exercise is expected to fail by hitting its time limit.
    #[serde(default)]
    shipped_times_out: bool,
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub title: String,
}

#[derive(Debug, Clone)]
pub struct Exercise {
    pub name: String,
    pub topic: String,
    pub phase: String,
    pub hints: Vec<String>,
    pub timeout_secs: u64,
    pub memory_mib: u64,
    pub requires: Vec<String>,
    /// The exercise to learn the same idea from when the servers are missing.
    pub instead: Option<String>,
    pub shipped_times_out: bool,
}

impl Exercise {
    /// Path relative to the workspace or pack root.
    pub fn path(&self) -> String {
        format!("exercises/{}/{}.rs", self.topic, self.name)
    }

    pub fn solution_path(&self) -> String {
        format!("solutions/{}/{}.rs", self.topic, self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Info {
    pub welcome_message: String,
    pub final_message: String,
    pub phases: Vec<Phase>,
    pub exercises: Vec<Exercise>,
}

/// A problem in info.toml, located by line and column.
#[derive(Debug)]
pub struct PackError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for PackError {}

struct Locator<'a> {
    text: &'a str,
    file: &'a str,
}

impl Locator<'_> {
    fn err(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> PackError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        PackError {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// Why cargo (or a learner's OS) cannot take `name` as a bin target of the workspace, if so.
/// cargo forbids bins named after its build folders, the package's own crate name would
/// clash, and Windows cannot create files with its reserved device names.
pub fn reserved_name(name: &str) -> Option<&'static str> {
    const CARGO_DIRS: [&str; 4] = ["deps", "examples", "build", "incremental"];
    const WINDOWS: [&str; 4] = ["con", "prn", "aux", "nul"];
    let device = |prefix: &str| {
        name.strip_prefix(prefix)
            .is_some_and(|n| n.len() == 1 && matches!(n.as_bytes()[0], b'1'..=b'9'))
    };
    if CARGO_DIRS.contains(&name) {
        Some("cargo reserves it for a folder of its build directory")
    } else if name == super::PACKAGE.replace('-', "_") {
        Some("it is the crate name of the learner's workspace package")
    } else if WINDOWS.contains(&name) || device("com") || device("lpt") {
        Some("it is a reserved device name on Windows")
    } else {
        None
    }
}

pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `NN_name`: two digits, an underscore, then a valid name. This also keeps every path
/// relative and under `exercises/` (no `/`, no `..`).
fn topic_number(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    let ok = b.len() > 3
        && b[0].is_ascii_digit()
        && b[1].is_ascii_digit()
        && b[2] == b'_'
        && is_valid_name(&s[3..]);
    ok.then(|| s[..2].parse().unwrap())
}

impl Info {
    pub fn parse(text: &str, file: &str) -> Result<Info, PackError> {
        let loc = Locator { text, file };
        let raw: RawInfo = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            loc.err(span, e.message().to_string())
        })?;
        if *raw.format_version.get_ref() != FORMAT_VERSION {
            return Err(loc.err(
                raw.format_version.span(),
                format!(
                    "format_version {} is not supported; this backlings reads format_version {FORMAT_VERSION} (update backlings)",
                    raw.format_version.get_ref()
                ),
            ));
        }
        let mut phases = Vec::new();
        for p in raw.phases {
            if !is_valid_name(p.name.get_ref()) {
                return Err(loc.err(
                    p.name.span(),
                    format!(
                        "phase name {:?} must use only a-z, 0-9 and _",
                        p.name.get_ref()
                    ),
                ));
            }
            phases.push(Phase {
                name: p.name.into_inner(),
                title: p.title,
            });
        }
        let mut names = HashSet::new();
        let mut last_topic = 0;
        let mut exercises = Vec::new();
        let mut insteads = Vec::new();
        for e in raw.exercises {
            let name = e.name.get_ref();
            if !is_valid_name(name) {
                return Err(loc.err(
                    e.name.span(),
                    format!("exercise name {name:?} must use only a-z, 0-9 and _"),
                ));
            }
            if let Some(why) = reserved_name(name) {
                return Err(loc.err(
                    e.name.span(),
                    format!("exercise name {name:?} cannot be used: {why}; choose another name"),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(loc.err(
                    e.name.span(),
                    format!("exercise name {name:?} is listed twice"),
                ));
            }
            let topic = e.topic.get_ref();
            let Some(num) = topic_number(topic) else {
                return Err(loc.err(
                    e.topic.span(),
                    format!("topic {topic:?} must be a folder name like \"01_types\": two digits, '_', then a-z, 0-9 and _"),
                ));
            };
            if num < last_topic {
                return Err(loc.err(
                    e.topic.span(),
                    format!("topic {topic:?} comes after topic number {last_topic:02}: folder numbers must follow the order of the exercises"),
                ));
            }
            last_topic = num;
            if !phases.iter().any(|p| &p.name == e.phase.get_ref()) {
                return Err(loc.err(
                    e.phase.span(),
                    format!(
                        "phase {:?} is not declared in a [[phases]] table",
                        e.phase.get_ref()
                    ),
                ));
            }
            let timeout_secs = match e.timeout_secs {
                Some(t) if !(1..=600).contains(t.get_ref()) => {
                    return Err(loc.err(t.span(), "timeout_secs must be between 1 and 600"));
                }
                Some(t) => t.into_inner(),
                None => DEFAULT_TIMEOUT_SECS,
            };
            let memory_mib = match e.memory_mib {
                Some(m) if !MEMORY_MIB_RANGE.contains(m.get_ref()) => {
                    return Err(loc.err(m.span(), "memory_mib must be between 64 and 65536"));
                }
                Some(m) => m.into_inner(),
                None => DEFAULT_MEMORY_MIB,
            };
            let mut requires = Vec::new();
            for r in e.requires {
                if !KNOWN_SERVICES.contains(&r.get_ref().as_str()) {
                    return Err(loc.err(
                        r.span(),
                        format!(
                            "unknown service {:?}: expected one of {KNOWN_SERVICES:?}",
                            r.get_ref()
                        ),
                    ));
                }
                requires.push(r.into_inner());
            }
            if let Some(i) = &e.instead {
                insteads.push(i.clone());
            }
            exercises.push(Exercise {
                name: e.name.into_inner(),
                topic: e.topic.into_inner(),
                phase: e.phase.into_inner(),
                hints: e.hints,
                timeout_secs,
                memory_mib,
                requires,
                instead: e.instead.map(Spanned::into_inner),
                shipped_times_out: e.shipped_times_out,
            });
        }
        for i in insteads {
            match exercises.iter().find(|e| &e.name == i.get_ref()) {
                None => {
                    return Err(loc.err(
                        i.span(),
                        format!("instead = {:?} names no exercise of this pack", i.get_ref()),
                    ));
                }
                Some(e) if !e.requires.is_empty() => {
                    return Err(loc.err(
                        i.span(),
                        format!(
                            "instead = {:?} needs a server itself: name an exercise that runs without one",
                            i.get_ref()
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if exercises.is_empty() {
            return Err(loc.err(0..0, "the pack lists no [[exercises]]"));
        }
        Ok(Info {
            welcome_message: raw.welcome_message,
            final_message: raw.final_message,
            phases,
            exercises,
        })
    }

    pub fn exercise(&self, name: &str) -> Option<&Exercise> {
        self.exercises.iter().find(|e| e.name == name)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.exercises.iter().position(|e| e.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "format_version = 1\nwelcome_message = \"hi\"\nfinal_message = \"bye\"\n[[phases]]\nname = \"p\"\ntitle = \"P\"\n";

    fn parse(body: &str) -> Result<Info, PackError> {
        Info::parse(&format!("{HEAD}{body}"), "info.toml")
    }

    fn ex(name: &str, topic: &str) -> String {
        format!(
            "[[exercises]]\nname = \"{name}\"\ntopic = \"{topic}\"\nphase = \"p\"\nhints = [\"h\"]\n"
        )
    }

    #[test]
    fn parses_a_valid_pack_in_order() {
        let info = parse(&(ex("a1", "00_intro") + &ex("b1", "01_types"))).unwrap();
        let names: Vec<_> = info.exercises.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a1", "b1"]);
        assert_eq!(info.exercises[1].path(), "exercises/01_types/b1.rs");
        assert_eq!(info.exercises[0].timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert_eq!(info.exercises[0].memory_mib, DEFAULT_MEMORY_MIB);
    }

    #[test]
    fn memory_mib_is_read_and_bounded() {
        let info = parse(&(ex("a", "00_x") + "memory_mib = 256\n")).unwrap();
        assert_eq!(info.exercises[0].memory_mib, 256);
        let err = parse(&(ex("a", "00_x") + "memory_mib = 8\n")).unwrap_err();
        assert_eq!((err.line, err.column), (12, 14), "{err}");
        assert!(err.message.contains("between 64 and 65536"), "{err}");
    }

    #[test]
    fn rejects_a_bad_name_with_its_line_and_column() {
        let err = parse(&ex("Bad-Name", "00_intro")).unwrap_err();
        assert_eq!((err.line, err.column), (8, 8), "{err}");
        assert!(err.message.contains("Bad-Name"), "{err}");
    }

    #[test]
    fn rejects_duplicates_path_escapes_and_order() {
        assert!(
            parse(&(ex("a", "00_x") + &ex("a", "00_x")))
                .unwrap_err()
                .message
                .contains("twice")
        );
        assert!(
            parse(&ex("a", "../x"))
                .unwrap_err()
                .message
                .contains("topic")
        );
        assert!(
            parse(&ex("a", "00_x/y"))
                .unwrap_err()
                .message
                .contains("topic")
        );
        assert!(
            parse(&(ex("a", "02_x") + &ex("b", "01_y")))
                .unwrap_err()
                .message
                .contains("order")
        );
    }

    #[test]
    fn rejects_names_cargo_reserves_with_line_and_column() {
        for name in [
            "deps",
            "examples",
            "build",
            "incremental",
            "backlings_exercises",
            "con",
            "lpt1",
        ] {
            let err = parse(&ex(name, "00_intro")).unwrap_err();
            assert_eq!((err.line, err.column), (8, 8), "{name}: {err}");
            assert!(err.message.contains("cannot be used"), "{err}");
        }
        assert!(parse(&ex("builder", "00_intro")).is_ok());
        assert!(parse(&ex("com10", "00_intro")).is_ok());
    }

    #[test]
    fn reports_toml_syntax_errors_with_position() {
        let err = Info::parse("format_version = 1\nwelcome_message = \n", "info.toml").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn rejects_unknown_fields_services_and_phases() {
        assert!(
            parse(&(ex("a", "00_x") + "colour = 1\n"))
                .unwrap_err()
                .message
                .contains("colour")
        );
        assert!(
            parse(&(ex("a", "00_x") + "requires = [\"mysql\"]\n"))
                .unwrap_err()
                .message
                .contains("mysql")
        );
        let err =
            parse(&(ex("a", "00_x") + "requires = [\"redis\"]\ninstead = \"nope\"\n")).unwrap_err();
        assert!(err.message.contains("names no exercise"), "{err}");
        assert_eq!(err.line, 13, "{err}");
        let info = parse(
            &(ex("b", "00_x") + &ex("a", "00_x") + "requires = [\"redis\"]\ninstead = \"b\"\n"),
        )
        .unwrap();
        assert_eq!(info.exercises[1].instead.as_deref(), Some("b"));
        let err = parse(
            &(ex("b", "00_x")
                + "requires = [\"postgres\"]\n"
                + &ex("a", "00_x")
                + "requires = [\"redis\"]\ninstead = \"b\"\n"),
        )
        .unwrap_err();
        assert!(err.message.contains("needs a server itself"), "{err}");
        let err =
            parse("[[exercises]]\nname = \"a\"\ntopic = \"00_x\"\nphase = \"nope\"\n").unwrap_err();
        assert!(err.message.contains("nope"), "{err}");
    }
}
