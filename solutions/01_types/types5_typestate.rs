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
//
// What to do: write `impl Order<Submitted> { pub fn pay(self, payment: PaymentRef) -> Order<Paid> }`.
// The tests do not compile until it exists. Run `backlings hint` if you are stuck.

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

impl Order<Submitted> {
    /// The only way to get an `Order<Paid>`: the lines move along, and the payment is kept.
    pub fn pay(self, payment: PaymentRef) -> Order<Paid> {
        Order {
            lines: self.lines,
            payment: Some(payment),
            state: PhantomData,
        }
    }
}

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

    #[test]
    fn a_paid_order_ships_with_its_lines_and_payment() {
        let submitted = Order::new().add("book", 2).add("pen", 5).submit();
        let paid: Order<Paid> = submitted.pay(PaymentRef("pay_123".into()));
        assert_eq!(
            paid.payment(),
            &PaymentRef("pay_123".into()),
            "the payment given to pay() is kept: expected pay_123"
        );
        let shipment = paid.ship();
        assert_eq!(
            shipment,
            Shipment {
                lines: vec![
                    Line {
                        sku: "book".into(),
                        qty: 2
                    },
                    Line {
                        sku: "pen".into(),
                        qty: 5
                    },
                ],
                payment: PaymentRef("pay_123".into()),
            },
            "the lines travel through every state: expected book x2 and pen x5"
        );
    }

    #[test]
    fn each_payment_is_its_own() {
        let a = Order::new()
            .add("a", 1)
            .submit()
            .pay(PaymentRef("pay_a".into()));
        let b = Order::new()
            .add("b", 1)
            .submit()
            .pay(PaymentRef("pay_b".into()));
        assert_eq!(a.ship().payment.0, "pay_a", "expected pay_a");
        assert_eq!(b.lines()[0].sku, "b", "expected the line b");
        assert_eq!(b.ship().payment.0, "pay_b", "expected pay_b");
    }
}
