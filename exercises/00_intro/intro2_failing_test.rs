// intro2_failing_test: it compiles, but a test fails
//
// This one compiles. One of its tests fails, and the assertion message says what was expected.
// backlings shows failing tests first and hides the output of the passing ones, so the problem
// is at the top of the screen.
//
// Why it matters: status classes drive dashboards and alerts. Valid codes are 100 to 599
// (RFC 9110, section 15); implementations often use 600 to 999 for their own errors. A log
// pipeline that counts every code from 500 up as "server error" blames your servers for a
// client's bug. Caveat: "invalid" is a label for metrics, not a verdict. RFC 9110 says a
// client that receives an invalid code SHOULD handle the response as if it were a 5xx.
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
        // TODO: a test fails. Read its message: which codes does this arm catch?
        500.. => "server error",
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

    #[test]
    fn every_u16_gets_the_class_of_its_first_digit() {
        // Every possible input, so no list of special cases can pass.
        for code in 0..=u16::MAX {
            let want = match code / 100 {
                1 => "informational",
                2 => "success",
                3 => "redirect",
                4 => "client error",
                5 => "server error",
                _ => "invalid",
            };
            assert_eq!(status_class(code), want, "expected {code} to be {want:?}");
        }
    }
}
