//! Where tokens are minted: RFC 9068 access tokens (claims built here, signed by the key
//! ring in `keys`) and opaque refresh tokens (only their hash is stored).

use http_kit::OAuthError;
use ids::{ClientId, Jti, UserId};

use crate::client_auth::AuthenticatedClient;
use crate::crypto;
use crate::domain::{GrantType, Role, Scopes, parse_roles};
use crate::keys::AccessClaims;
use crate::state::AppState;
use crate::store::{ClientRow, RefreshRow, UserRow};

/// Tokens issued by one grant.
pub struct Issued {
    pub access_token: String,
    pub claims: AccessClaims,
    pub refresh_token: Option<String>,
}

impl AppState {
    /// Signs an RFC 9068 access token for `client_id`, on behalf of `user` when there is one.
    pub fn access_token(
        &self,
        client: &ClientRow,
        user: Option<&UserRow>,
        scope: &Scopes,
    ) -> Result<(String, AccessClaims), crate::keys::KeyError> {
        let now = storage::now_millis() / 1000;
        let admin = user.is_some_and(|u| parse_roles(&u.roles).contains(&Role::Admin));
        // Never more than the bearer may do: an application granted `blog:admin` acts as an
        // administrator only for users who are.
        let scope = if admin {
            scope.clone()
        } else {
            scope.without(&self.admin_scopes)
        };
        let claims = AccessClaims {
            iss: self.keys.issuer().to_owned(),
            user: user.map(|u| u.id.clone()),
            aud: self.keys.audience().to_owned(),
            exp: now + self.oauth.access_token_ttl.secs(),
            iat: now,
            nbf: now,
            jti: Jti::mint(),
            client_id: client.id.clone(),
            scope: scope.to_string(),
            username: user.map(|u| u.username.clone()),
            allowed_networks: client.networks().to_vec(),
        };
        Ok((self.keys.sign(&claims)?, claims))
    }

    /// A new opaque refresh token and the row that stores its hash.
    pub fn refresh_token(
        &self,
        family: &str,
        client_id: &ClientId,
        user_id: Option<&UserId>,
        scope: &Scopes,
    ) -> (String, RefreshRow) {
        let token = format!("rt_{}", crypto::random_secret());
        let now = storage::now_millis();
        let row = RefreshRow {
            token_hash: crypto::sha256_hex(&token),
            family_id: family.to_owned(),
            client_id: client_id.clone(),
            user_id: user_id.cloned(),
            scope: scope.to_string(),
            created_at: now,
            expires_at: now + self.oauth.refresh_token_ttl.millis(),
            used_at: None,
            revoked_at: None,
        };
        (token, row)
    }
}

/// Issues an access token for `user` and, when the client may refresh, a refresh token.
pub async fn issue_for_user(
    state: &AppState,
    client: &AuthenticatedClient,
    user: &UserRow,
    scope: &Scopes,
    family: Option<String>,
) -> Result<Issued, OAuthError> {
    let (access_token, claims) = state
        .access_token(&client.row, Some(user), scope)
        .map_err(OAuthError::server_error)?;
    let refreshable = client.row.allows(GrantType::RefreshToken);
    let refresh_token = if refreshable {
        let family = family.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let (token, row) = state.refresh_token(&family, &client.row.id, Some(&user.id), scope);
        state.store.insert_refresh(row).await?;
        Some(token)
    } else {
        None
    };
    Ok(Issued {
        access_token,
        claims,
        refresh_token,
    })
}
