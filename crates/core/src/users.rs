//! Local users: who may create, read, change and delete them, and the rules on their fields.

use berth_auth::password;
use berth_auth::rbac::Subject;
use berth_db::{Db, DbError, ListQuery, Match, NewUser};

use crate::identity::UserView;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("user {0} not found")]
    NotFound(i64),
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// Too many password checks are waiting: retry shortly (429).
    #[error("too many password checks at once; retry shortly")]
    Busy,
    #[error("internal: {0}")]
    Internal(String),
}

impl From<berth_auth::hashing::HashingError> for UserError {
    fn from(e: berth_auth::hashing::HashingError) -> Self {
        match e {
            berth_auth::hashing::HashingError::Busy => UserError::Busy,
            berth_auth::hashing::HashingError::Failed(e) => UserError::Internal(e),
        }
    }
}

impl From<DbError> for UserError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(what) => UserError::Conflict(format!("{what} already exists")),
            DbError::InvalidQuery(why) => UserError::Invalid(why),
            other => UserError::Internal(other.to_string()),
        }
    }
}

/// Characters that change how text reads without showing: zero-width ones, directional
/// marks, overrides and isolates, the byte-order mark.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}' | '\u{ad}')
}

/// What a new user is made of.
pub struct NewUserReq<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub realname: &'a str,
    pub comment: &'a str,
    pub password: &'a str,
}

/// Harbor's username rule: 1 to 255 characters, none of `,"~#%$` and no whitespace; and, past
/// Harbor, no control or invisible formatting characters (a NUL, or a right-to-left override
/// that makes one name read as another in the audit log).
pub fn validate_username(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 255
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || invisible(c) || ",\"~#%$".contains(c))
        && !name.starts_with("robot$");
    if ok { Ok(()) } else { Err(UserError::Invalid(format!("username {name:?} is invalid"))) }
}

/// A plausible email address: `local@domain.tld`, at most 255 characters.
pub fn validate_email(email: &str) -> Result<(), UserError> {
    let ok = email.len() <= 255
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        });
    if ok { Ok(()) } else { Err(UserError::Invalid(format!("email {email:?} is invalid"))) }
}

fn view(u: berth_db::UserRow) -> UserView {
    UserView {
        id: u.id,
        username: u.username,
        email: u.email,
        realname: u.realname,
        comment: u.comment,
        sysadmin: u.sysadmin,
        created_at: u.created_at,
        updated_at: u.updated_at,
    }
}

#[derive(Clone)]
pub struct Users {
    db: Db,
    caches: crate::cache::Caches,
    settings: crate::settings::SystemSettings,
    hashing: berth_auth::hashing::PasswordWorkers,
}

fn caller_id(subject: &Subject) -> Result<i64, UserError> {
    match subject {
        Subject::User { id, .. } => Ok(*id),
        Subject::Anonymous => Err(UserError::Unauthorized),
        Subject::Robot { .. } => Err(UserError::Forbidden("robot accounts cannot manage users".into())),
    }
}

fn require_admin(subject: &Subject) -> Result<(), UserError> {
    caller_id(subject)?;
    if subject.is_sysadmin() {
        Ok(())
    } else {
        Err(UserError::Forbidden("only system administrators may do this".into()))
    }
}

/// The caller themself, or a system administrator.
fn require_self_or_admin(subject: &Subject, user_id: i64) -> Result<(), UserError> {
    let me = caller_id(subject)?;
    if me == user_id || subject.is_sysadmin() {
        Ok(())
    } else {
        Err(UserError::Forbidden("only the user or a system administrator may do this".into()))
    }
}

impl Users {
    /// `caches` must be the ones the access checks read (`Registry::caches`).
    /// The users of `registry`'s database, sharing its caches and settings.
    pub fn new(registry: &crate::Registry) -> Users {
        Users {
            db: registry.db().clone(),
            caches: registry.caches().clone(),
            settings: registry.settings().clone(),
            hashing: crate::identity::default_password_workers(),
        }
    }

    /// Passwords hashed on `workers` rather than the process's default ones.
    pub fn with_password_workers(mut self, workers: berth_auth::hashing::PasswordWorkers) -> Users {
        self.hashing = workers;
        self
    }

    /// Creates a user: by a system administrator, or by anyone when self-registration is on.
    pub async fn create(&self, subject: &Subject, req: &NewUserReq<'_>) -> Result<i64, UserError> {
        if !subject.is_sysadmin() && !self.settings.get().self_registration {
            return Err(match subject {
                Subject::Anonymous => UserError::Unauthorized,
                _ => UserError::Forbidden("only system administrators may create users".into()),
            });
        }
        validate_username(req.username)?;
        if let Some(email) = req.email {
            validate_email(email)?;
        }
        password::check_policy(req.password).map_err(|e| UserError::Invalid(e.to_string()))?;
        let password_hash = self.hashing.hash(req.password).await?;
        Ok(self
            .db
            .create_user(&NewUser {
                username: req.username,
                email: req.email,
                realname: req.realname,
                comment: req.comment,
                password_hash: &password_hash,
                sysadmin: false,
            })
            .await?)
    }

