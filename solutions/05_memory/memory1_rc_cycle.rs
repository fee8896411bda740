// memory1_rc_cycle: break an Rc cycle with Weak
//
// `Rc` frees a value when its last strong reference goes away. If a parent owns its children
// and each child also owns its parent, the two keep each other alive forever: the count never
// reaches zero, `Drop` never runs, and the memory leaks. A back-reference must be a `Weak`,
// which points to a value without owning it; `upgrade()` gives you an `Rc` while it still exists.
//
// Why it matters: Rust prevents use-after-free, not leaks. A route tree, a DOM, or an ORM graph
// where children point back at their parents leaks every time it is dropped. The process grows
// a little with each request until the container is OOM-killed, like a Node service holding
// closures in a global map.
//
// What to do: store the child's `parent` as a `Weak<Node>` (`Rc::downgrade` when linking,
// `upgrade()` when reading). Run `backlings hint` if you are stuck.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

/// Counts dropped nodes, so that tests can see whether memory was freed.
#[derive(Clone, Default)]
pub struct DropCounter(Rc<Cell<usize>>);

impl DropCounter {
    pub fn get(&self) -> usize {
        self.0.get()
    }
}

/// One segment of a URL route tree, such as `api` in `/api/v1/users`.
pub struct Node {
    pub name: String,
    // A child points at its parent without owning it, so the parent -> child edges are the
    // only strong ones and the tree has no cycle.
    parent: RefCell<Weak<Node>>,
    children: RefCell<Vec<Rc<Node>>>,
    drops: DropCounter,
}

impl Node {
    pub fn new(name: &str, drops: &DropCounter) -> Rc<Node> {
        Rc::new(Node {
            name: name.to_string(),
            parent: RefCell::new(Weak::new()),
            children: RefCell::new(Vec::new()),
            drops: drops.clone(),
        })
    }

    /// Makes `child` a child of `parent`. The parent owns its children.
    pub fn add_child(parent: &Rc<Node>, child: Rc<Node>) {
        *child.parent.borrow_mut() = Rc::downgrade(parent);
        parent.children.borrow_mut().push(child);
    }

    /// The parent, or `None` for a root (or once the parent has been freed).
    pub fn parent(&self) -> Option<Rc<Node>> {
        self.parent.borrow().upgrade()
    }

    /// The child with this name, if any.
    pub fn child(&self, name: &str) -> Option<Rc<Node>> {
        self.children
            .borrow()
            .iter()
            .find(|c| c.name == name)
            .cloned()
    }

    /// The full route, built by walking up through the parents: `/api/v1/users`.
    /// The root's name is empty, so its children's paths start with `/`.
    pub fn path(&self) -> String {
        let mut names = vec![self.name.clone()];
        let mut up = self.parent();
        while let Some(node) = up {
            names.push(node.name.clone());
            up = node.parent();
        }
        names.reverse();
        names.join("/")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.drops.0.set(self.drops.0.get() + 1);
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;

    /// Builds `root -> api -> v1 -> users` and returns the root and the `users` leaf.
    fn build(drops: &DropCounter) -> (Rc<Node>, Rc<Node>) {
        let root = Node::new("", drops);
        let api = Node::new("api", drops);
        let v1 = Node::new("v1", drops);
        let users = Node::new("users", drops);
        Node::add_child(&root, Rc::clone(&api));
        Node::add_child(&api, Rc::clone(&v1));
        Node::add_child(&v1, Rc::clone(&users));
        (root, users)
    }

    #[test]
    fn a_child_can_walk_up_to_its_parents() {
        let drops = DropCounter::default();
        let (root, users) = build(&drops);
        let v1 = users
            .parent()
            .expect("`users` must have a parent while the tree is alive");
        assert_eq!(v1.name, "v1", "the parent of `users` is `v1`");
        assert_eq!(
            users.path(),
            "/api/v1/users",
            "path() walks up through parent(): expected \"/api/v1/users\""
        );
        assert!(root.parent().is_none(), "the root has no parent");
        assert_eq!(
            drops.get(),
            0,
            "nothing may be freed while the tree is in use"
        );
    }

    #[test]
    fn dropping_the_root_frees_the_whole_tree() {
        let drops = DropCounter::default();
        let (root, users) = build(&drops);
        drop(users);
        assert_eq!(
            drops.get(),
            0,
            "the tree still owns `users`: dropping our handle must free nothing, got {} drops",
            drops.get()
        );
        drop(root);
        assert_eq!(
            drops.get(),
            4,
            "after the root is dropped, all 4 nodes must be freed, got {} drops \
             (a child that owns its parent makes a cycle that never drops)",
            drops.get()
        );
    }

    #[test]
    fn the_tree_owns_its_children() {
        let drops = DropCounter::default();
        let (root, users) = build(&drops);
        drop(users);
        let leaf = root
            .child("api")
            .and_then(|api| api.child("v1"))
            .and_then(|v1| v1.child("users"))
            .expect("the tree must keep `/api/v1/users` alive after our handle is gone");
        assert_eq!(leaf.path(), "/api/v1/users", "expected \"/api/v1/users\"");
    }

    #[test]
    fn a_child_does_not_keep_its_parent_alive() {
        let drops = DropCounter::default();
        let (root, users) = build(&drops);
        drop(root);
        assert_eq!(
            drops.get(),
            3,
            "root, `api` and `v1` are freed; only `users` lives on through our handle: \
             expected 3 drops, got {}",
            drops.get()
        );
        assert!(
            users.parent().is_none(),
            "`v1` was freed, so parent() must return None (Weak::upgrade fails)"
        );
        assert_eq!(
            users.path(),
            "users",
            "a detached node's path is its own name"
        );
    }
}
