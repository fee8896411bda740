// mutant: the word "down" instead of "degraded"; some_services_down_is_degraded expects "degraded: 2 of 3 services up"
// intro1_compile_error: read the compiler's error, fix it, save
//
// Welcome! Every exercise is one Rust file like this one: a header that tells you the idea,
// some code with a `// TODO` where you make a change, and tests at the bottom that you must
// not edit. backlings is watching this file: each time you save, it rebuilds and tests it, and
// shows the result. When the tests pass, it moves on to the next exercise by itself.
//
// Why it matters: a backend engineer reads compiler errors all day. Rust's are precise: they
// name the file, the line and what the compiler expected. Read them from the top.
//
// What to do: this file does not compile. Read the error on the backlings screen, fix the line
// with the TODO, and save. Press `h` in backlings for a hint, `l` to list every exercise.

/// One line for a status page: "ok: 3 of 3 services up" or "degraded: 2 of 3 services up".
pub fn health_line(up: u32, total: u32) -> String {
    // Both branches of an `if` must have the same type: here, a string.
    let status = if up == total { "ok" } else { "down" };
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
        assert_eq!(
            health_line(3, 3),
            "ok: 3 of 3 services up",
            "expected \"ok: 3 of 3 services up\""
        );
    }

    #[test]
    fn some_services_down_is_degraded() {
        assert_eq!(
            health_line(2, 3),
            "degraded: 2 of 3 services up",
            "expected \"degraded: 2 of 3 services up\""
        );
        assert_eq!(
            health_line(0, 3),
            "degraded: 0 of 3 services up",
            "expected \"degraded: 0 of 3 services up\""
        );
    }
}
