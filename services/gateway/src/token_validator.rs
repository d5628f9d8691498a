//! Is this bearer token good for this request? An in-process cache, then Redis (shared by the
//! replicas, keyed by a hash of the token, never the token), then the introspection service.
//! Before a token not yet cached costs a Redis or introspection call, its signature, issuer,
//! audience and times are checked here against auth's published keys, so forged or foreign
//! tokens are refused for the price of one signature check. Concurrent misses for one token
//! make one introspection call. Every answer, cached or not, is checked again here: expiry,
//! audience, and the revocations this replica has heard of.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cache::{LocalCache, RedisEntries};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use ids::Revoked;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use settings::Span;
use sha2::{Digest, Sha256};
use tokens::{RemoteKeys, RevocationList, VerifyError, now_secs};

use crate::metrics::GatewayMetrics;

/// The part of an RFC 7662 answer the gateway uses.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Answer {
    pub active: bool,
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default)]
    pub aud: String,
    #[serde(default)]
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub jti: String,
    /// The networks the token's client accepts requests from; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_networks: Vec<ipnet::IpNet>,
}

impl Answer {
    /// Whether a request from `address` may use this token (seed 001's IP filtering).
    pub fn admits(&self, address: std::net::IpAddr) -> bool {
        tokens::networks_admit(&self.allowed_networks, address)
    }

    /// The user the token speaks for; none for a client's own token, whose `sub` is its client
    /// id (RFC 9068). The one place the gateway tells the two apart.
    pub fn user(&self) -> Option<&str> {
        (!self.sub.is_empty() && self.sub != self.client_id).then_some(self.sub.as_str())
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split_ascii_whitespace().any(|s| s == scope)
    }
}

/// Why a token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Inactive, expired, revoked, or for another audience: 401 `invalid_token`.
    Invalid(&'static str),
    /// Not cached and introspection cannot be asked: 503, never let through.
    Unavailable,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TokenSettings {
    /// Tokens must be for this audience (auth's [oauth] audience).
    pub audience: String,
    /// Tokens must carry this issuer (auth's [oauth] issuer: the public gateway URL).
    pub issuer: String,
    /// The upstream (or URL) whose `/.well-known/jwks.json` publishes the signing keys.
    pub keys_from: String,
    /// A token naming an unknown key fetches the JWKS again, at most this often (seconds).
    pub jwks_refresh: Span,
    /// Positive answers are cached until `min(exp, this)` (seconds).
    pub max_ttl: Span,
    /// Negative answers are cached this long (seconds).
    pub negative_ttl: Span,
    /// Entries in the in-process cache.
    pub local_capacity: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IntrospectionSettings {
    /// The RFC 7662 endpoint, on the introspection service's own address.
    pub url: String,
    /// The gateway's client, allowed the privileged `introspect` scope.
    pub client_id: String,
    pub client_secret: SecretString,
    pub timeout: Span,
}

type Digest32 = [u8; 32];

/// Longer than any token auth signs (RS256 ones are under 1 KiB).
const MAX_TOKEN_LEN: usize = 4096;
type Pending = Shared<BoxFuture<'static, Result<Arc<Answer>, Refusal>>>;

pub struct Validator {
    local: LocalCache<Digest32, Arc<Answer>>,
    keys: RemoteKeys,
    shared: Option<RedisEntries>,
    revoked: RevocationList,
    in_flight: Mutex<HashMap<Digest32, Pending>>,
    introspection: Introspection,
    settings: TokenSettings,
    metrics: GatewayMetrics,
}

#[derive(Clone)]
struct Introspection {
    client: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: Arc<SecretString>,
    metrics: GatewayMetrics,
}

impl Introspection {
    async fn ask(self, token: String) -> Result<Arc<Answer>, Refusal> {
        let started = Instant::now();
        let answer = self
            .client
            .post(&self.url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let answer = match answer {
            Ok(response) => response.json::<Answer>().await,
            Err(error) => Err(error),
        };
        let outcome = if answer.is_ok() { "ok" } else { "error" };
        self.metrics
            .introspection
            .with_label_values(&[outcome])
            .observe(started.elapsed().as_secs_f64());
        answer.map(Arc::new).map_err(|error| {
            tracing::warn!(%error, "introspection failed");
            Refusal::Unavailable
        })
    }
}

/// Takes a finished (or abandoned) introspection call out of the in-flight map.
struct Retire<'a> {
    in_flight: &'a Mutex<HashMap<Digest32, Pending>>,
    digest: Digest32,
    pending: Option<Pending>,
}

impl Retire<'_> {
    /// Removes the call if it is still this one; true when this waiter removed it.
    fn now(&mut self) -> bool {
        let Some(pending) = self.pending.take() else {
            return false;
        };
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        let same = in_flight.get(&self.digest).is_some_and(|p| p.ptr_eq(&pending));
        if same {
            in_flight.remove(&self.digest);
        }
        same
    }
}

impl Drop for Retire<'_> {
    fn drop(&mut self) {
        self.now();
    }
}

