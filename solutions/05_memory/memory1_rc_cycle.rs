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
// A caveat: a `Weak` does not keep the value alive, but it does keep the `Rc`'s allocation (the
// two counters and the space for the value) until the last `Weak` is gone. Millions of
// forgotten `Weak`s are a leak too, only a smaller one.
//
// What to do: store the child's `parent` as a `Weak<Node>` (`Rc::downgrade` when linking,
// `upgrade()` when reading). Run `backlings hint` if you are stuck.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

/// One segment of a URL route tree, such as `api` in `/api/v1/users`.
pub struct Node {
    pub name: String,
    // A child points at its parent without owning it, so the parent -> child edges are the
    // only strong ones and the tree has no cycle.
    parent: RefCell<Weak<Node>>,
    children: RefCell<Vec<Rc<Node>>>,
}

impl Node {
    pub fn new(name: &str) -> Rc<Node> {
        Rc::new(Node {
            name: name.to_string(),
            parent: RefCell::new(Weak::new()),
            children: RefCell::new(Vec::new()),
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

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Weak;

    const API: &[&[&str]] = &[
        &["api", "v1", "users"],
        &["api", "v1", "orders"],
        &["api", "v2", "users"],
        &["health"],
    ];
    const ADMIN: &[&[&str]] = &[&["admin", "reports", "daily", "csv"], &["admin", "users"]];

    /// Builds a tree of `routes` under an empty root. We keep only the root and a `Weak` to
    /// every node, so the tree alone owns its nodes.
    fn build(routes: &[&[&str]]) -> (Rc<Node>, Vec<Weak<Node>>) {
        let root = Node::new("");
        let mut nodes = vec![Rc::downgrade(&root)];
        for route in routes {
            let mut at = Rc::clone(&root);
            for name in *route {
                let next = match at.child(name) {
                    Some(existing) => existing,
                    None => {
                        let node = Node::new(name);
                        nodes.push(Rc::downgrade(&node));
                        Node::add_child(&at, Rc::clone(&node));
                        node
                    }
                };
                at = next;
            }
        }
        (root, nodes)
    }

    /// How many nodes are still alive: a `Weak` upgrades only while its node exists.
    fn alive(nodes: &[Weak<Node>]) -> usize {
        nodes.iter().filter(|n| n.upgrade().is_some()).count()
    }

    fn find(root: &Rc<Node>, route: &[&str]) -> Rc<Node> {
        route.iter().fold(Rc::clone(root), |at, name| {
            at.child(name).unwrap_or_else(|| {
                panic!("the tree must keep /{} alive and findable", route.join("/"))
            })
        })
    }

    #[test]
    fn a_child_can_walk_up_to_its_parents() {
        for routes in [API, ADMIN] {
            let (root, nodes) = build(routes);
            assert!(root.parent().is_none(), "the root has no parent");
            for route in routes {
                let leaf = find(&root, route);
                let expected = format!("/{}", route.join("/"));
                assert_eq!(
                    leaf.path(),
                    expected,
                    "path() walks up: expected {expected:?}"
                );
                let mut at = leaf;
                for depth in (0..route.len()).rev() {
                    let up = at
                        .parent()
                        .unwrap_or_else(|| panic!("{:?} must have a parent", at.name));
                    let expected = if depth == 0 {
                        &root
                    } else {
                        &find(&root, &route[..depth])
                    };
                    assert!(
                        Rc::ptr_eq(&up, expected),
                        "the parent of {:?} must be the node {:?}",
                        at.name,
                        expected.name
                    );
                    at = up;
                }
            }
            assert_eq!(
                alive(&nodes),
                nodes.len(),
                "nothing may be freed while the tree is in use: expected {} nodes alive",
                nodes.len()
            );
        }
    }

    #[test]
    fn dropping_the_root_frees_the_whole_tree_every_time() {
        // One tree per "request", 100 requests: a leak would grow with every one of them.
        for round in 0..100 {
            let routes = if round % 2 == 0 { API } else { ADMIN };
            let (root, nodes) = build(routes);
            assert_eq!(
                alive(&nodes),
                nodes.len(),
                "round {round}: the tree owns its {} nodes, so all must be alive",
                nodes.len()
            );
            drop(root);
            assert_eq!(
                alive(&nodes),
                0,
                "round {round}: after the root is dropped, all {} nodes must be freed, but {} \
                 are still alive (a child that owns its parent makes a cycle that never drops)",
                nodes.len(),
                alive(&nodes)
            );
        }
    }

    #[test]
    fn a_child_does_not_keep_its_parent_alive() {
        // Keep one inner node; its subtree lives on, everything above it is freed.
        for (routes, keep, leaf, subtree) in [
            (API, &["api", "v1"][..], "orders", 3),
            (ADMIN, &["admin", "reports", "daily"][..], "csv", 2),
        ] {
            let (root, nodes) = build(routes);
            let kept = find(&root, keep);
            drop(root);
            assert_eq!(
                alive(&nodes),
                subtree,
                "we hold {:?}: it and its subtree ({subtree} nodes) stay alive, every node \
                 above it is freed. Got {} alive",
                kept.name,
                alive(&nodes)
            );
            assert!(
                kept.parent().is_none(),
                "the parent of {:?} was freed, so parent() must return None (Weak::upgrade fails)",
                kept.name
            );
            let leaf = kept
                .child(leaf)
                .expect("the kept node still owns its children");
            assert!(
                leaf.parent().is_some_and(|p| Rc::ptr_eq(&p, &kept)),
                "the leaf's parent is still alive: parent() must return it"
            );
            let expected = format!("{}/{}", kept.name, leaf.name);
            assert_eq!(
                leaf.path(),
                expected,
                "a detached subtree's paths start at its top: expected {expected:?}"
            );
        }
    }
}
