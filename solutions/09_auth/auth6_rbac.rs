// auth6_rbac: roles grant permissions, code checks permissions
//
// Role-based access control has two layers. A role is a named bundle of permissions, kept as
// data (a `Policy`, loaded from the `roles` table in production); code never asks "is this user
// an admin?", it asks "may this user delete documents?". Then a new role, or a role whose grants
// change, needs no code change, and a role's reach is read from one table. The check is
// default-deny: a user is allowed only what one of their roles grants (a role the policy does not
// know grants nothing), and a user with several roles gets the union.
//
// The built-in policy (Admin does not see billing: least privilege, each role gets only what its
// work needs; "separation of duties" in NIST's RBAC model is another thing, a constraint on which
// roles one user may be assigned or activate together):
//
// | role    | ReadDoc | WriteDoc | DeleteDoc | ManageUsers | ViewBilling |
// | viewer  |    x    |          |           |             |             |
// | editor  |    x    |    x     |           |             |             |
// | admin   |    x    |    x     |     x     |      x      |             |
// | billing |         |          |           |             |      x      |
//
// Why it matters: a dashboard checked `role == "admin"` in forty handlers. When auditors asked
// for a read-only "auditor" role, each check had to be found and edited, and the three that
// were missed let auditors delete accounts.
//
// Production caveat: RBAC answers "may an editor edit documents?", not "may this editor edit
// this document?". OWASP's API Security Top 10 (2023) ranks that second question, Broken
// Object Level Authorization, first: check ownership on each object too (see `auth_quiz`).
//
// What to do: fill in `Policy::builtin` from the table, and `authorize`.
// Run `backlings hint` if you are stuck.

use std::collections::HashMap;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ReadDoc,
    WriteDoc,
    DeleteDoc,
    ManageUsers,
    ViewBilling,
}

/// Role name → the permissions it grants. Data, not code: the tests bring their own.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy(pub HashMap<String, Vec<Permission>>);

impl Policy {
    /// The built-in roles: the table in the header.
    pub fn builtin() -> Policy {
        use Permission::*;
        // The table above, as data: the only place that knows what a role may do.
        let rows: [(&str, &[Permission]); 4] = [
            ("viewer", &[ReadDoc]),
            ("editor", &[ReadDoc, WriteDoc]),
            ("admin", &[ReadDoc, WriteDoc, DeleteDoc, ManageUsers]),
            ("billing", &[ViewBilling]),
        ];
        Policy(
            rows.iter()
                .map(|(r, g)| (r.to_string(), g.to_vec()))
                .collect(),
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: u64,
    /// Role names, looked up in a `Policy`.
    pub roles: Vec<String>,
}

/// What a handler turns into `403 Forbidden`.
#[derive(Debug, PartialEq, Error)]
#[error("forbidden: missing permission {0:?}")]
pub struct Denied(pub Permission);

pub fn authorize(user: &User, perm: Permission, policy: &Policy) -> Result<(), Denied> {
    // Allowed only if some role grants it: no roles, or roles the policy does not know, no access.
    let grants = |role: &String| policy.0.get(role).map_or(&[][..], Vec::as_slice);
    let granted = user.roles.iter().any(|role| grants(role).contains(&perm));
    if granted { Ok(()) } else { Err(Denied(perm)) }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    const ALL: [Permission; 5] = [ReadDoc, WriteDoc, DeleteDoc, ManageUsers, ViewBilling];

    fn user(roles: &[&str]) -> User {
        User {
            id: 7,
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn policy(rows: &[(&str, &[Permission])]) -> Policy {
        Policy(
            rows.iter()
                .map(|(r, g)| (r.to_string(), g.to_vec()))
                .collect(),
        )
    }

    /// Checks every permission: exactly `allowed` pass, the rest are denied naming the permission.
    fn check(who: &[&str], policy: &Policy, allowed: &[Permission]) {
        for perm in ALL {
            let expected = if allowed.contains(&perm) {
                Ok(())
            } else {
                Err(Denied(perm))
            };
            assert_eq!(
                authorize(&user(who), perm, policy),
                expected,
                "roles {who:?} asking for {perm:?}: expected {expected:?} (allowed: {allowed:?})"
            );
        }
    }

    #[test]
    fn the_full_role_by_permission_matrix() {
        let table: [(&str, &[Permission]); 4] = [
            ("viewer", &[ReadDoc]),
            ("editor", &[ReadDoc, WriteDoc]),
            ("admin", &[ReadDoc, WriteDoc, DeleteDoc, ManageUsers]),
            ("billing", &[ViewBilling]),
        ];
        let builtin = Policy::builtin();
        assert_eq!(builtin.0.len(), 4, "four built-in roles: {builtin:?}");
        for (role, allowed) in table {
            let mut got = builtin.0.get(role).cloned().unwrap_or_default();
            got.sort_by_key(|p| ALL.iter().position(|q| q == p));
            assert_eq!(
                got, allowed,
                "the built-in policy's {role:?} row, per the table"
            );
            check(&[role], &builtin, allowed);
        }
    }

    #[test]
    fn no_roles_means_no_access() {
        let builtin = Policy::builtin();
        check(&[], &builtin, &[]);
        check(&["suspended"], &policy(&[("suspended", &[])]), &[]);
        check(&["root", "superuser"], &builtin, &[]);
        check(&["Admin", "ADMIN"], &builtin, &[]);
        check(&["admin"], &Policy::default(), &[]);
    }

    #[test]
    fn several_roles_give_the_union() {
        let builtin = Policy::builtin();
        for (roles, allowed) in [
            (&["viewer", "billing"][..], &[ReadDoc, ViewBilling][..]),
            (&["billing", "editor"], &[ReadDoc, WriteDoc, ViewBilling]),
            (
                &["billing", "viewer", "admin"],
                &[ReadDoc, WriteDoc, DeleteDoc, ManageUsers, ViewBilling],
            ),
            (&["intern", "editor"], &[ReadDoc, WriteDoc]),
        ] {
            check(roles, &builtin, allowed);
        }
    }

    #[test]
    fn the_policy_is_data_the_caller_supplies() {
        // The same role names with other grants: only the policy may decide.
        let freeze = policy(&[
            ("viewer", &[ReadDoc, ViewBilling]),
            ("editor", &[ReadDoc]),
            ("admin", &[ManageUsers]),
            ("auditor", &[ReadDoc, ViewBilling]),
        ]);
        check(&["viewer"], &freeze, &[ReadDoc, ViewBilling]);
        check(&["editor"], &freeze, &[ReadDoc]);
        check(&["admin"], &freeze, &[ManageUsers]);
        check(&["auditor"], &freeze, &[ReadDoc, ViewBilling]);
        check(&["billing"], &freeze, &[]);
        let cleanup = policy(&[("janitor", &[DeleteDoc]), ("billing", &[ReadDoc])]);
        check(&["janitor"], &cleanup, &[DeleteDoc]);
        check(&["billing"], &cleanup, &[ReadDoc]);
        check(&["viewer", "janitor"], &cleanup, &[DeleteDoc]);
        check(&["admin"], &cleanup, &[]);
    }
}