fn token_key(digest: &Digest32) -> String {
    format!("tok:{}", hex::encode(digest))
}

pub fn jti_key(jti: &str) -> String {
    format!("jti:{jti}")
}

impl Validator {
    /// `keys_url`: the base address of the JWKS (`keys_from` resolved).
    pub fn new(
        settings: TokenSettings,
        keys_url: &str,
        introspection: &IntrospectionSettings,
        shared: Option<RedisEntries>,
        metrics: GatewayMetrics,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(introspection.timeout.0)
            .pool_max_idle_per_host(64)
            .build()?;
        let keys = RemoteKeys::new(keys_url, &settings.issuer, client.clone(), settings.jwks_refresh.0);
        Ok(Self {
            local: LocalCache::new(settings.local_capacity),
            keys,
            shared,
            revoked: RevocationList::default(),
            in_flight: Mutex::default(),
            introspection: Introspection {
                client,
                url: introspection.url.clone(),
                client_id: introspection.client_id.clone(),
                client_secret: Arc::new(introspection.client_secret.clone()),
                metrics: metrics.clone(),
            },
            settings,
            metrics,
        })
    }

    pub fn shared(&self) -> Option<&RedisEntries> {
        self.shared.as_ref()
    }

    pub fn keys(&self) -> &RemoteKeys {
        &self.keys
    }

