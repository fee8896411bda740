//! The error a command shows to the learner: what went wrong, and what to do about it.
//!
//! Lower layers return typed errors where a caller acts on them (`exec::ExecError`,
//! `pack::PackError`); everything that is only shown ends up here, with context. There is
//! deliberately no `From<std::io::Error>`: a bare "Permission denied" names no file, so every
//! I/O error goes through `Context` and says which path it was about.
use std::fmt;

#[derive(Debug)]
pub struct Error {
    pub message: String,
    /// One line that tells the learner what to do next.
    pub help: Option<String>,
    /// The process exit code: 1 for failures, 2 for usage errors.
    pub code: i32,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            help: None,
            code: 1,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error {
            code: 2,
            ..Error::new(message)
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Adds what we were doing to an error that is only shown.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::new(format!("{}: {e}", what())))
    }
}
