// types_quiz: from a JSON request to a domain model, with every error at once
//
// This combines the topic. A `CreateOrderRequest` is what the client sent: loose types, as JSON
// has them. A `NewOrder` is what the domain accepts: typed ids, a valid email, money in cents,
// at least one line. `validate` turns one into the other, and when the request is bad it
// reports every bad field at once, each with its path (`lines[1].qty`), the way a good API
// answers a 422. Stopping at the first error makes clients fix one field per round trip.
//
// Why it matters: this is the boundary where zod (TypeScript) or Pydantic (Python) sit. In
// Rust, serde checks the shape and your `validate` checks the rules; past it, the types keep
// the guarantees, and no handler deep inside needs to check again.
//
// Caveat: money is integer cents, and its arithmetic is checked. `qty * cents` panics on
// overflow in a debug build, and in a release build it silently wraps by default (the Rust
// Reference, "Integer overflow"; Cargo's `overflow-checks`): a huge order can come out cheap.
// `checked_mul` and `checked_add` return `None` instead, and `None` becomes a field error.
//
// What to do: write `validate` (it ships as `todo!()`), using the helpers given.
// Run `backlings hint` if you are stuck.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderRequest {
    pub customer_id: i64,
    pub email: String,
    pub lines: Vec<LineRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    pub sku: String,
    pub qty: i64,
    /// An amount such as "12.34".
    pub unit_price: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerId(u64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, PartialEq, Eq)]
pub struct NewLine {
    pub sku: String,
    pub qty: u32,
    pub unit_cents: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct NewOrder {
    pub customer: CustomerId,
    pub email: Email,
    pub lines: Vec<NewLine>,
    pub total_cents: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The path of the field in the request, e.g. `email` or `lines[1].qty`.
    pub field: String,
    pub message: &'static str,
}

pub const MAX_QTY: i64 = 1000;

impl Email {
    /// Trimmed and lowercased; one `@` with something on each side.
    pub fn parse(raw: &str) -> Option<Email> {
        let email = raw.trim().to_lowercase();
        let (local, domain) = email.split_once('@')?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return None;
        }
        Some(Email(email))
    }
}

/// "12.34" -> 1234, "5" -> 500, "0.5" -> 50. At most two decimals, no sign.
pub fn parse_cents(s: &str) -> Option<u64> {
    let (units, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    if units.is_empty() || frac.len() > 2 || !digits(units) || !digits(frac) {
        return None;
    }
    let frac_cents = format!("{frac:0<2}").parse::<u64>().ok()?;
    units
        .parse::<u64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac_cents)
}