    /// The token's answer if it is good now, from the nearest level that has it.
    pub async fn validate(&self, token: &str) -> Result<Arc<Answer>, Refusal> {
        // Access tokens are JWTs: anything else is refused here, so junk costs no look-up.
        if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
            return Err(Refusal::Invalid("not an access token"));
        }
        let digest: Digest32 = Sha256::digest(token.as_bytes()).into();
        if let Some(answer) = self.local.get(&digest) {
            self.metrics.lookup("local", "hit");
            return self.check(answer);
        }
        self.metrics.lookup("local", "miss");
        self.check_signature(token).await?;
        if let Some(answer) = self.lookup_shared(&digest).await {
            self.cache_locally(digest, answer.clone());
            return self.check(answer);
        }
        let answer = self.introspect(digest, token).await?;
        self.check(answer)
    }

    /// Refuses what auth did not sign for this audience, now. When auth's keys cannot be
    /// fetched the token goes on to introspection, which decides (and fails closed).
    async fn check_signature(&self, token: &str) -> Result<(), Refusal> {
        match self.keys.verify(token, Some(&self.settings.audience)).await {
            Ok(_) => Ok(()),
            Err(VerifyError::KeysUnavailable) => {
                self.metrics.lookup("signature", "unavailable");
                Ok(())
            }
            Err(_) => {
                self.metrics.lookup("signature", "invalid");
                Err(Refusal::Invalid(
                    "the token is not one this platform signed, or not for now",
                ))
            }
        }
    }

    async fn lookup_shared(&self, digest: &Digest32) -> Option<Arc<Answer>> {
        let shared = self.shared.as_ref()?;
        match shared.get(&token_key(digest)).await {
            Ok(Some(bytes)) => {
                self.metrics.lookup("redis", "hit");
                serde_json::from_slice(&bytes).ok().map(Arc::new)
            }
            Ok(None) => {
                self.metrics.lookup("redis", "miss");
                None
            }
            Err(error) => {
                self.metrics.lookup("redis", "error");
                tracing::debug!(%error, "Redis unavailable; asking introspection");
                None
            }
        }
    }

    /// One introspection call per token at a time: later callers wait for the first one.
    async fn introspect(&self, digest: Digest32, token: &str) -> Result<Arc<Answer>, Refusal> {
        let (pending, leader) = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            match in_flight.get(&digest) {
                Some(pending) => (pending.clone(), false),
                None => {
                    let pending = self.introspection.clone().ask(token.to_owned()).boxed().shared();
                    in_flight.insert(digest, pending.clone());
                    (pending, true)
                }
            }
        };
        self.metrics
            .lookup("introspection", if leader { "miss" } else { "coalesced" });
        let mut retire = Retire {
            in_flight: &self.in_flight,
            digest,
            pending: Some(pending.clone()),
        };
        let answer = pending.await;
        // Whoever gets here first retires the call and caches its answer; a waiter whose
        // request went away retires it too (on drop), so no finished call stays in the map.
        if retire.now()
            && let Ok(answer) = &answer
        {
            self.cache_locally(digest, answer.clone());
            self.cache_shared(digest, answer.clone()).await;
        }
        answer
    }

    fn ttl(&self, answer: &Answer) -> Duration {
        if !answer.active {
            return self.settings.negative_ttl.0;
        }
        let left = u64::try_from(answer.exp - now_secs()).unwrap_or(0);
        Duration::from_secs(left).min(self.settings.max_ttl.0)
    }

    fn cache_locally(&self, digest: Digest32, answer: Arc<Answer>) {
        let ttl = self.ttl(&answer);
        if !ttl.is_zero() {
            self.local.insert(digest, answer, ttl);
        }
    }

    /// Stores the answer in Redis, with an index from its `jti` so a revocation can delete it.
    async fn cache_shared(&self, digest: Digest32, answer: Arc<Answer>) {
        let (Some(shared), ttl) = (&self.shared, self.ttl(&answer)) else {
            return;
        };
        if ttl.is_zero() {
            return;
        }
        let Ok(bytes) = serde_json::to_vec(answer.as_ref()) else {
            return;
        };
        let key = token_key(&digest);
        let mut entries = vec![(key.clone(), bytes)];
        if answer.active {
            entries.push((jti_key(&answer.jti), key.into_bytes()));
        }
        if let Err(error) = shared.set_many(&entries, ttl).await {
            tracing::debug!(%error, "answer not shared in Redis");
        }
    }

    fn check(&self, answer: Arc<Answer>) -> Result<Arc<Answer>, Refusal> {
        if !answer.active {
            return Err(Refusal::Invalid("the token is not active"));
        }
        if answer.exp <= now_secs() {
            return Err(Refusal::Invalid("the token has expired"));
        }
        if answer.aud != self.settings.audience {
            return Err(Refusal::Invalid("the token is for another audience"));
        }
        if self
            .revoked
            .is_revoked(&answer.jti, &answer.client_id, &answer.sub, answer.iat)
        {
            return Err(Refusal::Invalid("the token was revoked"));
        }
        Ok(answer)
    }

    /// Records a revocation made at `at` and drops what the in-process cache holds of it.
    pub fn revoke(&self, revoked: &Revoked, expires_at: i64, at: i64) {
        self.revoked.record(revoked, expires_at, at);
        self.local.retain(|_, a| !covers(revoked, a, at));
    }

    /// Refuses the token `answer` is about from now on: its revocation route was just called.
    pub fn forget(&self, answer: &Answer) {
        self.revoked.revoke_token(&answer.jti, answer.exp);
        self.local.retain(|_, a| a.jti != answer.jti);
    }

    pub fn forget_expired_revocations(&self) {
        self.revoked.purge(now_secs());
    }
}

/// Whether the answer cached for a token is one `revoked`, made at `at`, covers.
fn covers(revoked: &Revoked, answer: &Answer, at: i64) -> bool {
    let issued_before = answer.iat <= at;
    match revoked {
        Revoked::Token { jti, .. } => answer.jti == jti.as_str(),
        Revoked::Client(client) => issued_before && answer.client_id == client.as_str(),
        Revoked::Grant { client_id, user } => {
            issued_before && answer.client_id == client_id.as_str() && answer.user() == Some(user.as_str())
        }
        Revoked::User(user) => issued_before && answer.user() == Some(user.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::Answer;

    #[test]
    fn a_token_speaks_for_a_user_only_when_its_sub_is_not_its_client() {
        let answer = |sub: &str| Answer {
            active: true,
            sub: sub.into(),
            client_id: "app".into(),
            ..Answer::default()
        };
        assert_eq!(answer("ana").user(), Some("ana"));
        assert_eq!(answer("app").user(), None, "a client's own token");
        assert_eq!(answer("").user(), None, "an answer without a subject");
    }
}
