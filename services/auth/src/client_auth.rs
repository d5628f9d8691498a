//! Who is calling the token and revocation endpoints: RFC 6749 §2.3.1 `client_secret_basic`
//! (credentials form-urlencoded, then base64) or `client_secret_post`, or a public client
//! naming itself with `client_id` alone.

use actix_web::HttpRequest;
use base64::Engine;

use identity::ClientAddress;

use crate::limiter::Attempt;
use crate::state::AppState;
use crate::store::ClientRow;
use http_kit::OAuthError;

pub struct AuthenticatedClient {
    pub row: ClientRow,
    /// False for public clients, which prove nothing about themselves.
    pub confidential: bool,
}

struct Presented {
    id: String,
    secret: Option<String>,
}

fn presented(req: &HttpRequest, form_id: Option<&str>, form_secret: Option<&str>) -> Result<Presented, OAuthError> {
    let basic = http_kit::credentials::basic(req);
    match (basic, form_secret) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        )),
        (Some(value), None) => {
            let (id, secret) = decode_basic(value)
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic authorization header"))?;
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            Ok(Presented {
                id,
                secret: Some(secret),
            })
        }
        (None, secret) => {
            let id = form_id.ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
            Ok(Presented {
                id: id.to_owned(),
                secret: secret.map(str::to_owned),
            })
        }
    }
}

/// `base64(urlencode(id) ":" urlencode(secret))`.
pub fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let id = decode(id)?;
    (!id.is_empty()).then_some(())?;
    Some((id, decode(secret)?))
}

pub async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<AuthenticatedClient, OAuthError> {
    let presented = presented(req, form_id, form_secret)?;
    let attempt = Attempt::client(&presented.id, ClientAddress::of(req).0);
    state
        .limiter
        .admit(&attempt)
        .await
        .map_err(OAuthError::too_many_attempts)?;
    let row = state.client(&presented.id).await?;
    let outcome = match (&row, &presented.secret) {
        (Some(row), Some(secret)) => row.secret_matches(secret, storage::now_millis()),
        (Some(row), None) => row.secret_hash.is_none(),
        (None, _) => false,
    };
    match row {
        Some(row) if outcome => {
            if !row.networks().admits(attempt.source()) {
                tracing::info!(client.id = %row.id, source = %attempt.source(), "client refused: address not allowed");
                return Err(OAuthError::address_not_allowed());
            }
            state.limiter.succeeded(&attempt).await;
            Ok(AuthenticatedClient {
                confidential: row.secret_hash.is_some(),
                row,
            })
        }
        _ => {
            state.limiter.failed(&attempt).await;
            tracing::info!(client.id = %presented.id, "client authentication failed");
            Err(OAuthError::invalid_client("unknown client or wrong secret"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decode_basic;

    #[test]
    fn basic_credentials_are_form_decoded() {
        // "my%20app:s%3Acret" → ("my app", "s:cret")
        assert_eq!(
            decode_basic("bXklMjBhcHA6cyUzQWNyZXQ="),
            Some(("my app".into(), "s:cret".into()))
        );
        assert_eq!(decode_basic("not base64!"), None);
        assert_eq!(decode_basic("bm9jb2xvbg=="), None, "no colon");
    }
}