    pub async fn get(&self, subject: &Subject, id: i64) -> Result<UserView, UserError> {
        require_self_or_admin(subject, id)?;
        self.db.user_by_id(id).await?.map(view).ok_or(UserError::NotFound(id))
    }

    /// Users filtered and ordered by `query`, one page with the total (administrators only).
    pub async fn list(
        &self,
        subject: &Subject,
        query: &ListQuery,
        page: i64,
        size: i64,
    ) -> Result<(Vec<UserView>, i64), UserError> {
        require_admin(subject)?;
        let (rows, total) = self.db.list_users(query, size, (page - 1) * size).await?;
        Ok((rows.into_iter().map(view).collect(), total))
    }

    /// Id and name of users whose name contains `search`, for any signed-in user (to add
    /// members).
    pub async fn search(
        &self,
        subject: &Subject,
        search: &str,
        page: i64,
        size: i64,
    ) -> Result<(Vec<(i64, String)>, i64), UserError> {
        caller_id(subject)?;
        let query = ListQuery {
            terms: vec![("username".to_string(), Match::Fuzzy(search.to_string()))],
            sort: vec![("username".to_string(), false)],
        };
        let (rows, total) = self.db.list_users(&query, size, (page - 1) * size).await?;
        Ok((rows.into_iter().map(|u| (u.id, u.username)).collect(), total))
    }

    pub async fn update_profile(
        &self,
        subject: &Subject,
        id: i64,
        email: Option<&str>,
        realname: &str,
        comment: &str,
    ) -> Result<(), UserError> {
        require_self_or_admin(subject, id)?;
        if let Some(email) = email {
            validate_email(email)?;
        }
        if self.db.update_user_profile(id, email, realname, comment).await? {
            Ok(())
        } else {
            Err(UserError::NotFound(id))
        }
    }

    /// Changes a password. The user must give the old one; an administrator resetting someone
    /// else's need not.
    /// Sets a user's password. Changing one's own needs the old password, which the caller
    /// has checked through [`crate::identity::Identities::authenticate_user`] (throttled and
    /// counted as any login): `old_verified` says whether it was right. An administrator sets
    /// another user's password without it. Every portal session of the user ends.
    pub async fn change_password(
        &self,
        subject: &Subject,
        id: i64,
        old_verified: bool,
        new: &str,
    ) -> Result<(), UserError> {
        require_self_or_admin(subject, id)?;
        self.db.user_by_id(id).await?.ok_or(UserError::NotFound(id))?;
        if Self::needs_old_password(subject, id)? && !old_verified {
            return Err(UserError::Forbidden("the old password is wrong".into()));
        }
        password::check_policy(new).map_err(|e| UserError::Invalid(e.to_string()))?;
        let new_hash = self.hashing.hash(new).await?;
        let set = self.db.set_user_password(id, &new_hash).await;
        // Tokens issued for the old password end (they carry its version).
        self.caches.changed(crate::cache::Change::All).await;
        set?;
        Ok(())
    }

    /// Whether changing user `id`'s password as `subject` needs the old password: always one's
    /// own (an administrator's included).
    pub fn needs_old_password(subject: &Subject, id: i64) -> Result<bool, UserError> {
        let me = caller_id(subject)?;
        Ok(me == id || !subject.is_sysadmin())
    }

    pub async fn set_sysadmin(&self, subject: &Subject, id: i64, sysadmin: bool) -> Result<(), UserError> {
        require_admin(subject)?;
        if caller_id(subject)? == id {
            return Err(UserError::Forbidden("administrators cannot change their own administrator flag".into()));
        }
        let set = self.db.set_user_sysadmin(id, sysadmin).await;
        self.caches.changed(crate::cache::Change::All).await;
        if set? { Ok(()) } else { Err(UserError::NotFound(id)) }
    }

    pub async fn delete(&self, subject: &Subject, id: i64) -> Result<(), UserError> {
        require_admin(subject)?;
        if caller_id(subject)? == id {
            return Err(UserError::Forbidden("administrators cannot delete themselves".into()));
        }
        if self.db.owns_projects(id).await? {
            return Err(UserError::Forbidden("the user owns projects; delete or hand them over first".into()));
        }
        let deleted = self.db.delete_user(id).await;
        // Memberships go with the user, and the embedded database may give the id to the next
        // user: forget every cached role.
        self.caches.changed(crate::cache::Change::All).await;
        if deleted? { Ok(()) } else { Err(UserError::NotFound(id)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_emails() {
        for ok in ["alice", "a.b-c_d", "Ünïcode", "x@y"] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a,b", "a\"b", "a~b", "a#b", "a%b", "a$b", "robot$x"] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
        assert!(validate_email("a@example.com").is_ok());
        for bad in ["", "a", "a@b", "@example.com", "a@.com", "a b@example.com"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }
}
