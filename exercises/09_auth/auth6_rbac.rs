// auth6_rbac: roles grant permissions, code checks permissions
//
// Role-based access control has two layers. A role is a named bundle of permissions, kept as
// data; code never asks "is this user an admin?", it asks "may this user delete documents?".
// Then a new role (a "support" role, a role loaded from the database) needs no code change, and
// a role's reach is read from one table. The check is default-deny: a user is allowed only
// what one of their roles grants, and a user with several roles gets the union.
//
// The table for the built-in roles (note that Admin does not see billing: separation of duties):
//
// | role    | ReadDoc | WriteDoc | DeleteDoc | ManageUsers | ViewBilling |
// | Viewer  |    x    |          |           |             |             |
// | Editor  |    x    |    x     |           |             |             |
// | Admin   |    x    |    x     |     x     |      x      |             |
// | Billing |         |          |           |             |      x      |
//
// Why it matters: a dashboard checked `role == "admin"` in forty handlers. When auditors asked
// for a read-only "auditor" role, each check had to be found and edited, and the three that
// were missed let auditors delete accounts.
//
// Production caveat: RBAC answers "may an editor edit documents?", not "may this editor edit
// this document?". OWASP's API Security Top 10 (2023) ranks that second question, Broken
// Object Level Authorization, first: check ownership on each object too (see `auth_quiz`).
//
// What to do: fill in `Role::permissions` from the table, and `authorize`.
// Run `backlings hint` if you are stuck.

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ReadDoc,
    WriteDoc,
    DeleteDoc,
    ManageUsers,
    ViewBilling,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    Viewer,
    Editor,
    Admin,
    Billing,
    /// A role defined at run time, e.g. loaded from the `roles` table.
    Custom {
        name: String,
        grants: Vec<Permission>,
    },
}

impl Role {
    pub fn permissions(&self) -> &[Permission] {
        // TODO: the table in the header, one arm per role; a custom role grants its `grants`.
        &[]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: u64,
    pub roles: Vec<Role>,
}

/// What a handler turns into `403 Forbidden`.
#[derive(Debug, PartialEq, Error)]
#[error("forbidden: missing permission {0:?}")]
pub struct Denied(pub Permission);

pub fn authorize(user: &User, perm: Permission) -> Result<(), Denied> {
    // TODO: this asks for a role name. Ask whether any of the user's roles grants `perm`.
    if user.roles.contains(&Role::Admin) {
        Ok(())
    } else {
        Err(Denied(perm))
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    const ALL: [Permission; 5] = [ReadDoc, WriteDoc, DeleteDoc, ManageUsers, ViewBilling];

    fn user(roles: Vec<Role>) -> User {
        User { id: 7, roles }
    }

    fn custom(name: &str, grants: &[Permission]) -> Role {
        Role::Custom {
            name: name.into(),
            grants: grants.to_vec(),
        }
    }

    /// Checks every permission: exactly `allowed` pass, the rest are denied naming the permission.
    fn check(who: &str, user: &User, allowed: &[Permission]) {
        for perm in ALL {
            let expected = if allowed.contains(&perm) {
                Ok(())
            } else {
                Err(Denied(perm))
            };
            assert_eq!(
                authorize(user, perm),
                expected,
                "{who} asking for {perm:?}: expected {expected:?} (allowed: {allowed:?})"
            );
        }
    }

    #[test]
    fn the_full_role_by_permission_matrix() {
        let table = [
            (Role::Viewer, vec![ReadDoc]),
            (Role::Editor, vec![ReadDoc, WriteDoc]),
            (Role::Admin, vec![ReadDoc, WriteDoc, DeleteDoc, ManageUsers]),
            (Role::Billing, vec![ViewBilling]),
        ];
        for (role, allowed) in table {
            let mut got = role.permissions().to_vec();
            got.sort_by_key(|p| ALL.iter().position(|q| q == p));
            assert_eq!(got, allowed, "{role:?}.permissions() per the table");
            check(
                &format!("a user with only {role:?}"),
                &user(vec![role]),
                &allowed,
            );
        }
    }

    #[test]
    fn no_roles_means_no_access() {
        check("a user with no roles", &user(vec![]), &[]);
        check(
            "a user whose only role grants nothing",
            &user(vec![custom("suspended", &[])]),
            &[],
        );
    }

    #[test]
    fn several_roles_give_the_union() {
        for (roles, allowed) in [
            (
                vec![Role::Viewer, Role::Billing],
                vec![ReadDoc, ViewBilling],
            ),
            (
                vec![Role::Billing, Role::Editor],
                vec![ReadDoc, WriteDoc, ViewBilling],
            ),
            (
                vec![Role::Billing, Role::Viewer, Role::Admin],
                vec![ReadDoc, WriteDoc, DeleteDoc, ManageUsers, ViewBilling],
            ),
        ] {
            check(
                &format!("a user with {roles:?}"),
                &user(roles.clone()),
                &allowed,
            );
        }
    }

    #[test]
    fn roles_defined_at_run_time_work_without_code_changes() {
        let auditor = custom("auditor", &[ReadDoc, ViewBilling]);
        check("an auditor", &user(vec![auditor]), &[ReadDoc, ViewBilling]);
        let janitor = custom("janitor", &[DeleteDoc]);
        check("a janitor", &user(vec![janitor.clone()]), &[DeleteDoc]);
        // A custom role that happens to be called "admin" is whatever its grants say.
        let fake_admin = custom("Admin", &[ReadDoc]);
        check(
            "a custom role named Admin",
            &user(vec![fake_admin]),
            &[ReadDoc],
        );
        check(
            "a viewer who is also a janitor",
            &user(vec![Role::Viewer, janitor]),
            &[ReadDoc, DeleteDoc],
        );
    }
}
