//! Failed-attempt limits (logins, client authentication), built so that a stranger can slow
//! down guessing without locking anyone else out (OWASP's authentication guidance; Keycloak's
//! brute-force detection keeps its lock-outs temporary for the same reason).
//!
//! Every attempt names an account (a user or a client) and the real source address (the one
//! the gateway signed, see `identity::ClientAddress`). Three counters, over one window:
//! - the *pair* (account, address): past `max_failures` that pair waits for the window to
//!   close, correct credential or not. This is what stops guessing, and it hurts no one else.
//! - the *address*, over every account: past `source_max_failures` the address may only try
//!   accounts it has signed in to before (a "known pair"), so one address cannot spray
//!   passwords across accounts, yet people behind the same NAT who signed in before go on.
//! - the *user account*, from every address: past `account_max_failures` only known pairs may
//!   try it, against guessing spread over many addresses. Clients have no such counter: their
//!   secrets are 256 random bits, and an account-wide lock would only let a stranger shut
//!   out an application (the gateway's own client among them).
//!
//! Every lock ends with its window: none outlives `window` after the last counted failure
//! opened it. Counted in the shared cache (Redis in production), so replicas count together.

use settings::Span;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use cache::Counters;
use serde::Deserialize;

use crate::passwords::Lane;

/// `[limits]` of auth's settings.
#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// Failures of one account from one address before that pair waits.
    pub max_failures: u64,
    /// Failures from one address, any account, before it may try only accounts it knows.
    pub source_max_failures: u64,
    /// Failures against one user account, any address, before only known addresses may try.
    pub account_max_failures: u64,
    /// The window every counter runs over, and so the longest any lock lasts (seconds).
    pub window: Span,
    /// How long a success makes its (account, address) pair known (seconds).
    pub known_pair_ttl: Span,
    /// Password checks of strangers (pairs not known) waiting or running at once, past which
    /// one answers 429 (see `passwords`).
    pub hashing_queue: usize,
}

impl LimitSettings {
    pub fn validate(&self) -> Result<(), settings::SettingsError> {
        let counts = [self.max_failures, self.source_max_failures, self.account_max_failures];
        if counts.contains(&0) || self.window.0.is_zero() || self.known_pair_ttl.0.is_zero() || self.hashing_queue == 0
        {
            return Err(settings::rule("limits", "every limit and duration must be more than 0"));
        }
        Ok(())
    }
}

/// Who is trying what, from where.
#[derive(Debug, Clone)]
pub struct Attempt {
    account: Account,
    source: IpAddr,
}

#[derive(Debug, Clone)]
enum Account {
    User(String),
    Client(String),
}

impl Attempt {
    pub fn user(username: &str, source: IpAddr) -> Self {
        Self {
            account: Account::User(username.to_owned()),
            source,
        }
    }

    pub fn client(client_id: &str, source: IpAddr) -> Self {
        Self {
            account: Account::Client(client_id.to_owned()),
            source,
        }
    }

    pub fn source(&self) -> IpAddr {
        self.source
    }

    fn account_key(&self) -> String {
        match &self.account {
            Account::User(name) => format!("auth:failures:user:{name}"),
            Account::Client(id) => format!("auth:failures:client:{id}"),
        }
    }

    fn source_key(&self) -> String {
        format!("auth:failures:ip:{}", self.source)
    }

    fn pair_key(&self) -> String {
        format!("{}|{}", self.account_key(), self.source)
    }

    fn known_key(&self) -> String {
        format!("auth:known:{}", self.pair_key().trim_start_matches("auth:failures:"))
    }

    fn account_wide(&self) -> bool {
        matches!(self.account, Account::User(_))
    }
}

pub struct FailureLimiter {
    counters: Arc<dyn Counters>,
    settings: LimitSettings,
}

impl FailureLimiter {
    pub fn new(counters: Arc<dyn Counters>, settings: LimitSettings) -> Self {
        Self { counters, settings }
    }