/// Checks every rule and collects every error, in the order of the fields:
/// - `customer_id`: "must be positive"
/// - `email`: "must be an email address"
/// - `lines`: "must not be empty"
/// - `lines[i].sku`: "must not be empty"
/// - `lines[i].qty`: "must be between 1 and 1000"
/// - `lines[i].unit_price`: "must be an amount like 12.34"
/// - `lines`: "total is too large", when the sum of qty x unit_cents does not fit in a u64
pub fn validate(req: CreateOrderRequest) -> Result<NewOrder, Vec<FieldError>> {
    // TODO: check every rule above and collect a `FieldError` for each broken one, without
    // stopping at the first. Return `Ok(NewOrder { .. })` only when there are none; the total
    // is the sum of qty x unit_cents, computed without overflow.
    todo!()
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> CreateOrderRequest {
        serde_json::from_str(json).expect("the request has the right shape")
    }

    /// A request for customer 1, a@b, with these `(sku, qty, unit_price)` lines.
    fn with_lines(lines: &[(&str, i64, &str)]) -> CreateOrderRequest {
        let lines: Vec<String> = lines
            .iter()
            .map(|(sku, qty, price)| {
                format!(r#"{{"sku": "{sku}", "qty": {qty}, "unit_price": "{price}"}}"#)
            })
            .collect();
        request(&format!(
            r#"{{"customer_id": 1, "email": "a@b", "lines": [{}]}}"#,
            lines.join(",")
        ))
    }

    fn errors(req: CreateOrderRequest) -> Vec<(String, &'static str)> {
        validate(req)
            .expect_err("this request is invalid")
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    fn e(field: &str, message: &'static str) -> (String, &'static str) {
        (field.to_string(), message)
    }

    fn line(sku: &str, qty: u32, unit_cents: u64) -> NewLine {
        NewLine {
            sku: sku.into(),
            qty,
            unit_cents,
        }
    }

    #[test]
    fn a_good_request_becomes_a_new_order() {
        let order = validate(request(
            r#"{"customer_id": 7, "email": " Ada@Example.com ", "lines": [
                {"sku": "book", "qty": 2, "unit_price": "12.50"},
                {"sku": "pen", "qty": 3, "unit_price": "0.9"}
            ]}"#,
        ))
        .expect("a valid request");
        assert_eq!(
            order,
            NewOrder {
                customer: CustomerId(7),
                email: Email("ada@example.com".into()),
                lines: vec![line("book", 2, 1250), line("pen", 3, 90)],
                total_cents: 2770,
            },
            "2 x 12.50 + 3 x 0.90 = 27.70: expected total_cents 2770"
        );
        let order = validate(with_lines(&[("lamp", 1000, "3"), ("bulb", 1, "0.05")]))
            .expect("qty 1000 is allowed");
        assert_eq!(
            (order.customer, order.lines, order.total_cents),
            (
                CustomerId(1),
                vec![line("lamp", 1000, 300), line("bulb", 1, 5)],
                300_005
            ),
            "1000 x 3.00 + 1 x 0.05: expected total_cents 300005"
        );
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        assert_eq!(
            errors(request(
                r#"{"customer_id": 0, "email": "ada", "lines": [
                    {"sku": "book", "qty": 1, "unit_price": "1.00"},
                    {"sku": " ", "qty": 0, "unit_price": "1.234"},
                    {"sku": "pen", "qty": 2, "unit_price": "0.10"}
                ]}"#
            )),
            vec![
                e("customer_id", "must be positive"),
                e("email", "must be an email address"),
                e("lines[1].sku", "must not be empty"),
                e("lines[1].qty", "must be between 1 and 1000"),
                e("lines[1].unit_price", "must be an amount like 12.34"),
            ],
            "expected all five errors, in field order, with the bad line's index; good lines add none"
        );
        assert_eq!(
            errors(request(
                r#"{"customer_id": -3, "email": "a@b", "lines": []}"#
            )),
            vec![
                e("customer_id", "must be positive"),
                e("lines", "must not be empty")
            ],
            "a negative id and no lines: expected two errors"
        );
    }

    #[test]
    fn each_email_rule_is_checked() {
        for bad in ["ada", "@b", "a@", "a@b@c", "  "] {
            let req = request(&format!(
                r#"{{"customer_id": 5, "email": "{bad}", "lines": [{{"sku": "x", "qty": 1, "unit_price": "1"}}]}}"#
            ));
            assert_eq!(
                errors(req),
                vec![e("email", "must be an email address")],
                "{bad:?} is not an email address: one thing before the @, one after, one @"
            );
        }
    }

    #[test]
    fn each_amount_rule_is_checked() {
        // "+1" and "1.+5" would pass `parse::<u64>()`: only the digit check refuses them.
        for bad in [
            "-1",
            "+1",
            "1.+5",
            ".5",
            "1.234",
            "1a",
            "1.5x",
            "",
            "18446744073709551616",
        ] {
            assert_eq!(
                errors(with_lines(&[("x", 1, "2.00"), ("y", 1, bad)])),
                vec![e("lines[1].unit_price", "must be an amount like 12.34")],
                "{bad:?} is not an amount: digits, then at most two decimals"
            );
        }
    }

    #[test]
    fn numbers_beyond_the_target_type_are_field_errors() {
        for (qty, why) in [
            (1001, "1001 is over the limit"),
            (
                4_294_967_297,
                "2^32 + 1 does not fit in a u32 (and `as u32` makes it 1)",
            ),
            (-1, "-1 is negative"),
        ] {
            assert_eq!(
                errors(with_lines(&[("x", 2, "1"), ("y", qty, "1")])),
                vec![e("lines[1].qty", "must be between 1 and 1000")],
                "{why}: expected a qty error"
            );
        }
    }

    #[test]
    fn a_total_that_overflows_is_a_field_error_not_a_panic() {
        let too_large = [e("lines", "total is too large")];
        // 1000 x 18446744073709551.00: each price fits in u64 cents, the product does not.
        let product = with_lines(&[("x", 1000, "18446744073709551.00")]);
        assert_eq!(errors(product), too_large, "qty x price overflows a u64");
        // Two lines of 100000000000000000.00 each: 2 x 10^19 cents, over u64::MAX.
        let sum = with_lines(&[
            ("x", 1, "100000000000000000.00"),
            ("y", 1, "100000000000000000.00"),
        ]);
        assert_eq!(
            errors(sum),
            too_large,
            "the sum of two lines overflows a u64"
        );
    }
}
