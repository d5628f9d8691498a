//! Who is signed in: the `portal_session` cookie (`HttpOnly`, `SameSite=Lax`, `Secure` outside
//! plain-http loopback) names a server-side session holding the person's tokens, refreshed
//! shortly before they expire. Every form carries the session's CSRF token (`Submitted`).

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use ids::UserId;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::PortalError;
use crate::sign_in::Tokens;
use crate::state::Portal;
use crate::store::SessionRow;

pub const COOKIE: &str = "portal_session";
/// Refresh this long before the access token expires, so no call carries a dying token.
const REFRESH_MARGIN_MS: i64 = 60_000;

pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

pub fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A signed-in person, with a live access token (no `Debug`: it would print the token).
#[derive(Clone)]
pub struct Session {
    pub user_id: UserId,
    pub username: String,
    pub roles: Vec<String>,
    pub csrf: String,
    pub token: String,
}

impl Session {
    /// From the session (administrators are named at sign-in); pages that depend on a role
    /// that can be granted meanwhile read the account again.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}

impl Portal {
    pub fn cookie<'a>(&self, name: &'a str, value: String) -> Cookie<'a> {
        Cookie::build(name, value)
            .path("/portal")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookies)
            .finish()
    }

    /// Stores a new session; returns the cookie's value.
    pub async fn open_session(&self, me: &crate::api::Me, tokens: Tokens) -> Result<String, PortalError> {
        let secret = random_secret();
        let now = storage::now_millis();
        let row = SessionRow {
            id_hash: sha256_hex(&secret),
            user_id: me.id.clone(),
            username: me.username.clone(),
            roles: me.roles.join(" "),
            csrf: random_secret(),
            access_token: tokens.access,
            refresh_token: tokens.refresh,
            access_expires_at: tokens.expires_at,
            created_at: now,
            expires_at: now + i64::try_from(self.session_ttl.as_millis()).unwrap_or(i64::MAX / 2),
        };
        self.store.insert_session(row).await?;
        Ok(secret)
    }

    /// Ends the session named by the cookie and revokes its tokens.
    pub async fn close_session(&self, cookie: &str) -> Result<(), PortalError> {
        if let Some(row) = self.store.take_session(sha256_hex(cookie)).await? {
            self.oauth.revoke(row.access_token, row.refresh_token).await;
            tracing::info!(user.id = %row.user_id, "signed out of the portal");
        }
        Ok(())
    }

    async fn session(&self, cookie: Option<String>, return_to: String) -> Result<Session, PortalError> {
        let sign_in = || PortalError::SignIn {
            return_to: return_to.clone(),
        };
        let hash = sha256_hex(&cookie.ok_or_else(sign_in)?);
        let mut row = self.live_session(&hash).await?.ok_or_else(sign_in)?;
        if row.access_expires_at - REFRESH_MARGIN_MS <= storage::now_millis() {
            row = self.refreshed(&hash).await?.ok_or_else(sign_in)?;
        }
        Ok(Session {
            user_id: row.user_id,
            username: row.username,
            roles: row
                .roles
                .split(' ')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            csrf: row.csrf,
            token: row.access_token,
        })
    }

    async fn live_session(&self, hash: &str) -> Result<Option<SessionRow>, PortalError> {
        Ok(self.store.session(hash.to_owned(), storage::now_millis()).await?)
    }

    /// The session with fresh tokens, or None when they cannot be refreshed (it is then ended).
    /// Requests of one session refresh one at a time: a refresh token works once, and auth
    /// revokes the whole family when it sees one again.
    async fn refreshed(&self, hash: &str) -> Result<Option<SessionRow>, PortalError> {
        let _turn = self.refresh_lock(hash).lock().await;
        let Some(mut row) = self.live_session(hash).await? else {
            return Ok(None);
        };
        if row.access_expires_at - REFRESH_MARGIN_MS > storage::now_millis() {
            return Ok(Some(row)); // refreshed by the request that held the lock before
        }
        let refreshed = match row.refresh_token.clone() {
            Some(refresh) => self.oauth.refresh(refresh).await.ok(),
            None => None,
        };
        let Some(tokens) = refreshed else {
            let _ = self.store.take_session(hash.to_owned()).await;
            return Ok(None);
        };
        self.store
            .set_tokens(
                hash.to_owned(),
                tokens.access.clone(),
                tokens.refresh.clone(),
                tokens.expires_at,
            )
            .await?;
        row.access_token = tokens.access;
        row.refresh_token = tokens.refresh;
        row.access_expires_at = tokens.expires_at;
        Ok(Some(row))
    }

    fn refresh_lock(&self, hash: &str) -> &tokio::sync::Mutex<()> {
        let stripe = usize::from_str_radix(hash.get(..4).unwrap_or("0"), 16).unwrap_or(0);
        &self.refresh_locks[stripe % self.refresh_locks.len()]
    }
}

fn portal(req: &HttpRequest) -> Result<web::Data<Portal>, PortalError> {
    req.app_data::<web::Data<Portal>>()
        .cloned()
        .ok_or_else(|| PortalError::unavailable("portal state missing"))
}

/// Where to come back after signing in: this page, for a GET; the portal's home otherwise.
fn here(req: &HttpRequest) -> String {
    if req.method() == actix_web::http::Method::GET {
        req.uri().path_and_query().map_or("/portal", |p| p.as_str()).to_owned()
    } else {
        "/portal".to_owned()
    }
}

impl FromRequest for Session {
    type Error = PortalError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PortalError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let cookie = req.cookie(COOKIE).map(|c| c.value().to_owned());
        let (portal, return_to) = (portal(req), here(req));
        Box::pin(async move { portal?.session(cookie, return_to).await })
    }
}

/// A posted form's fields, in order, repeated names kept (checkbox groups).
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The field's first value, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
    }

    /// Every value of a repeated field (checkboxes), or the lines of a text area.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| {
                v.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// A form posted by the signed-in person from one of the portal's pages: the CSRF token it
/// carries is the session's (synchronizer token), or the request is refused before the handler.
pub struct Submitted {
    pub session: Session,
    pub fields: Fields,
}

impl FromRequest for Submitted {
    type Error = PortalError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PortalError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = Session::from_request(req, payload);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let session = session.await?;
            let body = body.await.map_err(|e| PortalError::Refused {
                status: actix_web::http::StatusCode::BAD_REQUEST,
                message: format!("The form could not be read: {e}"),
            })?;
            let fields = Fields::parse(&body);
            if !same(fields.get("csrf"), &session.csrf) {
                return Err(PortalError::Csrf);
            }
            Ok(Self { session, fields })
        })
    }
}
