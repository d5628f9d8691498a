use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ids::Revoked;

/// Revoked tokens that have not expired yet, by `jti`; applications whose every token issued
/// up to a moment is revoked (a deleted application); users likewise (a deleted account).
/// Small: only live revocations.
/// Shared by every request of a process, so it locks inside.
#[derive(Debug, Default)]
pub struct RevocationList {
    lists: RwLock<Lists>,
}

#[derive(Debug, Default)]
struct Lists {
    /// jti → when the token expires (seconds since the epoch).
    tokens: HashMap<String, i64>,
    /// client_id → (tokens issued at or before this second are revoked, until when to remember).
    clients: HashMap<String, (i64, i64)>,
    /// sub → the same, for every token of a user whatever its client.
    subjects: HashMap<String, (i64, i64)>,
    /// (client_id, sub) → the same, for the tokens one application holds for one user (the
    /// user withdrew their consent).
    grants: HashMap<(String, String), (i64, i64)>,
}

/// Raises a wide revocation to cover `issued_up_to` and to be remembered until `until`.
fn widen<K: std::hash::Hash + Eq>(map: &mut HashMap<K, (i64, i64)>, key: K, issued_up_to: i64, until: i64) {
    let entry = map.entry(key).or_insert((issued_up_to, until));
    *entry = (entry.0.max(issued_up_to), entry.1.max(until));
}

impl Lists {
    fn len(&self) -> usize {
        self.tokens.len() + self.clients.len() + self.subjects.len() + self.grants.len()
    }
}

impl RevocationList {
    fn read(&self) -> RwLockReadGuard<'_, Lists> {
        self.lists.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Lists> {
        self.lists.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one `token.revoked` event: all but a single token are covered if they were
    /// issued up to `at` (seconds), the moment of the revocation.
    pub fn record(&self, revoked: &Revoked, expires_at: i64, at: i64) {
        match revoked {
            Revoked::Token { jti, .. } => self.revoke_token(jti, expires_at),
            Revoked::Client(client) => self.revoke_client(client, at, expires_at),
            Revoked::Grant { client_id, user } => self.revoke_grant(client_id, user, at, expires_at),
            Revoked::User(user) => self.revoke_subject(user, at, expires_at),
        }
    }

    /// Revokes the tokens `client_id` holds for the user `sub`, issued at or before `issued_up_to`.
    pub fn revoke_grant(&self, client_id: &str, sub: &str, issued_up_to: i64, remember_until: i64) {
        let key = (client_id.to_owned(), sub.to_owned());
        widen(&mut self.write().grants, key, issued_up_to, remember_until);
    }

    pub fn revoke_token(&self, jti: &str, expires_at: i64) {
        self.write().tokens.insert(jti.to_owned(), expires_at);
    }

    /// Revokes every token of `client_id` issued at or before `issued_up_to`.
    pub fn revoke_client(&self, client_id: &str, issued_up_to: i64, remember_until: i64) {
        widen(
            &mut self.write().clients,
            client_id.to_owned(),
            issued_up_to,
            remember_until,
        );
    }

    /// Revokes every token of the user `sub` issued at or before `issued_up_to`.
    pub fn revoke_subject(&self, sub: &str, issued_up_to: i64, remember_until: i64) {
        widen(&mut self.write().subjects, sub.to_owned(), issued_up_to, remember_until);
    }

    pub fn is_revoked(&self, jti: &str, client_id: &str, sub: &str, issued_at: i64) -> bool {
        let lists = self.read();
        let covers =
            |map: &HashMap<String, (i64, i64)>, key: &str| map.get(key).is_some_and(|(up_to, _)| issued_at <= *up_to);
        let grant = lists
            .grants
            .get(&(client_id.to_owned(), sub.to_owned()))
            .is_some_and(|(up_to, _)| issued_at <= *up_to);
        lists.tokens.contains_key(jti) || covers(&lists.clients, client_id) || covers(&lists.subjects, sub) || grant
    }

    /// Forgets revocations of tokens that have expired by `now` (seconds).
    pub fn purge(&self, now: i64) -> usize {
        let mut lists = self.write();
        let before = lists.len();
        lists.tokens.retain(|_, exp| *exp > now);
        lists.clients.retain(|_, (_, until)| *until > now);
        lists.subjects.retain(|_, (_, until)| *until > now);
        lists.grants.retain(|_, (_, until)| *until > now);
        before - lists.len()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use ids::{Revoked, literal};

    use super::RevocationList;

    #[test]
    fn a_client_revocation_covers_tokens_issued_until_then() {
        let list = RevocationList::default();
        list.revoke_client("app", 100, 200);
        assert!(list.is_revoked("any", "app", "ana", 100));
        assert!(
            !list.is_revoked("any", "app", "ana", 101),
            "issued after the revocation"
        );
        assert!(!list.is_revoked("any", "other", "ana", 50));
        list.revoke_token("t1", 150);
        assert!(list.is_revoked("t1", "other", "ana", 0));
        assert_eq!(list.purge(160), 1);
        assert!(!list.is_revoked("t1", "other", "ana", 0));
        assert_eq!(list.purge(200), 1);
        assert!(list.is_empty());
    }

    #[test]
    fn a_user_revocation_covers_their_tokens_of_every_client() {
        let list = RevocationList::default();
        list.record(&Revoked::User(literal!(UserId, "ana")), 200, 100);
        assert!(list.is_revoked("t", "app", "ana", 100) && list.is_revoked("u", "other", "ana", 90));
        assert!(!list.is_revoked("t", "app", "ana", 101), "issued after the revocation");
        assert!(!list.is_revoked("t", "app", "bob", 50));
        list.record(&Revoked::Client(literal!(ClientId, "app")), 200, 100);
        assert!(list.is_revoked("t", "app", "bob", 50), "client-wide");
        assert_eq!(list.purge(200), 2);
    }

    #[test]
    fn a_withdrawn_consent_covers_one_application_and_one_user() {
        let list = RevocationList::default();
        let grant = Revoked::Grant {
            client_id: literal!(ClientId, "app"),
            user: literal!(UserId, "ana"),
        };
        list.record(&grant, 200, 100);
        assert!(list.is_revoked("t", "app", "ana", 100));
        assert!(!list.is_revoked("t", "app", "ana", 101), "issued after");
        assert!(
            !list.is_revoked("t", "app", "bob", 50),
            "another user of the application"
        );
        assert!(
            !list.is_revoked("t", "other", "ana", 50),
            "the user at another application"
        );
        assert_eq!(list.purge(200), 1);
    }
}
