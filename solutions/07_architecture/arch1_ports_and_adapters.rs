// arch1_ports_and_adapters: the use case depends on a port, not on a database
//
// Hexagonal architecture ("ports and adapters") puts the business rule in the middle and
// everything outside (databases, HTTP, queues) behind traits the core owns: the ports. An
// adapter implements a port for one technology. Here `SignupService` is the use case,
// `UserRepo` the port, and `SqliteUserRepo` one adapter. Make the service generic over
// `R: UserRepo`, so the same rule runs against SQLite in production and against an in-memory
// fake in tests, with no database and no mocking framework. A generic is resolved at compile
// time (static dispatch); `arch2` shows the runtime kind, `Arc<dyn Port>`.
//
// Why it matters: a signup service that built its own SQLite connection could only be tested
// against a real file, so nobody tested the duplicate-email path, and it broke in production.
//
// Production caveat: "look up, then insert" is a race. Two signups with the same email can
// both find nothing and both insert. Only the database's UNIQUE constraint settles it, so the
// adapter reports that conflict and the service must treat it as "email taken" too.
//
// What to do: make `SignupService` generic over the port (`SignupService<R: UserRepo>`) and
// write `signup` with the port's methods: look the email up (a known email is answered
// without a write), then insert.
// Run `backlings hint` if you are stuck.

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RepoError {
    #[error("a user with that email exists")]
    Conflict,
    #[error("storage failed: {0}")]
    Storage(String),
}

/// The port: what the use case needs from storage, in its own terms.
pub trait UserRepo {
    fn find_by_email(&self, email: &str) -> Result<Option<User>, RepoError>;
    /// Stores a new user and returns its id.
    fn insert(&mut self, email: &str, name: &str) -> Result<i64, RepoError>;
}

/// The SQLite adapter.
pub struct SqliteUserRepo {
    conn: Connection,
}

impl SqliteUserRepo {
    pub fn open_in_memory() -> rusqlite::Result<Self> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL)",
        )?;
        Ok(SqliteUserRepo { conn })
    }
}

