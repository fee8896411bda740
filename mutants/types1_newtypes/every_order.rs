// mutant: lists every order, not only the user's; of_user_lists_only_that_users_orders_sorted expects only alice's 8 orders
// types1_newtypes: make argument mix-ups a compile error
//
// A user id and an order id are both `u64`, so nothing stops `cancel(user_id, order_id)` from
// being called the wrong way round. A newtype, `struct UserId(u64)`, gives each id a type of
// its own: a mix-up no longer compiles, and at run time it costs nothing.
//
// Why it matters: a real incident class. An endpoint took `(account_id, customer_id)`, both
// integers; a refactor swapped two arguments and refunds went to the wrong accounts for a day.
//
// What to do: give `UserId` and `OrderId` the derives the tests need (they do not compile until
// then), then write `Orders::of_user`. Run `backlings hint` if you are stuck.

use std::collections::HashMap;
use std::fmt;

// Ids are small values: `Copy` them freely. `Eq` + `Hash` make them `HashMap` keys, `Ord`
// sorts them, and `Debug` lets `assert_eq!` print them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(u64);

impl UserId {
    pub fn new(raw: u64) -> Self {
        UserId(raw)
    }

    /// The raw number, for the database layer: converting back is explicit.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl OrderId {
    pub fn new(raw: u64) -> Self {
        OrderId(raw)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user:{}", self.0)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "order:{}", self.0)
    }
}

/// Which user placed each order.
#[derive(Default)]
pub struct Orders {
    owner: HashMap<OrderId, UserId>,
}

impl Orders {
    pub fn place(&mut self, order: OrderId, user: UserId) {
        self.owner.insert(order, user);
    }

    /// The orders that `user` placed, sorted by id.
    pub fn of_user(&self, user: UserId) -> Vec<OrderId> {
        let mut orders: Vec<OrderId> = self.owner.iter().map(|(order, _)| *order).collect();
        orders.sort();
        orders
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_with_their_kind() {
        assert_eq!(UserId::new(42).to_string(), "user:42", "expected user:42");
        assert_eq!(OrderId::new(7).to_string(), "order:7", "expected order:7");
        assert_eq!(UserId::new(42).get(), 42, "get() gives the raw id back");
    }

    #[test]
    fn ids_are_copyable_comparable_hashable_keys() {
        let id = UserId::new(1);
        let copy = id;
        assert_eq!(id, copy, "a copied id is equal to the original");
        let mut seen = HashMap::new();
        seen.insert(id, "alice");
        assert_eq!(
            seen.get(&UserId::new(1)),
            Some(&"alice"),
            "ids are HashMap keys"
        );
        assert!(OrderId::new(2) < OrderId::new(10), "ids sort by number");
    }

    #[test]
    fn of_user_lists_only_that_users_orders_sorted() {
        let (alice, bob) = (UserId::new(1), UserId::new(2));
        let mut orders = Orders::default();
        let placed = [
            (30, alice),
            (10, bob),
            (20, alice),
            (5, alice),
            (40, bob),
            (70, alice),
        ];
        let more = [(50, alice), (15, alice), (60, alice), (25, alice)];
        for (order, user) in placed.into_iter().chain(more) {
            orders.place(OrderId::new(order), user);
        }
        let ids = |xs: &[u64]| xs.iter().map(|&x| OrderId::new(x)).collect::<Vec<_>>();
        assert_eq!(
            orders.of_user(alice),
            ids(&[5, 15, 20, 25, 30, 50, 60, 70]),
            "alice's orders, sorted: expected 5, 15, 20, 25, 30, 50, 60, 70"
        );
        assert_eq!(orders.of_user(bob), ids(&[10, 40]), "bob placed 10 and 40");
        assert_eq!(
            orders.of_user(UserId::new(3)),
            vec![],
            "user 3 placed nothing"
        );
    }
}
