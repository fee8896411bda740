// shutdown2_signals: turn SIGTERM and Ctrl-C into a future
//
// A process is asked to stop with a signal: Ctrl-C in a terminal sends SIGINT, while
// `docker stop`, Kubernetes and systemd send SIGTERM. tokio turns each signal into a stream
// that you can `.await`. Install every handler at startup: a signal that arrives before its
// handler exists gets the default action, which for both signals ends the process on the spot.
// Once installed, the stream keeps a signal that arrives before anyone awaits it.
//
// Why it matters: a service that only listens for Ctrl-C shuts down nicely on a laptop, then
// dies mid-request on every deploy, because the orchestrator sends SIGTERM. In Node this is
// `process.on('SIGTERM', ...)`.
//
// Production caveat: in a container your service often runs as PID 1, and the kernel sends
// PID 1 of a PID namespace only the signals it has a handler for (pid_namespaces(7)); SIGKILL
// from outside the container is the exception. So with no SIGTERM handler, `docker stop`'s
// SIGTERM is silently ignored, and after its timeout (10 s by default on Linux) Docker sends
// SIGKILL: every deploy waits 10 s and then cuts every request off.
//
// What to do: install a SIGTERM stream in `Shutdown::install`, next to the SIGINT one, keep it
// in the struct, and add a branch for it in `recv`. Run `backlings hint` if you are stuck.

use std::io;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Why the process was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// SIGINT: Ctrl-C in a terminal.
    Interrupt,
    /// SIGTERM: `kill`, `docker stop`, Kubernetes, systemd.
    Terminate,
}

/// The stop signals this process listens for.
pub struct Shutdown {
    interrupt: Signal,
    // The SIGTERM stream lives as long as `Shutdown`, so a SIGTERM that arrives between
    // startup and the moment `recv` is awaited is kept, not lost.
    terminate: Signal,
}

impl Shutdown {
    /// Installs the handlers. Call it at startup, before anything can send a signal.
    pub fn install() -> io::Result<Shutdown> {
        Ok(Shutdown {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Completes when the process is asked to stop, and says why.
    pub async fn recv(&mut self) -> Reason {
        tokio::select! {
            _ = self.interrupt.recv() => Reason::Interrupt,
            _ = self.terminate.recv() => Reason::Terminate,
        }
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::time::Duration;

    const LIMIT: Duration = Duration::from_secs(1);

    /// Sends `signal` (as in `kill -TERM <pid>`) to this test process, then waits until tokio
    /// has handled it: `seen` is the test's own stream for that signal. A stream created only
    /// after this point would miss the signal.
    async fn send(signal: &str, seen: &mut Signal) {
        let pid = std::process::id().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("could not run `kill`");
        assert!(status.success(), "`kill {signal} {pid}` failed");
        tokio::time::timeout(LIMIT, seen.recv())
            .await
            .expect("tokio did not handle the signal within 1 s");
    }

    // The only test in this binary that sends signals, so no other test can be hit by them.
    #[tokio::test]
    async fn each_signal_resolves_recv_with_its_reason() {
        // Install first, as a service does at startup; then the signals arrive.
        let mut shutdown = Shutdown::install().expect("installing the signal handlers failed");
        let mut seen_int = signal(SignalKind::interrupt()).unwrap();
        let mut seen_term = signal(SignalKind::terminate()).unwrap();
        let sequence = [
            ("-INT", Reason::Interrupt),
            ("-TERM", Reason::Terminate),
            ("-TERM", Reason::Terminate),
            ("-INT", Reason::Interrupt),
        ];
        for (i, (name, expected)) in sequence.into_iter().enumerate() {
            let seen = match expected {
                Reason::Interrupt => &mut seen_int,
                Reason::Terminate => &mut seen_term,
            };
            let mut next = Box::pin(shutdown.recv());
            if i < 2 {
                // Delivered before recv() is polled (the first one before recv() was ever
                // polled): only a stream installed at startup has kept it.
                send(name, seen).await;
            } else {
                // Delivered while recv() is already waiting.
                assert_eq!(
                    (&mut next).now_or_never(),
                    None,
                    "recv() must wait for the next signal: it completed with none pending"
                );
                send(name, seen).await;
            }
            let reason = tokio::time::timeout(LIMIT, next).await.unwrap_or_else(|_| {
                panic!(
                    "signal {} of INT, TERM, TERM, INT (`kill {name}`) was delivered, but recv() \
                     did not complete within 1 s: is a handler for it installed at startup?",
                    i + 1
                )
            });
            assert_eq!(
                reason,
                expected,
                "signal {} of INT, TERM, TERM, INT was `kill {name}`: expected {expected:?}",
                i + 1
            );
        }
        assert_eq!(
            shutdown.recv().now_or_never(),
            None,
            "recv() must wait for the next signal: it completed again with no new signal sent"
        );
    }
}
