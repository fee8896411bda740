// mutant: insert keeps the existing entity (entry().or_insert); insert_replaces_and_returns_the_old_entity expects the new name stored
// types2_generic_repo: one repository for every entity, with typed ids
//
// A trait can carry a type as well as methods. With `trait Entity { type Id; }`, each entity
// says what its id is, and one generic `InMemoryRepo<E>` stores users keyed by `UserId` and
// orders keyed by `OrderId`: no `u64` keys, no copy-pasted repository per table.
//
// Why it matters: the repository pattern hides storage behind an interface; tests and early
// prototypes use an in-memory one. Generic code with associated types keeps it to one
// implementation without losing the typed ids from the last exercise.
//
// What to do: give `Entity` an associated type `Id` with the bounds a map key needs, make
// `id()` return it, and key the repository's map by `E::Id`. Run `backlings hint` if stuck.

use std::collections::HashMap;
use std::hash::Hash;

pub trait Entity {
    /// The entity's id type. A map key must be `Eq + Hash`; `Ord` lets `list` sort; `Copy`
    /// keeps ids cheap to pass around.
    type Id: Copy + Eq + Hash + Ord;

    fn id(&self) -> Self::Id;
}

pub struct InMemoryRepo<E: Entity> {
    items: HashMap<E::Id, E>,
}

impl<E: Entity> InMemoryRepo<E> {
    pub fn new() -> Self {
        InMemoryRepo {
            items: HashMap::new(),
        }
    }

    /// Stores `e`, replacing any entity with the same id, and returns the one it replaced.
    pub fn insert(&mut self, e: E) -> Option<E> {
        let id = e.id();
        if self.items.contains_key(&id) {
            return Some(e);
        }
        self.items.insert(id, e)
    }

    pub fn get(&self, id: E::Id) -> Option<&E> {
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

impl Entity for User {
    type Id = UserId;
    fn id(&self) -> UserId {
        self.id
    }
}

impl Entity for Order {
    type Id = OrderId;
    fn id(&self) -> OrderId {
        self.id
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

    #[test]
    fn users_are_stored_and_found_by_user_id() {
        let mut users = InMemoryRepo::new();
        assert_eq!(users.insert(user(1, "ada")), None, "nothing to replace yet");
        users.insert(user(2, "grace"));
        assert_eq!(users.get(UserId(2)).map(|u| u.name.as_str()), Some("grace"));
        assert_eq!(users.get(UserId(3)), None, "no user 3");
    }

    #[test]
    fn insert_replaces_and_returns_the_old_entity() {
        let mut users = InMemoryRepo::new();
        users.insert(user(1, "ada"));
        let old = users.insert(user(1, "ada lovelace"));
        assert_eq!(old, Some(user(1, "ada")), "the replaced user is returned");
        assert_eq!(
            users.get(UserId(1)).map(|u| u.name.as_str()),
            Some("ada lovelace"),
            "the new version is stored"
        );
    }

    #[test]
    fn the_same_repo_serves_orders_and_lists_them_sorted() {
        let mut orders = InMemoryRepo::new();
        for id in [9, 3, 7, 1, 8, 2, 6, 4, 10, 5] {
            orders.insert(Order {
                id: OrderId(id),
                cents: id * 100,
            });
        }
        let ids: Vec<u64> = orders.list().iter().map(|o| o.id.0).collect();
        assert_eq!(
            ids,
            (1..=10).collect::<Vec<_>>(),
            "list() is sorted by id: expected 1..=10"
        );
        assert_eq!(orders.get(OrderId(7)).map(|o| o.cents), Some(700));
    }
}
