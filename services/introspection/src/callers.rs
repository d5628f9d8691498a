//! Who is asking (RFC 7662 §2.1: the caller must authenticate): a bearer access token carrying
//! the introspection scope, checked here like any token, or client credentials (Basic or form),
//! checked by auth and remembered for a short while by a hash of the credentials, so a busy
//! caller costs auth one call a minute (per address it calls from). Auth is told the caller's real address (signed as the
//! gateway signs it), so its failure limits count each partner apart, not this service.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use cache::LocalCache;
use http_kit::OAuthError;
use identity::ClientAddress;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::store::Revocations;
use tokens::RemoteKeys;

#[derive(Debug, Clone, Deserialize)]
pub struct Caller {
    pub client_id: String,
    /// Scopes of the caller's token, or every scope its client may be granted.
    pub scope: String,
}

impl Caller {
    pub fn holds(&self, scope: &str) -> bool {
        self.scope.split_ascii_whitespace().any(|s| s == scope)
    }
}

pub struct Callers {
    auth_url: String,
    client: reqwest::Client,
    known: LocalCache<[u8; 32], Arc<Caller>>,
    remember: Duration,
    /// Signs the caller's address for auth.
    identity_secret: SecretString,
}

enum Presented<'a> {
    Bearer(&'a str),
    /// `Authorization: Basic …` forwarded as is, or form credentials.
    Basic(String),
    Form(&'a str, &'a str),
}

fn presented<'a>(
    req: &'a HttpRequest,
    form_id: Option<&'a str>,
    form_secret: Option<&'a str>,
) -> Result<Presented<'a>, OAuthError> {
    let authorization = req.headers().contains_key(header::AUTHORIZATION);
    match (authorization, form_id, form_secret) {
        (true, None, None) => {
            if let Some(token) = http_kit::credentials::bearer(req) {
                Ok(Presented::Bearer(token))
            } else if let Some(basic) = http_kit::credentials::basic(req) {
                Ok(Presented::Basic(format!("Basic {basic}")))
            } else {
                Err(OAuthError::invalid_client("unsupported Authorization scheme"))
            }
        }
        (false, Some(id), Some(secret)) => Ok(Presented::Form(id, secret)),
        (true, Some(_), _) | (true, _, Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        )),
        _ => Err(OAuthError::invalid_client("the caller must authenticate")),
    }
}

impl Callers {
    pub fn new(auth_url: &str, client: reqwest::Client, remember: Duration, identity_secret: SecretString) -> Self {
        Self {
            auth_url: format!("{}/internal/v1/client-authentication", auth_url.trim_end_matches('/')),
            client,
            known: LocalCache::new(10_000),
            remember,
            identity_secret,
        }
    }

    pub async fn authenticate(
        &self,
        req: &HttpRequest,
        form_id: Option<&str>,
        form_secret: Option<&str>,
        keys: &RemoteKeys,
        revocations: &Revocations,
        bearer_scope: &str,
    ) -> Result<Arc<Caller>, OAuthError> {
        match presented(req, form_id, form_secret)? {
            Presented::Bearer(token) => {
                let claims = keys
                    .verify(token, None)
                    .await
                    .map_err(|_| OAuthError::invalid_client("the caller's token is not valid"))?;
                if revocations.is_revoked(&claims) {
                    return Err(OAuthError::invalid_client("the caller's token is not valid"));
                }
                if !claims.scopes().any(|s| s == bearer_scope) {
                    return Err(OAuthError::invalid_client(format!(
                        "a bearer token must carry the `{bearer_scope}` scope to introspect"
                    )));
                }
                Ok(Arc::new(Caller {
                    client_id: claims.client_id.into_string(),
                    scope: claims.scope,
                }))
            }
            Presented::Basic(header) => self.by_credentials(header, ClientAddress::of(req).0).await,
            Presented::Form(id, secret) => {
                let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", encode(id), encode(secret));
                let basic = base64::engine::general_purpose::STANDARD.encode(pair);
                self.by_credentials(format!("Basic {basic}"), ClientAddress::of(req).0)
                    .await
            }
        }
    }

    /// Credentials checked by auth, remembered by their hash (never stored in clear).
    async fn by_credentials(&self, authorization: String, source: IpAddr) -> Result<Arc<Caller>, OAuthError> {
        // By credentials and address: an application may accept its credentials from some
        // networks only, which auth decides.
        let digest: [u8; 32] = Sha256::new()
            .chain_update(authorization.as_bytes())
            .chain_update(source.to_string().as_bytes())
            .finalize()
            .into();
        if let Some(caller) = self.known.get(&digest) {
            return Ok(caller);
        }
        let request_id = uuid::Uuid::now_v7().to_string();
        let secret = self.identity_secret.expose_secret().as_bytes();
        let mut request = self
            .client
            .post(&self.auth_url)
            .header(header::AUTHORIZATION.as_str(), authorization)
            .header(header::CONTENT_TYPE.as_str(), "application/x-www-form-urlencoded")
            .header("x-request-id", &request_id);
        for (name, value) in identity::sign_address(source, secret, &request_id, tokens::now_secs()) {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(OAuthError::temporarily_unavailable)?;
        match response.status().as_u16() {
            200 => {
                let caller: Caller = response.json().await.map_err(OAuthError::server_error)?;
                let caller = Arc::new(caller);
                self.known.insert(digest, caller.clone(), self.remember);
                Ok(caller)
            }
            400 | 401 => Err(OAuthError::invalid_client("unknown client or wrong secret")),
            403 => Err(OAuthError::address_not_allowed()),
            429 => Err(OAuthError::too_many_attempts(Duration::from_secs(
                response
                    .headers()
                    .get(header::RETRY_AFTER.as_str())
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(60),
            ))),
            status => Err(OAuthError::temporarily_unavailable(format!("auth answered {status}"))),
        }
    }

    /// Forgets every remembered caller of a deleted application.
    pub fn forget_client(&self, client_id: &str) {
        self.known.retain(|_, caller| caller.client_id != client_id);
    }
}
