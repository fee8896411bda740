// cfg1_env_config: typed config from the environment, every mistake reported at once
//
// A twelve-factor service reads its config from environment variables: the same image runs in
// staging and production with different values. Read them once, at start, into a typed
// struct: a port is a `u16`, an address an `IpAddr`, and a missing required variable or a
// value that does not parse stops the service before it serves anything. The error names the
// variable and the bad value. And it names ALL of them: a deploy with three mistakes should
// fail once, not three times in a row.
//
// The code reads the environment through an injected lookup, `Fn(&str) -> Option<String>`:
// in `main` that is `|k| std::env::var(k).ok()`, in the tests a map. (`std::env::set_var` is
// `unsafe` in edition 2024: other threads may be reading the environment at the same time.)
//
// Why it matters: a release failed in production with "PORT: invalid digit". The fix went out;
// it failed again on DATABASE_URL, then on WORKERS. Three rollbacks for one checklist.
//
// Production caveat: the environment is read once. Kubernetes does not update the environment
// variables of a running container when their ConfigMap changes; the pod has to be restarted.
// (Values mounted as files are updated, eventually.)
//
// What to do: make `load` report every bad or missing variable, not only the first.
// Run `backlings hint` if you are stuck.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub database_url: String,
    pub workers: usize,
}

/// One bad variable.
#[derive(Debug, Clone, PartialEq)]
pub enum VarError {
    Missing(&'static str),
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Every bad variable, in the order of the fields of `Config`.
#[derive(Debug, PartialEq, thiserror::Error)]
pub struct ConfigError(pub Vec<VarError>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for e in &self.0 {
            match e {
                VarError::Missing(name) => write!(f, " {name} is required;")?,
                VarError::Invalid {
                    name,
                    value,
                    reason,
                } => write!(f, " {name}={value:?}: {reason};")?,
            }
        }
        Ok(())
    }
}

/// Reads and parses one variable. An empty value counts as unset (`docker run -e PORT=`).
/// Without a default, an unset variable is `Missing`.
fn var<T>(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Option<T>,
) -> Result<T, VarError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match env(name).filter(|v| !v.is_empty()) {
        Some(value) => value.parse().map_err(|e: T::Err| VarError::Invalid {
            name,
            reason: e.to_string(),
            value,
        }),
        None => default.ok_or(VarError::Missing(name)),
    }
}

/// Reads HOST (default 0.0.0.0), PORT (default 8080), DATABASE_URL (required) and WORKERS
/// (default 4).
pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let host = var(&env, "HOST", Some(IpAddr::from([0, 0, 0, 0])));
    let port = var(&env, "PORT", Some(8080));
    let database_url = var(&env, "DATABASE_URL", None);
    let workers = var(&env, "WORKERS", Some(4));
    // Parse everything first, then fail with every error at once.
    match (host, port, database_url, workers) {
        (Ok(host), Ok(port), Ok(database_url), Ok(workers)) => Ok(Config {
            host,
            port,
            database_url,
            workers,
        }),
        (host, port, database_url, workers) => Err(ConfigError(
            [host.err(), port.err(), database_url.err(), workers.err()]
                .into_iter()
                .flatten()
                .collect(),
        )),
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn names(err: &ConfigError) -> Vec<&'static str> {
        err.0
            .iter()
            .map(|e| match e {
                VarError::Missing(n) | VarError::Invalid { name: n, .. } => *n,
            })
            .collect()
    }

    #[test]
    fn defaults_fill_what_is_unset() {
        let got = load(env(&[("DATABASE_URL", "postgres://db/app")])).unwrap();
        assert_eq!(
            got,
            Config {
                host: IpAddr::from([0, 0, 0, 0]),
                port: 8080,
                database_url: "postgres://db/app".into(),
                workers: 4,
            },
            "only DATABASE_URL set: expected host 0.0.0.0, port 8080, workers 4"
        );
        let got = load(env(&[
            ("HOST", "127.0.0.1"),
            ("PORT", "65535"),
            ("DATABASE_URL", "sqlite://x.db"),
            ("WORKERS", ""),
        ]))
        .unwrap();
        assert_eq!(
            (got.host, got.port, got.workers),
            (IpAddr::from([127, 0, 0, 1]), 65535, 4),
            "PORT=65535 is the largest valid port; WORKERS=\"\" counts as unset (default 4)"
        );
    }

    #[test]
    fn every_bad_variable_is_reported_at_once() {
        let err = load(env(&[("PORT", "70000"), ("WORKERS", "four")])).unwrap_err();
        assert_eq!(
            names(&err),
            ["PORT", "DATABASE_URL", "WORKERS"],
            "PORT=70000 (beyond u16), no DATABASE_URL and WORKERS=four: expected all three \
             errors in field order, got {err}"
        );
        assert_eq!(
            err.0[1],
            VarError::Missing("DATABASE_URL"),
            "an unset required variable is Missing"
        );
        assert!(
            matches!(&err.0[2], VarError::Invalid { name: "WORKERS", value, .. }
                if value == "four"),
            "WORKERS=four is set but bad: expected Invalid with its value, got {:?}",
            err.0[2]
        );
        let err = load(env(&[
            ("HOST", "localhost"),
            ("PORT", "-1"),
            ("DATABASE_URL", ""),
            ("WORKERS", "0x10"),
        ]))
        .unwrap_err();
        assert_eq!(
            names(&err),
            ["HOST", "PORT", "DATABASE_URL", "WORKERS"],
            "HOST=localhost (not an IP), PORT=-1, DATABASE_URL=\"\", WORKERS=0x10: expected all \
             four, got {err}"
        );
        assert!(
            matches!(&err.0[0], VarError::Invalid { name: "HOST", value, .. }
                if value == "localhost"),
            "HOST=localhost is set but bad: expected Invalid with its value, got {:?}",
            err.0[0]
        );
    }

    #[test]
    fn an_invalid_value_is_never_replaced_by_the_default() {
        let err = load(env(&[("DATABASE_URL", "postgres://db"), ("PORT", "80a")])).unwrap_err();
        match &err.0[..] {
            [
                VarError::Invalid {
                    name,
                    value,
                    reason,
                },
            ] => {
                assert_eq!((*name, value.as_str()), ("PORT", "80a"));
                assert!(
                    reason.contains("invalid digit"),
                    "the reason is the parser's message (\"invalid digit found in string\"), got {reason:?}"
                );
            }
            other => panic!("PORT=80a: expected exactly one Invalid error for PORT, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("PORT") && msg.contains("80a"),
            "the message names the variable and its value: {msg}"
        );
        let err = load(env(&[("DATABASE_URL", "x"), ("WORKERS", "1e3")])).unwrap_err();
        assert_eq!(
            names(&err),
            ["WORKERS"],
            "WORKERS=1e3 is not a usize: got {err}"
        );
    }
}
