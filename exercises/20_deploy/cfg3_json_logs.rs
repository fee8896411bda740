// cfg3_json_logs: logs are data: one JSON object per line, filtered, with no secrets
//
// `println!("user {} logged in", user)` is for a human at a terminal. In production a log
// pipeline (Loki, Elasticsearch, CloudWatch) reads the lines, and it can only search what it
// can parse. So each event is one JSON object per line: the time, the level, the message, and
// every field as its own key (`"user":"ada"`), plus the fields of the span it ran in (the
// request id), so one query finds every line of one request. In Rust, the `tracing` macros
// (`info!(user, "login")`) record events with typed fields, and `tracing-subscriber`'s `fmt`
// subscriber writes them; `.json()` makes it JSON, an `EnvFilter` ("info", "debug,db=warn",
// the `RUST_LOG` syntax) drops what is too verbose, and `.with_writer(..)` says where lines go.
//
// A secret must not reach that pipeline. Logging `?request` prints every field of the struct
// with its `Debug`, so the field types must make that safe: a `Secret<T>` whose `Debug` prints
// `[redacted]` is safe however it is logged.
//
// Why it matters: an incident review found API tokens in six months of debug logs; the logs
// had been shipped to a vendor, and every token had to be rotated.
//
// Production caveat: `fmt` writes each line on the thread that logs it: a slow stdout (a
// blocked log collector) blocks your requests. `tracing-appender`'s `non_blocking` writer
// moves the writing to a worker thread, and by default it drops lines when its buffer is full.
//
// What to do: build the subscriber in `json_logger`, and make `Secret`'s `Debug` redact.
// Run `backlings hint` if you are stuck.

use std::fmt;
use tracing::{Subscriber, debug, info, info_span, warn};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::ParseError;
use tracing_subscriber::fmt::MakeWriter;

/// A value that is never printed, whichever way it is logged.
// TODO: a derived `Debug` prints the value. Write `Debug` by hand so it prints `[redacted]`.
#[derive(Debug)]
pub struct Secret<T>(pub T);

/// A JSON-lines subscriber: one object per event, its fields at the top level, events below
/// the `filter` (EnvFilter syntax) dropped, lines written to `writer`. An invalid filter is
/// an error, not a silent default.
pub fn json_logger<W>(
    filter: &str,
    writer: W,
) -> Result<impl Subscriber + Send + Sync + use<W>, ParseError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // TODO: this writes human-readable text at the default level (INFO), whatever `filter`
    // says. Make it JSON with the event's fields at the top level, filtered by `filter`.
    Ok(tracing_subscriber::fmt().with_writer(writer).finish())
}

#[derive(Debug)]
pub struct LoginRequest {
    pub id: u64,
    pub user: String,
    pub password: Secret<String>,
    pub api_token: Secret<String>,
}

