//! `/portal/sign-in` → auth's login page → `/portal/callback` → a session; `/portal/sign-out`.

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::Endpoint;
use maud::html;
use serde::Deserialize;

use super::see_other;
use crate::error::PortalError;
use crate::sessions::{self, COOKIE, Submitted, same, sha256_hex};
use crate::state::Portal;
use crate::store::SignInRow;
use crate::views;

/// Signing in (`/portal/sign-in`, auth's callback) and out.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/portal/sign-in").get(start).build())
        .service(Endpoint::new("/portal/callback").get(callback).build())
        .service(Endpoint::new("/portal/sign-out").post(sign_out).build());
}

const SIGN_IN_COOKIE: &str = "portal_sign_in";
const SIGN_IN_TTL_MS: i64 = 10 * 60 * 1000;

#[derive(Deserialize)]
pub struct StartQuery {
    return_to: Option<String>,
}

/// Only the portal's own pages, so signing in cannot be an open redirect.
fn safe_return(return_to: Option<&str>) -> String {
    return_to
        .filter(|r| (*r == "/portal" || r.starts_with("/portal/")) && !r.contains("//") && !r.contains('\\'))
        .unwrap_or("/portal")
        .to_owned()
}

pub async fn start(portal: web::Data<Portal>, query: web::Query<StartQuery>) -> Result<HttpResponse, PortalError> {
    let started = portal.oauth.start();
    let row = SignInRow {
        state_hash: sha256_hex(&started.state),
        verifier: started.verifier,
        return_to: safe_return(query.return_to.as_deref()),
        expires_at: storage::now_millis() + SIGN_IN_TTL_MS,
    };
    portal.store.insert_sign_in(row).await?;
    let mut response = see_other(started.url.as_str());
    // The state comes back in the callback's query and must match this browser's cookie, so a
    // code started by someone else cannot sign this browser in (login CSRF).
    let _ = response.add_cookie(&portal.cookie(SIGN_IN_COOKIE, started.state));
    Ok(response)
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn restart() -> PortalError {
    PortalError::Refused {
        status: StatusCode::BAD_REQUEST,
        message: "This sign-in expired or was started in another browser. Sign in again.".to_owned(),
    }
}

pub async fn callback(
    portal: web::Data<Portal>,
    req: HttpRequest,
    query: web::Query<Callback>,
) -> Result<HttpResponse, PortalError> {
    let query = query.into_inner();
    let expected = req.cookie(SIGN_IN_COOKIE).map(|c| c.value().to_owned());
    let state = query.state.filter(|s| expected.as_deref().is_some_and(|e| same(e, s)));
    let Some(state) = state else {
        return Err(restart());
    };
    if let Some(error) = query.error {
        return Ok(views::bare(
            StatusCode::FORBIDDEN,
            "Sign-in cancelled",
            html! {
                h1 { "You are not signed in" }
                p.notice.error role="alert" { "The platform answered: " code { (error) } }
                p { a.button href="/portal/sign-in" { "Try again" } }
            },
        ));
    }
    let code = query.code.ok_or_else(restart)?;
    let pending = portal
        .store
        .take_sign_in(sha256_hex(&state), storage::now_millis())
        .await?
        .ok_or_else(restart)?;
    let tokens = portal.oauth.exchange(code, pending.verifier).await.map_err(|e| {
        tracing::warn!(error = %e, "code exchange failed");
        restart()
    })?;
    let me = portal.api.me(&tokens.access).await?;
    let secret = portal.open_session(&me, tokens).await?;
    tracing::info!(user.id = %me.id, "signed in to the portal");
    let mut response = see_other(&pending.return_to);
    let _ = response.add_cookie(&portal.cookie(COOKIE, secret));
    let _ = response.add_cookie(&gone(&portal, SIGN_IN_COOKIE));
    Ok(response)
}

fn gone<'a>(portal: &Portal, name: &'a str) -> Cookie<'a> {
    let mut cookie = portal.cookie(name, String::new());
    cookie.make_removal();
    cookie
}

pub async fn sign_out(
    portal: web::Data<Portal>,
    req: HttpRequest,
    _posted: Submitted,
) -> Result<HttpResponse, PortalError> {
    if let Some(cookie) = req.cookie(sessions::COOKIE) {
        portal.close_session(cookie.value()).await?;
    }
    let mut response = views::signed_out();
    let _ = response.add_cookie(&gone(&portal, COOKIE));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::safe_return;

    #[test]
    fn return_to_stays_in_the_portal() {
        assert_eq!(safe_return(Some("/portal/applications/x")), "/portal/applications/x");
        assert_eq!(safe_return(Some("/portal")), "/portal");
        assert_eq!(safe_return(Some("https://evil.example/")), "/portal");
        assert_eq!(safe_return(Some("//evil.example/portal/")), "/portal");
        assert_eq!(safe_return(Some("/portalx")), "/portal");
        assert_eq!(safe_return(Some("/portal/\\evil")), "/portal");
        assert_eq!(safe_return(None), "/portal");
    }
}
