// intro1_compile_error: read the compiler's error, fix it, save
//
// Welcome! Every exercise is one Rust file like this one: a header that tells you the idea,
// some code with a `// TODO` where you make a change, and tests at the bottom that you must
// not edit. backlings is watching this file: each time you save, it rebuilds and tests it, and
// shows the result. When the tests pass, it moves on to the next exercise by itself.
//
// Why it matters: a backend engineer reads compiler errors all day. Rust's are precise: they
// name the file, the line and what the compiler expected. Read them from the top: one early
// error often causes the ones after it. Each has a code such as E0308, and
// `rustc --explain E0308` prints a long explanation with examples.
//
// What to do: this file does not compile. Read the error on the backlings screen, fix the line
// with the TODO, and save. Press `h` in backlings for a hint, `l` to list every exercise.

/// One line for a status page: "ok: 3 of 3 services up" or "degraded: 2 of 3 services up".
pub fn health_line(up: u32, total: u32) -> String {
    // Both branches of an `if` must have the same type: here, a string.
    let status = if up == total { "ok" } else { "degraded" };
    format!("{status}: {up} of {total} services up")
}

fn main() {
    println!("{}", health_line(2, 3));
}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_services_up_is_ok() {
        for (up, total) in [(3, 3), (1, 1), (12, 12)] {
            let want = format!("ok: {up} of {total} services up");
            assert_eq!(health_line(up, total), want, "expected {want:?}");
        }
    }

    #[test]
    fn some_services_down_is_degraded() {
        for (up, total) in [(2, 3), (0, 3), (11, 12), (0, 1)] {
            let want = format!("degraded: {up} of {total} services up");
            assert_eq!(health_line(up, total), want, "expected {want:?}");
        }
    }
}
