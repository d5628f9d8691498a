//! Signing up where people sign in (seed 003: "Log in with" creates accounts): the login page
//! links here, the new account is signed in at once and the authorization that sent the
//! person continues to consent and back to the application. Passwords are checked for
//! strength with zxcvbn (not length rules alone); the e-mail address is confirmed by a
//! single-use link (`domain::verification`).

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use http_kit::Endpoint;
use serde::Deserialize;

use super::authorize::{csrf_ok, csrf_token, safe_return, signed_in, with_csrf};
use super::users::create_user;
use crate::domain::users::Verify;
use crate::domain::{Email, NewPassword, Username, verification};
use crate::state::AppState;
use crate::views::{self, SignUpForm};

/// Registers this file's endpoints (`http::routes` composes every file's).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/oauth2/sign-up").get(page).post(submit).build())
        .service(Endpoint::new("/oauth2/signed-up").get(signed_up).build())
        .service(Endpoint::new("/oauth2/verify-email").get(verify_email).build());
}

/// zxcvbn's scale: 3 is "safely unguessable: moderate protection from offline slow-hash
/// attacks", the level its authors recommend for accounts.
const MIN_SCORE: u8 = 3;

#[derive(Debug, Deserialize)]
pub struct Start {
    return_to: Option<String>,
}

pub async fn page(req: HttpRequest, state: web::Data<AppState>, query: web::Query<Start>) -> HttpResponse {
    let return_to = query.return_to.as_deref().and_then(safe_return).unwrap_or_default();
    let (csrf, fresh) = csrf_token(&req);
    let form = SignUpForm {
        return_to,
        ..SignUpForm::default()
    };
    with_csrf(&state, views::sign_up(&csrf, &form, &[]), csrf, fresh)
}

#[derive(Debug, Deserialize)]
pub struct Submitted {
    csrf: String,
    #[serde(default)]
    return_to: String,
    username: String,
    email: String,
    password: String,
}

/// A new account's fields, parsed.
struct Account {
    username: Username,
    email: Email,
    password: NewPassword,
}

/// (field, reason): shown beside the field.
type FieldErrors = Vec<(&'static str, String)>;

/// Every reason the form cannot create the account, by field.
fn check(form: &Submitted) -> Result<Account, FieldErrors> {
    let mut errors = Vec::new();
    let username = Username::parse(&form.username)
        .map_err(|e| errors.push(("username", e.reason)))
        .ok();
    let email = Email::parse(&form.email)
        .map_err(|e| errors.push(("email", e.reason)))
        .ok();
    let password = match NewPassword::parse(&form.password) {
        Ok(password) => strong_enough(&form.password, &form.username, &form.email)
            .map(|()| password)
            .map_err(|reason| errors.push(("password", reason)))
            .ok(),
        Err(e) => {
            errors.push(("password", e.reason));
            None
        }
    };
    match (username, email, password) {
        (Some(username), Some(email), Some(password)) if errors.is_empty() => Ok(Account {
            username,
            email,
            password,
        }),
        _ => Err(errors),
    }
}

fn strong_enough(password: &str, username: &str, email: &str) -> Result<(), String> {
    let estimate = zxcvbn::zxcvbn(password, &[username, email]);
    if u8::from(estimate.score()) >= MIN_SCORE {
        return Ok(());
    }
    let mut reason = "Too easy to guess.".to_owned();
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            reason = format!("Too easy to guess: {warning}");
        }
        if let Some(suggestion) = feedback.suggestions().first() {
            reason = format!("{reason} {suggestion}");
        }
    }
    Err(reason)
}

pub async fn submit(req: HttpRequest, state: web::Data<AppState>, form: web::Form<Submitted>) -> HttpResponse {
    let form = form.into_inner();
    if !csrf_ok(&req, &form.csrf) {
        return views::error(
            StatusCode::FORBIDDEN,
            "The sign-up form expired or was not sent from this site. Go back and try again.",
        );
    }
    let return_to = safe_return(&form.return_to).unwrap_or_default().to_owned();
    let kept = SignUpForm {
        return_to: &return_to,
        username: &form.username,
        email: &form.email,
    };
    let account = match check(&form) {
        Ok(account) => account,
        Err(errors) => return views::sign_up(&form.csrf, &kept, &errors),
    };
    let created = create_user(
        &state,
        account.username,
        account.email,
        account.password.secret(),
        BTreeSet::new(),
        Verify::Email,
    );
    let user = match created.await {
        Ok(user) => user,
        Err(error) if error.status_code() == StatusCode::CONFLICT => {
            let taken = [(
                "username",
                "This username or e-mail address is already registered. Sign in instead?".to_owned(),
            )];
            return views::sign_up(&form.csrf, &kept, &taken);
        }
        Err(error) => {
            tracing::warn!(%error, "sign-up failed");
            return views::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable; try again.",
            );
        }
    };
    tracing::info!(user.id = %user.id, "user signed up");
    if return_to.is_empty() {
        return signed_in(&state, &user, "/oauth2/signed-up").await;
    }
    signed_in(&state, &user, &return_to).await
}

/// Where a sign-up that no application started ends.
pub async fn signed_up() -> HttpResponse {
    views::signed_up()
}

#[derive(Debug, Deserialize)]
pub struct Link {
    token: Option<String>,
}

pub async fn verify_email(state: web::Data<AppState>, query: web::Query<Link>) -> HttpResponse {
    let Some(token) = query.token.as_deref().filter(|t| !t.is_empty()) else {
        return views::verified(false);
    };
    match verification::confirm(&state, token).await {
        Ok(done) => views::verified(done),
        Err(error) => {
            tracing::warn!(%error, "e-mail verification failed");
            views::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable; try again.",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::strong_enough;

    #[test]
    fn guessable_passwords_are_refused_with_advice() {
        assert!(strong_enough("password1", "ana", "ana@example.com").is_err());
        assert!(strong_enough("zebrafalcon7", "ana", "ana@example.com").is_ok());
        assert!(
            strong_enough("zebrafalcon7", "zebrafalcon", "ana@example.com").is_err(),
            "built on the username it is guessable"
        );
        assert!(strong_enough("correct horse battery staple", "ana", "ana@example.com").is_ok());
    }
}