    fn window(&self) -> Duration {
        self.settings.window.0
    }

    /// `Err(wait)` when this attempt may not be checked now; else whether its pair is known
    /// (the lane its password check takes). One cache round trip. A cache outage lets attempts
    /// through (logged): the limit defends in depth, it must not take logins down with it, nor
    /// shut out a known pair because its mark could not be read.
    pub async fn admit(&self, attempt: &Attempt) -> Result<Lane, Duration> {
        let keys = [
            attempt.pair_key(),
            attempt.source_key(),
            attempt.account_key(),
            attempt.known_key(),
        ];
        let windows = match self.counters.get_many(&keys).await {
            Ok(windows) => windows,
            Err(error) => {
                tracing::warn!(%error, "failure limits unavailable; attempt allowed");
                return Ok(Lane::Stranger);
            }
        };
        let over = |i: usize, limit: u64| {
            windows
                .get(i)
                .copied()
                .flatten()
                .filter(|w| w.count >= limit)
                .map(|w| w.remaining)
        };
        if let Some(wait) = over(0, self.settings.max_failures) {
            return Err(wait);
        }
        let source = over(1, self.settings.source_max_failures);
        let account = over(2, self.settings.account_max_failures).filter(|_| attempt.account_wide());
        let known = windows.get(3).is_some_and(Option::is_some);
        match (source.max(account), known) {
            (_, true) => Ok(Lane::Known),
            (Some(wait), false) => Err(wait),
            (None, false) => Ok(Lane::Stranger),
        }
    }

    pub async fn failed(&self, attempt: &Attempt) {
        self.count(attempt, Some(attempt.pair_key())).await;
    }

    /// A stranger's attempt refused unchecked (the password lane was full): evidence of a
    /// flood against the account and from the address, so it counts there, but not against
    /// the pair, whose own lock a real person at a new address would otherwise earn by
    /// arriving during someone else's attack.
    pub async fn unchecked(&self, attempt: &Attempt) {
        self.count(attempt, None).await;
    }

    async fn count(&self, attempt: &Attempt, pair: Option<String>) {
        let mut keys: Vec<String> = pair.into_iter().collect();
        keys.push(attempt.source_key());
        if attempt.account_wide() {
            keys.push(attempt.account_key());
        }
        for key in keys {
            if let Err(error) = self.counters.hit(&key, self.window()).await {
                tracing::warn!(%error, "failure not counted");
            }
        }
    }

