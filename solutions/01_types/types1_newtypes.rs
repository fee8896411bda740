// types1_newtypes: make argument mix-ups a compile error
//
// A user id and an order id are both `u64`, so nothing stops `cancel(user_id, order_id)` from
// being called the wrong way round. A newtype, `struct UserId(u64)`, gives each id a type of
// its own: a mix-up no longer compiles, and at run time it costs nothing. Conversions stay
// explicit: `UserId::new(42)` in, `.get()` out, and no `From<u64>` that would let a bare
// number slip in unseen (the tests check that there is none).
//
// Why it matters: a real incident class. An endpoint took `(account_id, customer_id)`, both
// integers; a refactor swapped two arguments and refunds went to the wrong accounts for a day.
// Caveat: the guard stops at your code's edge. With `#[derive(Deserialize)]`, serde reads a
// newtype struct as its inner value, so `{"user_id": 7}` is a valid `UserId` even when 7 is
// someone else's id. Types catch mix-ups; an authorization check still decides who may act.
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
        let mut orders: Vec<OrderId> = self
            .owner
            .iter()
            .filter(|(_, owner)| **owner == user)
            .map(|(order, _)| *order)
            .collect();
        orders.sort();
        orders
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Debug;
    use std::hash::Hash;

    /// What a map key that is cheap to pass around needs. Checked by the compiler.
    fn is_a_key<T: Copy + Eq + Hash + Ord + Debug>() {}

    /// `<T as NotFromU64<_>>::CHECKED` compiles only when `T` has no `From<u64>`: with one,
    /// both impls below apply and the compiler cannot pick. A raw number must go through `new`.
    trait NotFromU64<A> {
        const CHECKED: () = ();
    }
    impl<T> NotFromU64<()> for T {}
    impl<T: From<u64>> NotFromU64<u8> for T {}

    #[test]
    fn the_api_takes_typed_ids_at_no_cost() {
        is_a_key::<UserId>();
        is_a_key::<OrderId>();
        let () = <UserId as NotFromU64<_>>::CHECKED;
        let () = <OrderId as NotFromU64<_>>::CHECKED;
        // Each method takes the id type it means: a swapped or bare `u64` does not compile.
        let _: fn(&mut Orders, OrderId, UserId) = Orders::place;
        let _: fn(&Orders, UserId) -> Vec<OrderId> = Orders::of_user;
        assert_eq!(
            (size_of::<UserId>(), size_of::<OrderId>()),
            (size_of::<u64>(), size_of::<u64>()),
            "a newtype is as big as the u64 it wraps: expected 8 bytes each"
        );
    }

    #[test]
    fn ids_print_with_their_kind() {
        for (a, b) in [(42, 7), (7, 1_000_000)] {
            assert_eq!(
                UserId::new(a).to_string(),
                format!("user:{a}"),
                "expected user:{a}"
            );
            assert_eq!(
                OrderId::new(b).to_string(),
                format!("order:{b}"),
                "expected order:{b}"
            );
            assert_eq!(UserId::new(a).get(), a, "get() gives the raw id back: {a}");
        }
    }

    #[test]
    fn ids_are_copyable_comparable_hashable_keys() {
        let id = UserId::new(1);
        let copy = id;
        assert_eq!(id, copy, "a copied id is equal to the original");
        let mut seen = HashMap::new();
        seen.insert(id, "alice");
        seen.insert(UserId::new(2), "bob");
        assert_eq!(seen.get(&UserId::new(1)), Some(&"alice"), "user 1 is alice");
        assert_eq!(seen.get(&UserId::new(3)), None, "no user 3");
        assert!(
            OrderId::new(2) < OrderId::new(10),
            "ids sort by number: 2 < 10"
        );
        assert!(UserId::new(9) > UserId::new(3), "ids sort by number: 9 > 3");
    }

    /// Places `placed` as (order, user) pairs, then checks each user's orders.
    fn check(placed: &[(u64, u64)], want: &[(u64, &[u64])]) {
        let mut orders = Orders::default();
        for &(order, user) in placed {
            orders.place(OrderId::new(order), UserId::new(user));
        }
        for &(user, ids) in want {
            let ids: Vec<OrderId> = ids.iter().map(|&x| OrderId::new(x)).collect();
            assert_eq!(
                orders.of_user(UserId::new(user)),
                ids,
                "user {user} placed exactly these orders, sorted by id: expected {ids:?}"
            );
        }
    }

    #[test]
    fn of_user_lists_only_that_users_orders_sorted() {
        let placed = [
            (30, 1),
            (10, 2),
            (20, 1),
            (5, 1),
            (40, 2),
            (70, 1),
            (50, 1),
            (15, 1),
            (60, 1),
            (25, 1),
        ];
        check(
            &placed,
            &[
                (1, &[5, 15, 20, 25, 30, 50, 60, 70]),
                (2, &[10, 40]),
                (3, &[]),
            ],
        );
    }

    #[test]
    fn of_user_works_on_a_second_data_set() {
        let placed = [
            (90, 1),
            (2, 2),
            (12, 1),
            (4, 3),
            (80, 2),
            (3, 1),
            (1, 2),
            (11, 1),
        ];
        check(
            &placed,
            &[(1, &[3, 11, 12, 90]), (2, &[1, 2, 80]), (3, &[4]), (4, &[])],
        );
    }
}