/// The service code: it only emits events.
pub fn handle_login(req: &LoginRequest, failed_before: u32) {
    let span = info_span!("request", request_id = req.id);
    let _entered = span.enter();
    debug!(?req, "request received");
    debug!(target: "db", query = "SELECT hash FROM users WHERE name = ?", "query");
    if failed_before >= 3 {
        warn!(user = %req.user, failed_before, "too many failed logins");
    }
    info!(user = %req.user, token = ?req.api_token, "login");
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io::{self, Write};
    use std::sync::{Arc, Mutex};

    /// Captures every byte the subscriber writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Capture {
        type Writer = Capture;
        fn make_writer(&'w self) -> Capture {
            self.clone()
        }
    }

    fn request(id: u64, user: &str, password: &str, token: &str) -> LoginRequest {
        LoginRequest {
            id,
            user: user.into(),
            password: Secret(password.into()),
            api_token: Secret(token.into()),
        }
    }

    /// Runs the logins under `json_logger(filter, ..)` (scoped, no global subscriber) and
    /// returns (the raw output, every line parsed as JSON).
    fn logs(filter: &str, logins: &[(&LoginRequest, u32)]) -> (String, Vec<Value>) {
        let capture = Capture::default();
        let subscriber = json_logger(filter, capture.clone()).expect("a valid filter");
        tracing::subscriber::with_default(subscriber, || {
            for (req, failed) in logins {
                handle_login(req, *failed);
            }
        });
        let raw = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let parsed = raw
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("every line must be one JSON object ({e}): {line}"))
            })
            .collect();
        (raw, parsed)
    }

    fn messages(lines: &[Value]) -> Vec<String> {
        lines
            .iter()
            .map(|l| format!("{} {}", l["level"].as_str().unwrap_or("?"), l["message"]))
            .collect()
    }

    #[test]
    fn each_event_is_one_json_object_with_top_level_fields() {
        let (ada, bob) = (
            request(7, "ada", "pw1", "tok1"),
            request(8, "bob", "pw2", "tok2"),
        );
        let (_, lines) = logs("info", &[(&ada, 0), (&bob, 5)]);
        assert_eq!(
            messages(&lines),
            [
                "INFO \"login\"",
                "WARN \"too many failed logins\"",
                "INFO \"login\""
            ],
            "filter info: expected ada's login, bob's warning and bob's login, one line each, \
             with \"message\" at the top level (flatten the event's fields)"
        );
        for (line, (user, id)) in lines.iter().zip([("ada", 7), ("bob", 8), ("bob", 8)]) {
            assert_eq!(
                line["user"], user,
                "the user field is a top-level key: {line}"
            );
            assert_eq!(
                line["span"]["request_id"], id,
                "the span's request_id is on every line of the request: {line}"
            );
            assert!(
                line["timestamp"].is_string(),
                "each line has a timestamp: {line}"
            );
        }
        assert_eq!(
            lines[1]["failed_before"], 5,
            "numbers stay numbers: {}",
            lines[1]
        );
    }

    #[test]
    fn the_filter_decides_what_is_written() {
        let ada = request(1, "ada", "pw", "tok");
        let (_, lines) = logs("warn", &[(&ada, 0), (&ada, 3)]);
        assert_eq!(
            messages(&lines),
            ["WARN \"too many failed logins\""],
            "filter warn: only the warning (failed_before = 3 is already too many)"
        );
        let (_, lines) = logs("debug,db=warn", &[(&ada, 0)]);
        assert_eq!(
            messages(&lines),
            ["DEBUG \"request received\"", "INFO \"login\""],
            "filter debug,db=warn: debug events except the db target's query"
        );
        let (_, lines) = logs("debug", &[(&ada, 0)]);
        assert_eq!(
            messages(&lines),
            [
                "DEBUG \"request received\"",
                "DEBUG \"query\"",
                "INFO \"login\""
            ],
            "filter debug: every event but the warning"
        );
        assert!(
            json_logger("info,db=loud", Capture::default()).is_err(),
            "\"loud\" is not a level: an invalid filter must be an error, not ignored"
        );
    }

    #[test]
    fn secrets_are_redacted_however_they_are_logged() {
        for (pw, token) in [("hunter2", "tok-123"), ("s3cr3t!", "ghp_abc")] {
            let shown = format!("{:?} {:#?}", Secret(pw), Secret(token.to_string()));
            assert_eq!(
                shown, "[redacted] [redacted]",
                "Secret's Debug, with any value"
            );
            let req = request(3, "eve", pw, token);
            let (raw, lines) = logs("debug", &[(&req, 0)]);
            assert!(
                !raw.contains(pw) && !raw.contains(token),
                "neither the password nor the token may appear anywhere in the logs:\n{raw}"
            );
            let received = lines[0]["req"].as_str().unwrap_or_default();
            assert!(
                received.contains("password: [redacted]") && received.contains("eve"),
                "the request's Debug shows the user and `password: [redacted]`: {received}"
            );
            assert_eq!(
                lines[2]["token"], "[redacted]",
                "the token field: {}",
                lines[2]
            );
        }
    }
}