    /// Remembers the pair, so that others' failures do not shut it out later. The mark's
    /// window opens at the first success: a pair stays known `known_pair_ttl` after it.
    pub async fn succeeded(&self, attempt: &Attempt) {
        let known_for = self.settings.known_pair_ttl.0;
        if let Err(error) = self.counters.hit(&attempt.known_key(), known_for).await {
            tracing::warn!(%error, "sign-in not remembered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> FailureLimiter {
        FailureLimiter::new(
            Arc::new(cache::InProcessCounters::default()),
            LimitSettings {
                max_failures: 3,
                source_max_failures: 5,
                account_max_failures: 8,
                window: Span::from_secs(60),
                known_pair_ttl: Span::from_secs(3600),
                hashing_queue: 8,
            },
        )
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    async fn fail(limiter: &FailureLimiter, attempt: &Attempt, times: usize) {
        for _ in 0..times {
            limiter.failed(attempt).await;
        }
    }

    #[tokio::test]
    async fn a_pair_waits_after_its_failures_and_no_one_else_does() {
        let limiter = limiter();
        let ana_here = Attempt::user("ana", ip(1));
        fail(&limiter, &ana_here, 3).await;
        let wait = limiter.admit(&ana_here).await.expect_err("the pair is locked");
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        assert!(
            limiter.admit(&Attempt::user("ana", ip(2))).await.is_ok(),
            "ana elsewhere"
        );
        assert!(limiter.admit(&Attempt::user("bob", ip(1))).await.is_ok(), "bob here");
        limiter.succeeded(&ana_here).await;
        assert!(
            limiter.admit(&ana_here).await.is_err(),
            "knowing a pair does not lift its own lock"
        );
    }

    #[tokio::test]
    async fn a_spraying_address_is_stopped_but_known_pairs_behind_it_go_on() {
        let limiter = limiter();
        let bob = Attempt::user("bob", ip(1));
        limiter.succeeded(&bob).await;
        for name in ["u1", "u2", "u3", "u4", "u5"] {
            fail(&limiter, &Attempt::user(name, ip(1)), 1).await;
        }
        assert!(
            limiter.admit(&Attempt::user("u6", ip(1))).await.is_err(),
            "sprayer stopped"
        );
        assert_eq!(
            limiter.admit(&bob).await,
            Ok(Lane::Known),
            "bob signed in from there before, and takes the known lane"
        );
        assert!(
            limiter.admit(&Attempt::user("u6", ip(2))).await.is_ok(),
            "other addresses"
        );
    }

    #[tokio::test]
    async fn a_user_account_attacked_from_many_addresses_admits_only_known_ones() {
        let limiter = limiter();
        let home = Attempt::user("ana", ip(200));
        limiter.succeeded(&home).await;
        for last in 1..=8 {
            fail(&limiter, &Attempt::user("ana", ip(last)), 1).await;
        }
        assert!(limiter.admit(&Attempt::user("ana", ip(100))).await.is_err());
        assert!(limiter.admit(&home).await.is_ok(), "ana at home is not locked out");
    }

    #[tokio::test]
    async fn unchecked_attempts_count_against_the_account_and_address_but_not_the_pair() {
        let limiter = limiter();
        let ana_new_here = Attempt::user("ana", ip(1));
        for _ in 0..3 {
            limiter.unchecked(&ana_new_here).await;
        }
        assert!(limiter.admit(&ana_new_here).await.is_ok(), "the pair is not locked");
        for last in 2..=6 {
            limiter.unchecked(&Attempt::user("ana", ip(last))).await;
        }
        assert!(
            limiter.admit(&Attempt::user("ana", ip(100))).await.is_err(),
            "a flood from eight addresses locks the account for strangers"
        );
        for name in ["u1", "u2"] {
            limiter.unchecked(&Attempt::user(name, ip(1))).await;
        }
        assert!(
            limiter.admit(&Attempt::user("u3", ip(1))).await.is_err(),
            "a flooding address may only try what it knows"
        );
    }

    struct Down;

    #[async_trait::async_trait]
    impl Counters for Down {
        async fn hit(&self, _: &str, _: Duration) -> Result<cache::Window, cache::CacheError> {
            Err(cache::CacheError::Unavailable("down".into()))
        }
        async fn get(&self, _: &str) -> Result<Option<cache::Window>, cache::CacheError> {
            Err(cache::CacheError::Unavailable("down".into()))
        }
        async fn get_many(&self, _: &[String]) -> Result<Vec<Option<cache::Window>>, cache::CacheError> {
            Err(cache::CacheError::Unavailable("down".into()))
        }
        async fn ping(&self) -> Result<(), cache::CacheError> {
            Err(cache::CacheError::Unavailable("down".into()))
        }
    }

    #[tokio::test]
    async fn a_cache_outage_lets_attempts_through() {
        let limiter = FailureLimiter::new(Arc::new(Down), limiter().settings);
        let attempt = Attempt::user("ana", ip(1));
        fail(&limiter, &attempt, 10).await;
        limiter.succeeded(&attempt).await;
        assert!(limiter.admit(&attempt).await.is_ok());
    }

    #[tokio::test]
    async fn clients_have_no_account_wide_lock() {
        let limiter = limiter();
        for last in 1..=20 {
            fail(&limiter, &Attempt::client("gateway", ip(last)), 1).await;
        }
        assert!(
            limiter.admit(&Attempt::client("gateway", ip(99))).await.is_ok(),
            "a new replica of the gateway can still authenticate"
        );
    }
}
