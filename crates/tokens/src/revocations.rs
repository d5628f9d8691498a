use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Revoked tokens that have not expired yet, by `jti`, and applications whose every token
/// issued up to a moment is revoked (a deleted application). Small: only live revocations.
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
}

impl RevocationList {
    pub const EVERY_TOKEN: &'static str = "*";

    fn read(&self) -> RwLockReadGuard<'_, Lists> {
        self.lists.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Lists> {
        self.lists.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one `token.revoked` event: `jti` `*` names every token of the client issued up
    /// to `at` (seconds), the moment of the revocation.
    pub fn record(&self, jti: &str, client_id: &str, expires_at: i64, at: i64) {
        if jti == Self::EVERY_TOKEN {
            self.revoke_client(client_id, at, expires_at);
        } else {
            self.revoke_token(jti, expires_at);
        }
    }

    pub fn revoke_token(&self, jti: &str, expires_at: i64) {
        self.write().tokens.insert(jti.to_owned(), expires_at);
    }

    /// Revokes every token of `client_id` issued at or before `issued_up_to`.
    pub fn revoke_client(&self, client_id: &str, issued_up_to: i64, remember_until: i64) {
        let mut lists = self.write();
        let entry = lists
            .clients
            .entry(client_id.to_owned())
            .or_insert((issued_up_to, remember_until));
        *entry = (entry.0.max(issued_up_to), entry.1.max(remember_until));
    }

    pub fn is_revoked(&self, jti: &str, client_id: &str, issued_at: i64) -> bool {
        let lists = self.read();
        lists.tokens.contains_key(jti)
            || lists
                .clients
                .get(client_id)
                .is_some_and(|(up_to, _)| issued_at <= *up_to)
    }

    /// Forgets revocations of tokens that have expired by `now` (seconds).
    pub fn purge(&self, now: i64) -> usize {
        let mut lists = self.write();
        let before = lists.tokens.len() + lists.clients.len();
        lists.tokens.retain(|_, exp| *exp > now);
        lists.clients.retain(|_, (_, until)| *until > now);
        before - lists.tokens.len() - lists.clients.len()
    }

    pub fn len(&self) -> usize {
        let lists = self.read();
        lists.tokens.len() + lists.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::RevocationList;

    #[test]
    fn a_client_revocation_covers_tokens_issued_until_then() {
        let list = RevocationList::default();
        list.revoke_client("app", 100, 200);
        assert!(list.is_revoked("any", "app", 100));
        assert!(!list.is_revoked("any", "app", 101), "issued after the revocation");
        assert!(!list.is_revoked("any", "other", 50));
        list.revoke_token("t1", 150);
        assert!(list.is_revoked("t1", "other", 0));
        assert_eq!(list.purge(160), 1);
        assert!(!list.is_revoked("t1", "other", 0));
        assert_eq!(list.purge(200), 1);
        assert!(list.is_empty());
    }
}
