//! The terminal while watch mode runs: keys without Enter and without echo, and a guarantee
//! that the original settings come back on every way out (`q`, Ctrl-C, SIGTERM, a panic).
//! Signals arrive through `exec::lifetime`, which owns them for every command.
//! Ctrl-C keeps working as a signal (ISIG stays on), so a wedged runner can always be stopped.
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::OnceLock;
use std::sync::mpsc::Sender;

/// The settings found at start; restored by the guard, the panic hook and the signal path.
static ORIGINAL: OnceLock<libc::termios> = OnceLock::new();

/// Keys as the watch loop understands them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Up,
    Down,
    Enter,
    Esc,
    Backspace,
}

pub struct RawMode;

impl RawMode {
    /// Switches stdin to non-canonical, no-echo mode. `None` when stdin is not a terminal.
    pub fn enable() -> Option<RawMode> {
        let fd = io::stdin().as_raw_fd();
        // SAFETY: tcgetattr/tcsetattr on our own stdin with a termios we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return None;
            }
            let _ = ORIGINAL.set(t);
            let mut raw = t;
            raw.c_lflag &= !(libc::ICANON | libc::ECHO);
            raw.c_cc[libc::VMIN] = 1;
            raw.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(fd, libc::TCSANOW, &raw) != 0 {
                return None;
            }
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        Some(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back exactly as it was found. Safe to call more than once.
pub fn restore() {
    if let Some(t) = ORIGINAL.get() {
        // SAFETY: restores settings read from the same descriptor.
        unsafe {
            libc::tcsetattr(io::stdin().as_raw_fd(), libc::TCSANOW, t);
        }
    }
}

/// Reads keys on a thread and sends them on. Ends at EOF (a closed or non-terminal stdin).
pub fn spawn_key_reader<E: Send + 'static>(tx: Sender<E>, wrap: fn(Key) -> E) {
    std::thread::spawn(move || {
        // Unbuffered: a buffered reader would hide bytes from the poll that tells a lone Esc
        // from an arrow key's `ESC [ A`.
        // SAFETY: fd 0 stays open for the life of the process; ManuallyDrop never closes it.
        let mut stdin = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) });
        let stdin = &mut *stdin;
        let mut pending: Option<u8> = None;
        loop {
            let byte = match pending.take() {
                Some(b) => b,
                None => match read_byte(stdin) {
                    Some(b) => b,
                    None => break,
                },
            };
            let key = match byte {
                b'\r' | b'\n' => Key::Enter,
                0x7f | 0x08 => Key::Backspace,
                0x1b => match byte_within(stdin, 30) {
                    // An arrow key is `ESC [ A`; anything else after ESC is a key of its own.
                    Some(b'[') => match read_byte(stdin) {
                        Some(b'A') => Key::Up,
                        Some(b'B') => Key::Down,
                        _ => continue,
                    },
                    Some(other) => {
                        pending = Some(other);
                        Key::Esc
                    }
                    None => Key::Esc,
                },
                b if b.is_ascii() && !b.is_ascii_control() => Key::Char(b as char),
                _ => continue,
            };
            if tx.send(wrap(key)).is_err() {
                break;
            }
        }
    });
}

fn read_byte(stdin: &mut impl Read) -> Option<u8> {
    let mut b = [0u8; 1];
    match stdin.read(&mut b) {
        Ok(1) => Some(b[0]),
        _ => None,
    }
}

/// The next byte if one arrives within `ms` milliseconds: tells a lone Esc from a sequence.
fn byte_within(stdin: &mut impl Read, ms: i32) -> Option<u8> {
    let mut pfd = libc::pollfd {
        fd: io::stdin().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one valid descriptor.
    if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
        return None;
    }
    read_byte(stdin)
}
