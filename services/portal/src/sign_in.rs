//! Signing in dogfoods the platform: the portal is a confidential client of auth, and a person
//! signs in through auth's own login page with the authorization code flow and PKCE (the
//! `oauth2` crate, as any partner would). The portal's client is first-party, so auth asks no
//! consent. Signing out revokes the tokens (RFC 7009).

use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;

use crate::Settings;
use crate::state::SetupError;

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub struct OAuth {
    client: Client,
    http: reqwest::Client,
    scopes: Vec<String>,
    /// RFC 7009 revocation, sent by hand: the `oauth2` crate refuses a revocation URL that is not
    /// https, and the portal reaches the gateway over plain http inside a cluster or on loopback.
    revocation: url::Url,
    client_id: String,
    client_secret: secrecy::SecretString,
}

/// The tokens of a signed-in person.
pub struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
    pub expires_at: i64,
}

impl Tokens {
    fn from(response: &BasicTokenResponse) -> Self {
        let lifetime = response.expires_in().map_or(300, |d| d.as_secs());
        Self {
            access: response.access_token().secret().clone(),
            refresh: response.refresh_token().map(|r| r.secret().clone()),
            expires_at: storage::now_millis() + i64::try_from(lifetime).unwrap_or(300) * 1000,
        }
    }
}

/// Where the browser goes to sign in, and what must come back.
pub struct Started {
    pub url: url::Url,
    pub state: String,
    pub verifier: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OAuthFailure(String);

impl OAuth {
    pub fn new(http: reqwest::Client, settings: &Settings) -> Result<Self, SetupError> {
        let public = &settings.portal.public_url;
        // auth's pages are at the gateway's public address; the back channel goes to the gateway.
        let browser = |path: &str| public.join(path).map(|u| u.to_string());
        let back = |path: &str| settings.portal.gateway_url.join(path).map(|u| u.to_string());
        let callback = format!("{}/callback", public.as_str().trim_end_matches('/'));
        let client = BasicClient::new(ClientId::new(settings.oauth.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                settings.oauth.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(AuthUrl::from_url(browser("/oauth2/authorize")?.parse()?))
            .set_token_uri(TokenUrl::from_url(back("/oauth2/token")?.parse()?))
            .set_redirect_uri(RedirectUrl::from_url(callback.parse()?));
        Ok(Self {
            client,
            http,
            scopes: settings.oauth.scopes.clone(),
            revocation: back("/oauth2/revoke")?.parse()?,
            client_id: settings.oauth.client_id.clone(),
            client_secret: settings.oauth.client_secret.clone(),
        })
    }

    pub fn start(&self) -> Started {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(self.scopes.iter().map(|s| Scope::new(s.clone())))
            .set_pkce_challenge(challenge)
            .url();
        Started {
            url,
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
        }
    }

    pub async fn exchange(&self, code: String, verifier: String) -> Result<Tokens, OAuthFailure> {
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| OAuthFailure(e.to_string()))?;
        Ok(Tokens::from(&response))
    }

    pub async fn refresh(&self, refresh: String) -> Result<Tokens, OAuthFailure> {
        let response = self
            .client
            .exchange_refresh_token(&RefreshToken::new(refresh))
            .request_async(&self.http)
            .await
            .map_err(|e| OAuthFailure(e.to_string()))?;
        Ok(Tokens::from(&response))
    }

    /// Revokes the refresh token (its whole family at auth) and the access token.
    pub async fn revoke(&self, access: String, refresh: Option<String>) {
        let tokens = refresh
            .map(|r| (r, "refresh_token"))
            .into_iter()
            .chain(std::iter::once((access, "access_token")));
        for (token, hint) in tokens {
            let sent = self
                .http
                .post(self.revocation.clone())
                .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
                .form(&[("token", token.as_str()), ("token_type_hint", hint)])
                .send()
                .await;
            let refused = match sent {
                Ok(response) if response.status().is_success() => continue,
                Ok(response) => response.status().to_string(),
                Err(error) => error.to_string(),
            };
            tracing::warn!(error = %refused, hint, "a token was not revoked at sign-out");
        }
    }
}
