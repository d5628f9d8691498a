use std::collections::HashMap;

/// Revoked tokens that have not expired yet, by `jti`, and applications whose every token
/// issued up to a moment is revoked (a deleted application). Small: only live revocations.
#[derive(Debug, Default)]
pub struct RevocationList {
    /// jti → when the token expires (seconds since the epoch).
    tokens: HashMap<String, i64>,
    /// client_id → (tokens issued at or before this second are revoked, until when to remember).
    clients: HashMap<String, (i64, i64)>,
}

impl RevocationList {
    /// Records one `token.revoked` event: `jti` `*` names every token of the client issued up
    /// to `at` (seconds), the moment of the revocation.
    pub fn record(&mut self, jti: &str, client_id: &str, expires_at: i64, at: i64) {
        if jti == Self::EVERY_TOKEN {
            self.revoke_client(client_id, at, expires_at);
        } else {
            self.revoke_token(jti, expires_at);
        }
    }

    pub const EVERY_TOKEN: &'static str = "*";

    pub fn revoke_token(&mut self, jti: &str, expires_at: i64) {
        self.tokens.insert(jti.to_owned(), expires_at);
    }

    /// Revokes every token of `client_id` issued at or before `issued_up_to`.
    pub fn revoke_client(&mut self, client_id: &str, issued_up_to: i64, remember_until: i64) {
        let entry = self
            .clients
            .entry(client_id.to_owned())
            .or_insert((issued_up_to, remember_until));
        *entry = (entry.0.max(issued_up_to), entry.1.max(remember_until));
    }

    pub fn is_revoked(&self, jti: &str, client_id: &str, issued_at: i64) -> bool {
        self.tokens.contains_key(jti)
            || self
                .clients
                .get(client_id)
                .is_some_and(|(up_to, _)| issued_at <= *up_to)
    }

    /// Forgets revocations of tokens that have expired by `now` (seconds).
    pub fn purge(&mut self, now: i64) -> usize {
        let before = self.tokens.len() + self.clients.len();
        self.tokens.retain(|_, exp| *exp > now);
        self.clients.retain(|_, (_, until)| *until > now);
        before - self.tokens.len() - self.clients.len()
    }

    pub fn len(&self) -> usize {
        self.tokens.len() + self.clients.len()
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
        let mut list = RevocationList::default();
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
