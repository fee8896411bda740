// types2_generic_repo: one repository for every entity, with typed ids
//
// A trait can carry a type as well as methods. With `trait Entity { type Id; }`, each entity
// says what its id is, and one generic `InMemoryRepo<E>` stores users keyed by `UserId` and
// orders keyed by `OrderId`: no `u64` keys, no copy-pasted repository per table.
//
// Why it matters: the repository pattern hides storage behind an interface; tests and early
// prototypes use an in-memory one. Generic code with associated types keeps it to one
// implementation without losing the typed ids from the last exercise.
// Caveat: the in-memory repo sorts `list()` itself; its SQL twin must say `ORDER BY id`.
// Without ORDER BY, PostgreSQL returns rows "in an unspecified order" (manual, Sorting Rows),
// and a test suite that only runs against the fake never notices.
//
// What to do: give `Entity` an associated type `Id` with the bounds a map key needs, make
// `id()` return it, and key the repository's map by `E::Id`. Run `backlings hint` if stuck.

use std::collections::HashMap;
use std::hash::Hash;

pub trait Entity {
    // TODO: add an associated type `Id` with the bounds a HashMap key (and sorting) needs, and
    // make `id()` return it. Every entity's id is a `u64` for now, so users and orders cannot
    // keep their own id types.
    fn id(&self) -> u64;
}

pub struct InMemoryRepo<E: Entity> {
    // TODO: key the map by the entity's own id type (and take that type in `get`).
    items: HashMap<u64, E>,
}

impl<E: Entity> InMemoryRepo<E> {
    pub fn new() -> Self {
        InMemoryRepo {
            items: HashMap::new(),
        }
    }

    /// Stores `e`, replacing any entity with the same id, and returns the one it replaced.
    pub fn insert(&mut self, e: E) -> Option<E> {
        self.items.insert(e.id(), e)
    }

    pub fn get(&self, id: u64) -> Option<&E> {
        self.items.get(&id)
    }

    /// Every entity, sorted by id.
    pub fn list(&self) -> Vec<&E> {
        let mut all: Vec<&E> = self.items.values().collect();
        all.sort_by_key(|e| e.id());
        all
    }
}

impl<E: Entity> Default for InMemoryRepo<E> {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(pub u64);

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: OrderId,
    pub cents: u64,
}

// TODO: once `Entity` has an `Id` type, say what it is for each entity.
impl Entity for User {
    fn id(&self) -> u64 {
        self.id.0
    }
}

impl Entity for Order {
    fn id(&self) -> u64 {
        self.id.0
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64, name: &str) -> User {
        User {
            id: UserId(id),
            name: name.into(),
        }
    }

    /// An entity the tests define, keyed by a string: the repo must serve it unchanged.
    #[derive(Debug, PartialEq)]
    struct Product {
        sku: &'static str,
        stock: u32,
    }

    impl Entity for Product {
        type Id = &'static str;
        fn id(&self) -> &'static str {
            self.sku
        }
    }

    /// Generic code that relies only on what `Entity` promises about `E::Id`.
    fn ids_in_order<E: Entity>(repo: &InMemoryRepo<E>) -> Vec<E::Id> {
        repo.list().iter().map(|e| e.id()).collect()
    }

    #[test]
    fn lookups_take_the_entitys_own_id_type() {
        // Checked by the compiler: a user is found by a `UserId`, an order by an `OrderId`.
        let _: fn(&InMemoryRepo<User>, UserId) -> Option<&User> = InMemoryRepo::get;
        let _: fn(&InMemoryRepo<Order>, OrderId) -> Option<&Order> = InMemoryRepo::get;
        let _: fn(&mut InMemoryRepo<User>, User) -> Option<User> = InMemoryRepo::insert;
        let mut users = InMemoryRepo::new();
        assert_eq!(users.insert(user(1, "ada")), None, "nothing to replace yet");
        users.insert(user(2, "grace"));
        for (id, name) in [(1, Some("ada")), (2, Some("grace")), (3, None)] {
            assert_eq!(
                users.get(UserId(id)).map(|u| u.name.as_str()),
                name,
                "user {id}: expected {name:?}"
            );
        }
    }

    #[test]
    fn insert_replaces_and_returns_the_old_entity() {
        let mut users = InMemoryRepo::new();
        users.insert(user(1, "ada"));
        users.insert(user(2, "grace"));
        let old = users.insert(user(1, "ada lovelace"));
        assert_eq!(old, Some(user(1, "ada")), "the replaced user is returned");
        assert_eq!(
            users.get(UserId(1)).map(|u| u.name.as_str()),
            Some("ada lovelace"),
            "the new version of user 1 is stored"
        );
        assert_eq!(
            users.get(UserId(2)).map(|u| u.name.as_str()),
            Some("grace"),
            "user 2 is untouched"
        );
        assert_eq!(users.list().len(), 2, "still two users, not three");
    }

    #[test]
    fn the_same_repo_serves_orders_and_lists_them_sorted() {
        for ids in [
            vec![9, 3, 7, 1, 8, 2, 6, 4, 10, 5],
            vec![400, 12, 7_000, 55],
        ] {
            let mut orders = InMemoryRepo::new();
            for &id in &ids {
                orders.insert(Order {
                    id: OrderId(id),
                    cents: id * 100,
                });
            }
            let mut want: Vec<OrderId> = ids.iter().map(|&id| OrderId(id)).collect();
            want.sort();
            assert_eq!(
                ids_in_order(&orders),
                want,
                "list() is sorted by id: expected {want:?}"
            );
            let last = ids[ids.len() - 1];
            assert_eq!(
                orders.get(OrderId(last)).map(|o| o.cents),
                Some(last * 100),
                "order {last} costs {} cents",
                last * 100
            );
        }
    }

    #[test]
    fn an_entity_with_a_string_id_uses_the_same_repo() {
        let mut products = InMemoryRepo::new();
        for (sku, stock) in [("pear", 3), ("apple", 10), ("kiwi", 0)] {
            products.insert(Product { sku, stock });
        }
        let old = products.insert(Product {
            sku: "kiwi",
            stock: 5,
        });
        assert_eq!(old.map(|p| p.stock), Some(0), "the old kiwi had 0 in stock");
        assert_eq!(
            ids_in_order(&products),
            vec!["apple", "kiwi", "pear"],
            "list() is sorted by sku"
        );
        assert_eq!(
            products.get("kiwi").map(|p| p.stock),
            Some(5),
            "kiwi now has 5 in stock"
        );
        assert_eq!(products.get("plum"), None, "no plum");
    }
}
