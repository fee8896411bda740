// mutant: 500..599 excludes 599; each_class_is_recognised expects 599 to be a server error
// intro2_failing_test: it compiles, but a test fails
//
// This one compiles. One of its tests fails, and the assertion message says what was expected.
// backlings shows failing tests first and hides the output of the passing ones, so the problem
// is at the top of the screen.
//
// Why it matters: HTTP status codes drive retries, alerts and dashboards. A proxy that counts
// a made-up code 600 as a server error pages the on-call engineer for nothing.
//
// What to do: read the failing test's message, fix `status_class`, save. From a second
// terminal, `backlings hint` shows a hint and `backlings list` shows your progress.

/// The class of an HTTP status code. Valid codes are 100 to 599.
pub fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "informational",
        200..=299 => "success",
        300..=399 => "redirect",
        400..=499 => "client error",
        // Ranges in patterns are inclusive with `..=`: 599 is the last server error.
        500..599 => "server error",
        _ => "invalid",
    }
}

fn main() {
    println!("{}", status_class(503));
}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_is_recognised() {
        for (code, class) in [
            (100, "informational"),
            (200, "success"),
            (204, "success"),
            (301, "redirect"),
            (404, "client error"),
            (499, "client error"),
            (500, "server error"),
            (503, "server error"),
            (599, "server error"),
        ] {
            assert_eq!(status_class(code), class, "expected {code} to be a {class}");
        }
    }

    #[test]
    fn codes_outside_100_to_599_are_invalid() {
        for code in [0, 99, 600, 700, 999] {
            assert_eq!(
                status_class(code),
                "invalid",
                "{code} is not an HTTP status code: expected \"invalid\""
            );
        }
    }
}
