// types5_typestate: encode the workflow in types
//
// An order goes Draft -> Submitted -> Paid, and only a paid order may ship. Instead of a
// `status` field checked at run time, give `Order` a type parameter for its state:
// `Order<Draft>`, `Order<Submitted>`, `Order<Paid>`. Each transition consumes the order and
// returns it in the next state, and `ship()` exists only on `Order<Paid>`. Shipping an unpaid
// order is then a compile error, not a bug report. `PhantomData<S>` holds the state type at
// zero cost.
//
// Why it matters: a warehouse once shipped orders whose card payment had failed, because one
// code path forgot `if order.status == Paid`. With typestate there is no such check to forget.
// Caveat: the types guard one process. An order read back from the database has its state in
// a column, so the loader must check that column once and pick the type (e.g. return an enum
// of `Order<Draft>`, `Order<Submitted>`, `Order<Paid>`); the compiler cannot see rows.
//
// What to do: write `pay`, which turns an `Order<Submitted>`, and only that, into an
// `Order<Paid>`. The tests do not compile until it exists, nor if a draft or a paid order
// could call it. Run `backlings hint` if you are stuck.

use std::marker::PhantomData;

pub struct Draft;
pub struct Submitted;
pub struct Paid;

#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRef(pub String);

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub sku: String,
    pub qty: u32,
}

pub struct Order<S> {
    lines: Vec<Line>,
    payment: Option<PaymentRef>,
    state: PhantomData<S>,
}

/// What the warehouse gets.
#[derive(Debug, PartialEq)]
pub struct Shipment {
    pub lines: Vec<Line>,
    pub payment: PaymentRef,
}

impl Order<Draft> {
    pub fn new() -> Self {
        Order {
            lines: Vec::new(),
            payment: None,
            state: PhantomData,
        }
    }

    pub fn add(mut self, sku: &str, qty: u32) -> Self {
        self.lines.push(Line {
            sku: sku.into(),
            qty,
        });
        self
    }

    pub fn submit(self) -> Order<Submitted> {
        Order {
            lines: self.lines,
            payment: None,
            state: PhantomData,
        }
    }
}

impl Default for Order<Draft> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Order<S> {
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }
}

// TODO: add `impl Order<Submitted>` with `pub fn pay(self, payment: PaymentRef) -> Order<Paid>`.
// It moves the lines into the paid order and keeps the payment.

impl Order<Paid> {
    pub fn payment(&self) -> &PaymentRef {
        self.payment.as_ref().expect("a paid order has a payment")
    }

    pub fn ship(self) -> Shipment {
        let payment = self.payment.expect("a paid order has a payment");
        Shipment {
            lines: self.lines,
            payment,
        }
    }
}

fn main() {
    // This is what the types prevent. Uncomment it to see the compiler refuse:
    // Order::new().add("book", 1).ship();
}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    /// What the probes below return: a path such as `Order::<Draft>::pay` finds these trait
    /// methods only when `Order<Draft>` has no method of that name of its own.
    struct Missing;

    trait NoPay {
        fn pay(self, payment: PaymentRef) -> Missing;
    }
    impl NoPay for Order<Draft> {
        fn pay(self, _: PaymentRef) -> Missing {
            Missing
        }
    }
    impl NoPay for Order<Paid> {
        fn pay(self, _: PaymentRef) -> Missing {
            Missing
        }
    }

    trait NoShip {
        fn ship(self) -> Missing;
    }
    impl NoShip for Order<Draft> {
        fn ship(self) -> Missing {
            Missing
        }
    }
    impl NoShip for Order<Submitted> {
        fn ship(self) -> Missing {
            Missing
        }
    }

    #[test]
    fn only_a_submitted_order_can_pay_and_only_a_paid_one_ship() {
        // Checked by the compiler: the exact shape of each transition, taking the order by value.
        let _: fn(Order<Submitted>, PaymentRef) -> Order<Paid> = Order::<Submitted>::pay;
        let _: fn(Order<Paid>) -> Shipment = Order::<Paid>::ship;
        // And its absence elsewhere: if `pay` is written for every state (`impl<S> Order<S>`),
        // these lines find it instead of the stand-ins above, and do not compile.
        let _: fn(Order<Draft>, PaymentRef) -> Missing = Order::<Draft>::pay;
        let _: fn(Order<Paid>, PaymentRef) -> Missing = Order::<Paid>::pay;
        let _: fn(Order<Draft>) -> Missing = Order::<Draft>::ship;
        let _: fn(Order<Submitted>) -> Missing = Order::<Submitted>::ship;
    }

    fn line(sku: &str, qty: u32) -> Line {
        Line {
            sku: sku.into(),
            qty,
        }
    }

    #[test]
    fn a_paid_order_ships_with_its_lines_and_payment() {
        for (lines, payment) in [
            (vec![line("book", 2), line("pen", 5)], "pay_123"),
            (vec![line("lamp", 1)], "pay_9f"),
        ] {
            let mut draft = Order::new();
            for l in &lines {
                draft = draft.add(&l.sku, l.qty);
            }
            let paid: Order<Paid> = draft.submit().pay(PaymentRef(payment.into()));
            assert_eq!(
                paid.payment(),
                &PaymentRef(payment.into()),
                "the payment given to pay() is kept: expected {payment}"
            );
            assert_eq!(
                paid.lines(),
                lines,
                "the lines survive pay(): expected {lines:?}"
            );
            assert_eq!(
                paid.ship(),
                Shipment {
                    lines: lines.clone(),
                    payment: PaymentRef(payment.into()),
                },
                "the shipment carries {lines:?} and {payment}"
            );
        }
    }

    #[test]
    fn each_payment_is_its_own() {
        let a = Order::new()
            .add("a", 1)
            .submit()
            .pay(PaymentRef("pay_a".into()));
        let b = Order::new()
            .add("b", 3)
            .submit()
            .pay(PaymentRef("pay_b".into()));
        assert_eq!(a.ship().payment.0, "pay_a", "expected pay_a");
        assert_eq!(b.lines(), [line("b", 3)], "expected the line b x3");
        assert_eq!(b.ship().payment.0, "pay_b", "expected pay_b");
    }
}
