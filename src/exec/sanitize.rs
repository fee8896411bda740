//! Output that came from a test or the compiler is shown on the learner's terminal: it must not
//! be able to clear the screen, move the cursor, retitle the window or switch modes. Every
//! escape and control sequence is removed; colour (SGR, `ESC [ ... m`) is kept only where the
//! caller asks, for cargo's own rendered diagnostics. The runner adds its own colour afterwards.

/// Removes control sequences and control characters other than newline and tab. A lone
/// carriage return becomes a newline, so it cannot overwrite a line already shown.
pub fn sanitize(text: &str, keep_colour: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\x1b' => match chars.next() {
                Some('[') => {
                    let seq = csi(&mut chars);
                    if keep_colour && is_sgr(&seq) {
                        out.push_str("\x1b[");
                        out.push_str(&seq);
                    }
                }
                // OSC (title, links, clipboard), DCS, SOS, PM, APC: strings up to ST or BEL.
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // Any other escape: two characters (charset selection, keypad modes, RIS).
                _ => {}
            },
            // The 8-bit CSI and the other C1 controls.
            '\u{9b}' => {
                csi(&mut chars);
            }
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Consumes a CSI sequence's parameters, intermediates and final byte; returns them.
fn csi(chars: &mut std::iter::Peekable<std::str::Chars>) -> String {
    let mut seq = String::new();
    for c in chars.by_ref() {
        seq.push(c);
        if ('\x40'..='\x7e').contains(&c) {
            break;
        }
        if !('\x20'..='\x3f').contains(&c) {
            // Not a CSI byte: the sequence is broken; drop what was read.
            break;
        }
    }
    seq
}

fn is_sgr(seq: &str) -> bool {
    seq.strip_suffix('m')
        .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit() || b == b';'))
}

/// Skips a control string up to its terminator: BEL, ST (`ESC \`) or the 8-bit ST.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars>) {
    while let Some(c) = chars.next() {
        match c {
            '\x07' | '\u{9c}' => return,
            '\x1b' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn screen_and_cursor_control_is_removed() {
        let hostile = "a\x1b[2J\x1b[Hb\x1b[10;20Hc\x1b[?1049h\x1bcd\u{9b}2Je\x07\x08f";
        assert_eq!(sanitize(hostile, false), "abcdef");
        assert_eq!(sanitize(hostile, true), "abcdef");
    }

    #[test]
    fn titles_and_links_are_removed_with_their_text() {
        let s = "x\x1b]0;TITLE\x07y\x1b]8;;http://e\x1b\\link\x1b]8;;\x1b\\z\u{9d}2;T\u{9c}!";
        assert_eq!(sanitize(s, true), "xylinkz!");
    }

    #[test]
    fn colour_is_kept_only_when_asked() {
        let s = "\x1b[1;31merror\x1b[0m: \x1b[38;5;12mhere\x1b[m";
        assert_eq!(sanitize(s, true), s);
        assert_eq!(sanitize(s, false), "error: here");
    }

    #[test]
    fn carriage_returns_cannot_overwrite_a_line() {
        assert_eq!(sanitize("one\r\ntwo\rTWO\n", false), "one\ntwo\nTWO\n");
    }
}
