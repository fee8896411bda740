// mutant: the SIGTERM branch returns `Reason::Interrupt`; the test expects Reason::Terminate
// shutdown2_signals: turn SIGTERM and Ctrl-C into a future
//
// A process is asked to stop with a signal: Ctrl-C in a terminal sends SIGINT, while
// `docker stop`, Kubernetes and systemd send SIGTERM. tokio turns each signal into a stream
// that you can `.await`. The handler must be installed at startup: a signal that arrives before
// any handler exists gets the default action, and the default action for both is to kill the
// process on the spot.
//
// Why it matters: a service that only listens for Ctrl-C shuts down nicely on a laptop, then
// dies mid-request on every deploy, because the orchestrator sends SIGTERM. In Node this is
// `process.on('SIGTERM', ...)`.
//
// What to do: install a SIGTERM stream in `Shutdown::install`, next to the SIGINT one, keep it
// in the struct, and add a branch for it in `recv`. If the test process is killed by signal 15
// (SIGTERM), no SIGTERM handler was installed yet. Run `backlings hint` if you are stuck.

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
    // The SIGTERM stream lives as long as `Shutdown`, so no SIGTERM is missed between
    // startup and the moment `recv` is awaited.
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
            _ = self.terminate.recv() => Reason::Interrupt,
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

    // The only test in this binary: it sends SIGTERM to its own process.
    #[tokio::test]
    async fn sigterm_resolves_recv() {
        // Install first, as a service does at startup; then the signal arrives.
        let mut shutdown = Shutdown::install().expect("installing the signal handlers failed");

        let pid = std::process::id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("could not run `kill`");
        assert!(status.success(), "`kill -TERM {pid}` failed");

        let reason = tokio::time::timeout(Duration::from_secs(1), shutdown.recv())
            .await
            .expect("SIGTERM was sent, but recv() did not complete within 1 s");
        assert_eq!(reason, Reason::Terminate, "expected Reason::Terminate");
        assert_eq!(
            shutdown.recv().now_or_never(),
            None,
            "recv() must wait for the next signal: it completed again with no new signal sent"
        );
    }
}
