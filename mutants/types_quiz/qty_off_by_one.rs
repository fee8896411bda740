// mutant: allows qty 1..1000 exclusive; edge_cases expects qty 1000 to be allowed
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
pub fn validate(req: CreateOrderRequest) -> Result<NewOrder, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut error = |field: String, message| errors.push(FieldError { field, message });

    // Keep going after an error: the client gets every problem in one answer.
    let customer = u64::try_from(req.customer_id)
        .ok()
        .filter(|&id| id > 0)
        .map(CustomerId);
    if customer.is_none() {
        error("customer_id".into(), "must be positive");
    }
    let email = Email::parse(&req.email);
    if email.is_none() {
        error("email".into(), "must be an email address");
    }
    if req.lines.is_empty() {
        error("lines".into(), "must not be empty");
    }
    let mut lines = Vec::new();
    for (i, line) in req.lines.into_iter().enumerate() {
        if line.sku.trim().is_empty() {
            error(format!("lines[{i}].sku"), "must not be empty");
        }
        let qty = u32::try_from(line.qty)
            .ok()
            .filter(|q| (1..MAX_QTY).contains(&i64::from(*q)));
        if qty.is_none() {
            error(format!("lines[{i}].qty"), "must be between 1 and 1000");
        }
        let unit_cents = parse_cents(&line.unit_price);
        if unit_cents.is_none() {
            error(
                format!("lines[{i}].unit_price"),
                "must be an amount like 12.34",
            );
        }
        if let (Some(qty), Some(unit_cents)) = (qty, unit_cents) {
            lines.push(NewLine {
                sku: line.sku,
                qty,
                unit_cents,
            });
        }
    }
    match (customer, email) {
        (Some(customer), Some(email)) if errors.is_empty() => {
            let total_cents = lines.iter().map(|l| u64::from(l.qty) * l.unit_cents).sum();
            Ok(NewOrder {
                customer,
                email,
                lines,
                total_cents,
            })
        }
        _ => Err(errors),
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> CreateOrderRequest {
        serde_json::from_str(json).expect("the request has the right shape")
    }

    fn errors(json: &str) -> Vec<(String, &'static str)> {
        validate(request(json))
            .expect_err("this request is invalid")
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    fn e(field: &str, message: &'static str) -> (String, &'static str) {
        (field.to_string(), message)
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
                lines: vec![
                    NewLine {
                        sku: "book".into(),
                        qty: 2,
                        unit_cents: 1250
                    },
                    NewLine {
                        sku: "pen".into(),
                        qty: 3,
                        unit_cents: 90
                    },
                ],
                total_cents: 2770,
            },
            "2 x 12.50 + 3 x 0.90 = 27.70: expected total_cents 2770"
        );
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        assert_eq!(
            errors(
                r#"{"customer_id": 0, "email": "ada", "lines": [
                    {"sku": "book", "qty": 1, "unit_price": "1.00"},
                    {"sku": " ", "qty": 0, "unit_price": "1.234"}
                ]}"#
            ),
            vec![
                e("customer_id", "must be positive"),
                e("email", "must be an email address"),
                e("lines[1].sku", "must not be empty"),
                e("lines[1].qty", "must be between 1 and 1000"),
                e("lines[1].unit_price", "must be an amount like 12.34"),
            ],
            "expected all five errors, in field order, with the line's index"
        );
    }

    #[test]
    fn edge_cases() {
        assert_eq!(
            errors(r#"{"customer_id": -3, "email": "a@b", "lines": []}"#),
            vec![
                e("customer_id", "must be positive"),
                e("lines", "must not be empty")
            ],
            "a negative id and no lines: expected two errors"
        );
        assert_eq!(
            errors(
                r#"{"customer_id": 1, "email": "a@b", "lines": [
                    {"sku": "x", "qty": 1001, "unit_price": "-1"}
                ]}"#
            ),
            vec![
                e("lines[0].qty", "must be between 1 and 1000"),
                e("lines[0].unit_price", "must be an amount like 12.34"),
            ],
            "qty 1001 is too many and -1 is not an amount"
        );
        let max = validate(request(
            r#"{"customer_id": 1, "email": "a@b", "lines": [{"sku": "x", "qty": 1000, "unit_price": "3"}]}"#,
        ))
        .expect("qty 1000 is allowed");
        assert_eq!(
            max.total_cents, 300_000,
            "1000 x 3.00: expected 300000 cents"
        );
    }
}