impl UserRepo for SqliteUserRepo {
    fn find_by_email(&self, email: &str) -> Result<Option<User>, RepoError> {
        self.conn
            .query_row(
                "SELECT id, email, name FROM users WHERE email = ?1",
                [email],
                |r| {
                    Ok(User {
                        id: r.get(0)?,
                        email: r.get(1)?,
                        name: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| RepoError::Storage(e.to_string()))
    }

    fn insert(&mut self, email: &str, name: &str) -> Result<i64, RepoError> {
        match self.conn.execute(
            "INSERT INTO users (email, name) VALUES (?1, ?2)",
            params![email, name],
        ) {
            Ok(_) => Ok(self.conn.last_insert_rowid()),
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                Err(RepoError::Conflict)
            }
            Err(e) => Err(RepoError::Storage(e.to_string())),
        }
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SignupError {
    #[error("that email is already registered")]
    EmailTaken,
    #[error("a name must not be empty")]
    EmptyName,
    #[error("{0}")]
    Repo(RepoError),
}

/// The use case. It knows the port, never the adapter: any `R: UserRepo` plugs in.
pub struct SignupService<R: UserRepo> {
    repo: R,
}

impl<R: UserRepo> SignupService<R> {
    pub fn new(repo: R) -> Self {
        SignupService { repo }
    }

    pub fn repo(&self) -> &R {
        &self.repo
    }

    /// Registers a user. Emails are compared trimmed and lowercased.
    pub fn signup(&mut self, email: &str, name: &str) -> Result<i64, SignupError> {
        let email = email.trim().to_lowercase();
        if name.trim().is_empty() {
            return Err(SignupError::EmptyName);
        }
        if self
            .repo
            .find_by_email(&email)
            .map_err(SignupError::Repo)?
            .is_some()
        {
            return Err(SignupError::EmailTaken);
        }
        self.repo.insert(&email, name.trim()).map_err(|e| match e {
            // Lost the race to a concurrent signup: the constraint has the last word.
            RepoError::Conflict => SignupError::EmailTaken,
            other => SignupError::Repo(other),
        })
    }
}

fn main() {}

// Tests: do not edit below this line.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::BTreeMap;

    /// An in-memory adapter: the port's contract without a database. `lose_race` makes the
    /// next insert fail as if another signup had won between the lookup and the insert;
    /// `broken` makes storage fail: 1 = writes only, 2 = reads too.
    #[derive(Default)]
    struct InMemoryUserRepo {
        users: BTreeMap<String, User>,
        next_id: i64,
        lose_race: Cell<bool>,
        broken: Cell<u8>,
        inserts: Cell<usize>,
    }

    impl InMemoryUserRepo {
        fn starting_at(id: i64) -> Self {
            InMemoryUserRepo {
                next_id: id,
                ..Default::default()
            }
        }
    }

    impl UserRepo for InMemoryUserRepo {
        fn find_by_email(&self, email: &str) -> Result<Option<User>, RepoError> {
            if self.broken.get() >= 2 {
                return Err(RepoError::Storage("disk on fire".into()));
            }
            Ok(self.users.get(email).cloned())
        }

        fn insert(&mut self, email: &str, name: &str) -> Result<i64, RepoError> {
            self.inserts.set(self.inserts.get() + 1);
            if self.broken.get() >= 1 {
                return Err(RepoError::Storage("disk on fire".into()));
            }
            if self.lose_race.replace(false) || self.users.contains_key(email) {
                return Err(RepoError::Conflict);
            }
            let id = self.next_id;
            self.next_id += 1;
            let user = User {
                id,
                email: email.into(),
                name: name.into(),
            };
            self.users.insert(email.into(), user);
            Ok(id)
        }
    }

    /// The same rules must hold whatever adapter is plugged in.
    fn contract<R: UserRepo>(mut svc: SignupService<R>, first_id: i64) {
        assert_eq!(svc.signup("ann@example.com", "Ann"), Ok(first_id));
        assert_eq!(
            svc.signup("  ANN@Example.com ", "Another Ann"),
            Err(SignupError::EmailTaken),
            "emails are compared trimmed and lowercased: expected EmailTaken"
        );
        assert_eq!(svc.signup("bob@example.com", "  Bob "), Ok(first_id + 1));
        assert_eq!(
            svc.signup("carol@example.com", "   "),
            Err(SignupError::EmptyName),
            "a blank name: expected EmptyName"
        );
        let stored = svc.repo().find_by_email("ann@example.com").unwrap();
        assert_eq!(
            stored.map(|u| (u.id, u.name)),
            Some((first_id, "Ann".to_string())),
            "the user is stored through the port"
        );
        assert_eq!(
            svc.repo().find_by_email("carol@example.com").unwrap(),
            None,
            "a rejected signup stores nothing"
        );
        let bob = svc.repo().find_by_email("bob@example.com").unwrap();
        assert_eq!(
            bob.map(|u| u.name),
            Some("Bob".to_string()),
            "names are stored trimmed"
        );
    }

    #[test]
    fn the_rules_hold_with_the_in_memory_adapter() {
        let svc: SignupService<InMemoryUserRepo> =
            SignupService::new(InMemoryUserRepo::starting_at(100));
        contract(svc, 100);
        contract(SignupService::new(InMemoryUserRepo::starting_at(7)), 7);
    }

    #[test]
    fn the_rules_hold_with_the_sqlite_adapter() {
        let svc: SignupService<SqliteUserRepo> =
            SignupService::new(SqliteUserRepo::open_in_memory().unwrap());
        contract(svc, 1);
    }

    #[test]
    fn a_user_already_in_the_store_is_found_through_the_port() {
        let mut repo = InMemoryUserRepo::starting_at(1);
        repo.insert("dana@example.com", "Dana").unwrap();
        let mut svc = SignupService::new(repo);
        assert_eq!(
            svc.signup("Dana@Example.com", "Dana again"),
            Err(SignupError::EmailTaken),
            "the service must ask the repository, not remember emails itself"
        );
        assert_eq!(
            svc.repo().inserts.get(),
            1,
            "the lookup already said 'taken': the service must not try to insert"
        );
    }

    #[test]
    fn storage_that_is_down_is_a_storage_error_not_email_taken() {
        for (broken, email) in [(1, "fay@example.com"), (2, "gus@example.com")] {
            let repo = InMemoryUserRepo::starting_at(1);
            repo.broken.set(broken);
            let mut svc = SignupService::new(repo);
            assert!(
                matches!(
                    svc.signup(email, "Someone"),
                    Err(SignupError::Repo(RepoError::Storage(_)))
                ),
                "{email}: a failing repository is a server error, never 'email taken'"
            );
        }
    }

    #[test]
    fn losing_the_race_to_a_concurrent_signup_is_email_taken() {
        let repo = InMemoryUserRepo::starting_at(1);
        repo.lose_race.set(true);
        let mut svc = SignupService::new(repo);
        assert_eq!(
            svc.signup("eve@example.com", "Eve"),
            Err(SignupError::EmailTaken),
            "the lookup found nothing, then the insert hit the unique constraint: expected EmailTaken"
        );
        assert_eq!(
            svc.signup("eve@example.com", "Eve"),
            Ok(1),
            "once the race is over, the signup goes through"
        );
    }

    #[test]
    fn the_sqlite_adapter_tells_a_conflict_from_a_storage_failure() {
        let mut repo = SqliteUserRepo::open_in_memory().unwrap();
        assert_eq!(repo.insert("fay@example.com", "Fay"), Ok(1));
        assert_eq!(
            repo.insert("fay@example.com", "Fay"),
            Err(RepoError::Conflict),
            "the UNIQUE constraint: expected Conflict"
        );
        repo.conn.execute_batch("DROP TABLE users").unwrap();
        assert!(
            matches!(
                repo.insert("gus@example.com", "Gus"),
                Err(RepoError::Storage(_))
            ),
            "a missing table is a storage failure, not a conflict"
        );
    }
}
