//! The authorization server driven over HTTP as partners drive it, with `oauth2` — a client
//! library this project did not write — on SQLite with the in-process bus and on PostgreSQL
//! with RabbitMQ.

use crate::common;

use common::{ADMIN, Backend, TestApp, spawn, spawn_with};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use events::{Delivery, Handler, HandlerError, Subscription};
use oauth2::basic::BasicErrorResponseType;
use oauth2::{
    AuthType, RequestTokenError, ResourceOwnerPassword, ResourceOwnerUsername, RevocationUrl, Scope,
    StandardRevocableToken, TokenResponse,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn server_error<T: std::fmt::Debug>(
    result: Result<T, RequestTokenError<impl std::error::Error, oauth2::StandardErrorResponse<BasicErrorResponseType>>>,
) -> BasicErrorResponseType {
    match result {
        Err(RequestTokenError::ServerResponse(e)) => e.error().clone(),
        other => panic!("expected an OAuth error response, got {other:?}"),
    }
}

async fn client_credentials_with_basic_and_post_auth(app: TestApp) {
    let (id, secret) = app
        .application(json!({"name": "Backend", "scopes": ["profile", "blog:read"]}))
        .await;
    for auth_type in [AuthType::BasicAuth, AuthType::RequestBody] {
        let client = app.oauth_client(&id, &secret).set_auth_type(auth_type);
        let token = client
            .exchange_client_credentials()
            .add_scope(Scope::new("blog:read".into()))
            .request_async(&app.http)
            .await
            .expect("client_credentials");
        assert_eq!(
            token
                .scopes()
                .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            Some(vec!["blog:read".to_owned()])
        );
        assert_eq!(token.expires_in(), Some(Duration::from_secs(3600)));
        assert!(token.refresh_token().is_none());
        verify_with_jwks(&app, token.access_token().secret(), &id).await;
    }
    let client = app.oauth_client(&id, &secret);
    let error = server_error(
        client
            .exchange_client_credentials()
            .add_scope(Scope::new("email".into()))
            .request_async(&app.http)
            .await,
    );
    assert_eq!(error, BasicErrorResponseType::InvalidScope);
}

/// The token verifies against the published JWKS and carries RFC 9068's claims.
async fn verify_with_jwks(app: &TestApp, token: &str, client_id: &str) {
    let (_, _, jwks) = app.json(app.http.get(app.url("/.well-known/jwks.json"))).await;
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .expect("kid published");
    let key = jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["partner-api"]);
    let (_, _, metadata) = app
        .json(app.http.get(app.url("/.well-known/oauth-authorization-server")))
        .await;
    validation.set_issuer(&[metadata["issuer"].as_str().unwrap()]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("verifies")
        .claims;
    for claim in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope"] {
        assert!(claims.get(claim).is_some(), "missing {claim}: {claims}");
    }
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
}

async fn password_refresh_rotation_and_reuse_detection(app: TestApp) {
    app.register_user("alice").await;
    let (id, secret) = app
        .application(
            json!({"name": "First party", "grant_types": ["password", "refresh_token"], "scopes": ["profile"]}),
        )
        .await;
    let client = app.oauth_client(&id, &secret);
    let token = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new("password-123".into()),
        )
        .request_async(&app.http)
        .await
        .expect("password grant");
    assert_eq!(app.me(token.access_token().secret()).await, 200);
    let first = token.refresh_token().expect("a refresh token").clone();
    let rotated = client
        .exchange_refresh_token(&first)
        .request_async(&app.http)
        .await
        .expect("refresh");
    let second = rotated.refresh_token().expect("rotated").clone();
    assert_ne!(first.secret(), second.secret());
    // The first token again: reuse. It fails, and so does every token of its family.
    assert_eq!(
        server_error(client.exchange_refresh_token(&first).request_async(&app.http).await),
        BasicErrorResponseType::InvalidGrant
    );
    assert_eq!(
        server_error(client.exchange_refresh_token(&second).request_async(&app.http).await),
        BasicErrorResponseType::InvalidGrant
    );
    let wrong = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new("nope".into()),
        )
        .request_async(&app.http)
        .await;
    assert_eq!(server_error(wrong), BasicErrorResponseType::InvalidGrant);
}

async fn revocation_is_recorded_and_published(app: TestApp) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    struct Forward(mpsc::UnboundedSender<Delivery>);
    #[async_trait]
    impl Handler for Forward {
        async fn handle(&self, d: Delivery) -> Result<(), HandlerError> {
            let _ = self.0.send(d);
            Ok(())
        }
    }
    let stop = CancellationToken::new();
    app.bus
        .subscribe(
            Subscription::new("gateway", &["token.revoked"]),
            Arc::new(Forward(tx)),
            stop.clone(),
        )
        .await
        .unwrap();

    app.register_user("bob").await;
    let (id, secret) = app
        .application(json!({"name": "Revoker", "grant_types": ["password"], "scopes": ["profile"]}))
        .await;
    let https_revocation = app.url("/oauth2/revoke").replacen("http://", "https://", 1);
    let client = app
        .oauth_client(&id, &secret)
        .set_revocation_url(RevocationUrl::new(https_revocation).unwrap());
    let loopback = Loopback(app.http.clone());
    let token = client
        .exchange_password(
            &ResourceOwnerUsername::new("bob".into()),
            &ResourceOwnerPassword::new("password-123".into()),
        )
        .request_async(&app.http)
        .await
        .unwrap();
    let access = token.access_token().clone();
    assert_eq!(app.me(access.secret()).await, 200);
    client
        .revoke_token(StandardRevocableToken::AccessToken(access.clone()))
        .unwrap()
        .request_async(&loopback)
        .await
        .expect("revoked");
    assert_eq!(app.me(access.secret()).await, 401);
    // Revoking again is fine and publishes nothing more.
    client
        .revoke_token(StandardRevocableToken::AccessToken(access.clone()))
        .unwrap()
        .request_async(&loopback)
        .await
        .expect("idempotent");
    let event = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("token.revoked in time")
        .unwrap();
    let claims: Value = serde_json::from_slice(&base64_decode(access.secret().split('.').nth(1).unwrap())).unwrap();
    assert_eq!(event.event.event_type, "token.revoked");
    assert_eq!(event.event.data["jti"], claims["jti"]);
    assert_eq!(event.event.data["client_id"], id.as_str());
    assert!(
        tokio::time::timeout(Duration::from_millis(700), rx.recv())
            .await
            .is_err(),
        "one event per revocation"
    );
    stop.cancel();
}

/// oauth2 insists on an https revocation URL (RFC 7009 §2); the test server speaks plain HTTP on
/// loopback, so this transport sends the library's own request there unchanged but for the scheme.
struct Loopback(reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for Loopback {
    type Error = oauth2::HttpClientError<reqwest::Error>;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let uri = parts.uri.to_string();
            parts.uri = uri.replacen("https://", "http://", 1).parse().expect("uri");
            self.0.call(oauth2::HttpRequest::from_parts(parts, body)).await
        })
    }
}

fn base64_decode(segment: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap()
}

async fn negative_cases_follow_rfc6749(app: TestApp) {
    let (id, secret) = app.application(json!({"name": "Strict", "scopes": ["profile"]})).await;
    // Wrong secret: 401 invalid_client with WWW-Authenticate.
    let (status, headers, body) = app
        .json(
            app.http
                .post(app.url("/oauth2/token"))
                .basic_auth(&id, Some("wrong"))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    assert!(
        headers
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    // Malformed Basic header.
    let malformed = token_error(&app, |r| {
        r.header("authorization", "Basic %%%")
            .form(&[("grant_type", "client_credentials")])
    });
    assert_eq!(malformed.await, (401, Some("invalid_client".into())));
    // A grant the client is not allowed.
    let client = app.oauth_client(&id, &secret);
    let result = client
        .exchange_password(
            &ResourceOwnerUsername::new(ADMIN.0.into()),
            &ResourceOwnerPassword::new(ADMIN.1.into()),
        )
        .request_async(&app.http)
        .await;
    assert_eq!(server_error(result), BasicErrorResponseType::UnauthorizedClient);
    let authed = |r: reqwest::RequestBuilder| r.basic_auth(&id, Some(&secret));
    // Unknown grant type, missing grant type, duplicated parameter.
    let unknown = token_error(&app, |r| authed(r).form(&[("grant_type", "implicit")]));
    assert_eq!(unknown.await, (400, Some("unsupported_grant_type".into())));
    let missing = token_error(&app, |r| authed(r).form(&[("scope", "profile")]));
    assert_eq!(missing.await, (400, Some("invalid_request".into())));
    let duplicated = token_error(&app, |r| {
        authed(r)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&grant_type=password")
    });
    assert_eq!(duplicated.await, (400, Some("invalid_request".into())));
    // Both Basic and client_secret in the body.
    let both = token_error(&app, |r| {
        authed(r).form(&[("grant_type", "client_credentials"), ("client_secret", secret.as_str())])
    });
    assert_eq!(both.await, (400, Some("invalid_request".into())));
}

/// Sends a token request built by `build` and returns its status and RFC 6749 `error` code.
async fn token_error(
    app: &TestApp,
    build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (u16, Option<String>) {
    let (status, _, body) = app.json(build(app.http.post(app.url("/oauth2/token")))).await;
    (status, body["error"].as_str().map(str::to_owned))
}

async fn expired_and_forged_tokens_are_refused(app: TestApp) {
    let token = app.login(ADMIN.0, ADMIN.1).await;
    assert_eq!(app.me(&token).await, 200);
    // Same keys, signed by this test: expired an hour ago.
    let db = storage::Database::connect(&app.db_url, &storage::PoolSettings::default()).unwrap();
    let (_, _, metadata) = app
        .json(app.http.get(app.url("/.well-known/oauth-authorization-server")))
        .await;
    let keys = auth::keys::KeyRing::load(
        &db,
        metadata["issuer"].as_str().unwrap(),
        "partner-api",
        3_600_000,
        auth::keys::SigningAlgorithm::EdDSA,
    )
    .await
    .unwrap();
    let mut claims = keys.verify(&token).expect("own token verifies");
    claims.exp -= 7200;
    claims.iat -= 7200;
    claims.nbf -= 7200;
    claims.jti = ids::Jti::mint();
    assert_eq!(app.me(&keys.sign(&claims).unwrap()).await, 401, "expired");
    // A signature that does not match.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    assert_eq!(app.me(&parts.join(".")).await, 401, "forged");
    assert_eq!(app.me("not-a-jwt").await, 401);
}

async fn seed_002_documents_have_the_exact_shape(app: TestApp) {
    let before = storage::now_millis();
    let (status, _, doc) = app
        .json(
            app.http
                .post(app.url("/oauth"))
                .basic_auth(ADMIN.0, Some(ADMIN.1))
                .header("content-type", "application/json"),
        )
        .await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "code",
        "method",
        "token_type",
        "error",
        "access_token",
        "path",
        "scope",
        "expires_in",
        "group",
        "timestamp",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected, "{doc}");
    assert_eq!(
        (
            doc["code"].as_i64(),
            doc["method"].as_str(),
            doc["token_type"].as_str(),
            doc["error"].as_str(),
            doc["path"].as_str()
        ),
        (Some(200), Some("POST"), Some("bearer"), Some("OK"), Some("/oauth"))
    );
    let expires = doc["expires_in"].as_i64().unwrap();
    assert!(
        expires >= before + 3_600_000 - 1000 && expires <= storage::now_millis() + 3_600_000,
        "absolute epoch ms: {expires}"
    );
    assert!(doc["group"].is_i64() && doc["timestamp"].as_i64().unwrap() >= before);
    let token = doc["access_token"].as_str().unwrap();

    let (status, _, doc) = app.json(app.http.delete(app.url("/revoke")).bearer_auth(token)).await;
    assert_eq!(status, 200);
    let mut keys: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["code", "error", "method", "path", "scope", "timestamp", "token_type"]
    );
    assert_eq!(
        (doc["path"].as_str(), doc["method"].as_str(), doc["error"].as_str()),
        (Some("/revoke"), Some("DELETE"), Some("OK"))
    );
    let (status, _, doc) = app.json(app.http.delete(app.url("/revoke")).bearer_auth(token)).await;
    assert_eq!(
        (status, doc["code"].as_i64()),
        (401, Some(401)),
        "a revoked token cannot revoke"
    );
    let (status, _, doc) = app
        .json(app.http.post(app.url("/oauth")).basic_auth(ADMIN.0, Some("wrong")))
        .await;
    assert_eq!(
        (status, doc["code"].as_i64(), doc["access_token"].is_null()),
        (401, Some(401), true)
    );
}

async fn only_registration_platform_users_create_applications(app: TestApp) {
    let carol = app.register_user("carol").await;
    let token = app.login("carol", "password-123").await;
    let (status, _, body) = app
        .json(
            app.http
                .post(app.url("/applications"))
                .bearer_auth(&token)
                .json(&json!({"name": "Nope"})),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let rfc7591 = json!({"client_name": "Dynamic", "redirect_uris": ["https://app.example.com/cb"], "grant_types": ["client_credentials"], "scope": "profile"});
    let (status, _, _) = app
        .json(
            app.http
                .post(app.url("/oauth2/register"))
                .bearer_auth(&token)
                .json(&rfc7591),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = app
        .json(app.http.post(app.url("/oauth2/register")).json(&rfc7591))
        .await;
    assert_eq!(status, 401);

    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let (status, _, body) = app
        .json(
            app.http
                .put(app.url(&format!("/accounts/{carol}/roles")))
                .bearer_auth(&admin)
                .json(&json!({"roles": ["registration_platform"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, body) = app
        .json(
            app.http
                .post(app.url("/oauth2/register"))
                .bearer_auth(&token)
                .json(&rfc7591),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(
        (
            body["client_secret_expires_at"].as_i64(),
            body["token_endpoint_auth_method"].as_str()
        ),
        (Some(0), Some("client_secret_basic"))
    );
    let client = app.oauth_client(
        body["client_id"].as_str().unwrap(),
        body["client_secret"].as_str().unwrap(),
    );
    client
        .exchange_client_credentials()
        .request_async(&app.http)
        .await
        .expect("a registered client gets tokens");
    let bad = json!({"redirect_uris": ["http://evil.example.com/cb"], "grant_types": ["authorization_code"]});
    let (status, _, body) = app
        .json(
            app.http
                .post(app.url("/oauth2/register"))
                .bearer_auth(&token)
                .json(&bad),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_redirect_uri")));
}

async fn secret_rotation_and_deletion(app: TestApp) {
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let (id, old) = app
        .application(
            json!({"name": "Rotating", "grant_types": ["client_credentials", "password"], "scopes": ["profile"]}),
        )
        .await;
    let (status, _, body) = app
        .json(
            app.http
                .post(app.url(&format!("/applications/{id}/secret")))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(status, 200);
    let new = body["data"]["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let old_result = app
        .oauth_client(&id, &old)
        .exchange_client_credentials()
        .request_async(&app.http)
        .await;
    assert_eq!(server_error(old_result), BasicErrorResponseType::InvalidClient);
    app.oauth_client(&id, &new)
        .exchange_client_credentials()
        .request_async(&app.http)
        .await
        .expect("new secret works");
    let user_token = app
        .oauth_client(&id, &new)
        .exchange_password(
            &ResourceOwnerUsername::new(ADMIN.0.into()),
            &ResourceOwnerPassword::new(ADMIN.1.into()),
        )
        .request_async(&app.http)
        .await
        .expect("password grant");
    assert_eq!(app.me(user_token.access_token().secret()).await, 200);
    let (status, _, _) = app
        .json(
            app.http
                .delete(app.url(&format!("/applications/{id}")))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        app.me(user_token.access_token().secret()).await,
        401,
        "deleting the application ends its tokens"
    );
    let gone = app
        .oauth_client(&id, &new)
        .exchange_client_credentials()
        .request_async(&app.http)
        .await;
    assert_eq!(server_error(gone), BasicErrorResponseType::InvalidClient);
    let (status, _, _) = app
        .json(
            app.http
                .get(app.url(&format!("/applications/{id}")))
                .bearer_auth(&admin),
        )
        .await;
    assert_eq!(status, 404);
}

/// A rotation with an overlap keeps the old secret working beside the new one until it ends;
/// a bad body is refused and changes nothing.
async fn secret_rotation_with_an_overlap(app: TestApp) {
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let (id, old) = app
        .application(json!({"name": "Overlapping", "grant_types": ["client_credentials"]}))
        .await;
    let rotate = |body: &'static str| {
        app.http
            .post(app.url(&format!("/applications/{id}/secret")))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
    };
    for (body, status) in [
        (r#"{"overlap_seconds": -1}"#, 422),
        (r#"{"overlap_seconds": 604801}"#, 422),
        (r#"{"overlap_seconds": "soon"}"#, 422),
        (r#"{"overlap": 5}"#, 422),
        ("{", 400),
    ] {
        let (got, _, error) = app.json(rotate(body)).await;
        assert_eq!(got, status, "{body}: {error}");
        assert_eq!(error["success"], false);
    }
    let works = |secret: String| {
        let client = app.oauth_client(&id, &secret);
        let http = app.http.clone();
        async move { client.exchange_client_credentials().request_async(&http).await.is_ok() }
    };
    assert!(works(old.clone()).await, "refused bodies changed nothing");
    let (status, _, body) = app.json(rotate(r#"{"overlap_seconds": 2}"#)).await;
    assert_eq!(status, 200, "{body}");
    let new = body["data"]["client_secret"].as_str().unwrap().to_owned();
    let until = body["data"]["previous_secret_expires_at"]
        .as_i64()
        .expect("overlap end shown");
    assert!(until > storage::now_millis());
    assert!(works(old.clone()).await, "the old secret works during the overlap");
    assert!(works(new.clone()).await, "the new one too");
    let wait = u64::try_from(until - storage::now_millis()).unwrap_or(0) + 100;
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    assert!(!works(old.clone()).await, "the old secret stops when the overlap ends");
    assert!(works(new.clone()).await);
    let (status, _, body) = app.json(rotate("")).await;
    assert_eq!(status, 200, "no body: no overlap");
    assert!(body["data"].get("previous_secret_expires_at").is_none());
    assert!(
        !works(new).await,
        "without an overlap the replaced secret stops at once"
    );
}

async fn repeated_failures_are_rate_limited(app: TestApp) {
    let (id, _) = app.application(json!({"name": "Target"})).await;
    let mut last = (0, None);
    for _ in 0..11 {
        let res = app
            .http
            .post(app.url("/oauth2/token"))
            .basic_auth(&id, Some("guess"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        last = (
            res.status().as_u16(),
            res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()),
        );
    }
    assert_eq!(last.0, 429);
    assert!(last.1.unwrap().parse::<u64>().unwrap() >= 1);
}

async fn metadata_lists_endpoints_at_the_issuer(app: TestApp) {
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let (status, _, doc) = app.json(app.http.get(app.url(path))).await;
        assert_eq!(status, 200);
        let issuer = doc["issuer"].as_str().unwrap();
        for endpoint in [
            "token_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
            "registration_endpoint",
            "jwks_uri",
        ] {
            assert!(doc[endpoint].as_str().unwrap().starts_with(issuer), "{endpoint}");
        }
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    }
}

async fn registration_names_every_bad_field(app: TestApp) {
    let body = json!({"username": "a", "email": "not-an-address", "password": "long-enough-1"});
    let (status, _, body) = app.json(app.http.post(app.url("/users")).json(&body)).await;
    assert_eq!((status, &body["code"]), (422, &json!("validation_failed")), "{body}");
    let fields = test_support::invalid_fields(&body);
    assert_eq!(fields, ["username", "email"], "{body}");
    assert!(body["debugMessage"].as_str().unwrap().contains("email: "), "{body}");
}

/// An application's every bad field in one 422, and RFC 7591's one error code naming them all.
async fn applications_name_every_bad_field(app: TestApp) {
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let bad = json!({
        "name": " ",
        "redirect_uris": ["https://app.example.com/cb", "ftp://nope"],
        "grant_types": ["authorization_code", "telepathy"],
        "scopes": ["profile", "not a scope"],
        "allowed_networks": ["10.0.0.0/8", "nowhere"],
    });
    let (status, _, body) = app
        .json(app.http.post(app.url("/applications")).bearer_auth(&admin).json(&bad))
        .await;
    assert_eq!((status, &body["code"]), (422, &json!("validation_failed")), "{body}");
    let mut fields = test_support::invalid_fields(&body);
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "allowed_networks[1]",
            "grant_types",
            "name",
            "redirect_uris",
            "scopes[1]"
        ],
        "{body}"
    );
    let unknown_scope = json!({"name": "Fine", "grant_types": ["client_credentials"], "scopes": ["blog:read", "introspect-everything"]});
    let (status, _, body) = app
        .json(
            app.http
                .post(app.url("/applications"))
                .bearer_auth(&admin)
                .json(&unknown_scope),
        )
        .await;
    assert_eq!(
        (status, test_support::invalid_fields(&body)),
        (422, vec!["scopes".to_owned()]),
        "{body}"
    );

    let rfc7591 = json!({"client_name": "", "redirect_uris": ["ftp://nope"], "scope": "profile"});
    let (status, _, body) = app
        .json(
            app.http
                .post(app.url("/oauth2/register"))
                .bearer_auth(&admin)
                .json(&rfc7591),
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_redirect_uri")),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("redirect_uris") && description.contains("name"),
        "{body}"
    );
}

/// A replica that cached an application forgets it when the application's networks change on
/// another replica: the change holds at once on every replica, not after the cache's 5 s.
/// Replicas share RabbitMQ (embedded mode has one process, so no second replica).
#[tokio::test]
async fn a_network_change_holds_at_once_on_every_replica() {
    let app = spawn(Backend::Postgres(test_support::TestDatabase::create())).await;
    let (id, secret) = app.application(json!({"name": "Moving", "scopes": ["profile"]})).await;
    let other = app.replica().await;
    let token_at = |base: &str| {
        app.http
            .post(format!("{base}/oauth2/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
    };
    assert_eq!(
        app.json(token_at(&other.base)).await.0,
        200,
        "cached on the other replica now"
    );
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let change = app
        .http
        .patch(app.url(&format!("/applications/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"allowed_networks": ["192.0.2.0/24"]}));
    assert_eq!(app.json(change).await.0, 200);
    // The test calls from 127.0.0.1: outside the new list.
    let started = std::time::Instant::now();
    loop {
        let (status, _, body) = app.json(token_at(&other.base)).await;
        if status == 403 {
            assert_eq!(body["error"], "access_denied");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "the other replica still accepts the old list ({status})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Applications are announced when registered and deleted, and again on request
/// (`auth announce-applications`, with the consents users gave them), for services deployed
/// after them.
async fn applications_are_announced_and_announced_again(app: TestApp) {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut events =
        test_support::Watch::start(&app.bus, &["application.*", "consent.granted"], shutdown.clone()).await;
    let (id, secret) = app
        .application(json!({"name": "Announced", "grant_types": ["password"], "scopes": ["profile"]}))
        .await;
    let first: events::catalogue::ApplicationRegistered =
        events.next("application.registered").await.payload().unwrap().unwrap();
    assert_eq!(
        (first.client_id.as_str(), first.scopes.as_slice()),
        (id.as_str(), ["profile".to_owned()].as_slice())
    );
    // Signing in with the password grant is a consent.
    let ana = app.register_user("ana").await;
    app.oauth_client(&id, &secret)
        .exchange_password(
            &ResourceOwnerUsername::new("ana".into()),
            &ResourceOwnerPassword::new("password-123".into()),
        )
        .request_async(&app.http)
        .await
        .expect("password grant");
    let consent: events::catalogue::ConsentGranted = loop {
        let granted: events::catalogue::ConsentGranted =
            events.next("consent.granted").await.payload().unwrap().unwrap();
        if granted.client_id == id {
            break granted;
        }
    };
    assert_eq!(consent.user_id, ana);
    let settings = settings::changed(auth::DEFAULTS, |s: &mut auth::Settings| {
        s.database.url = app.db_url.as_str().into()
    })
    .unwrap();
    let (applications, consents) = auth::announce_applications(&settings).await.unwrap();
    assert!(applications >= 2, "the bootstrap clients and this one: {applications}");
    assert!(consents >= 1, "{consents}");
    loop {
        let again: events::catalogue::ApplicationRegistered =
            events.next("application.registered").await.payload().unwrap().unwrap();
        if again.client_id == id {
            assert_eq!(again, first, "the same announcement");
            break;
        }
    }
    loop {
        let again: events::catalogue::ConsentGranted = events.next("consent.granted").await.payload().unwrap().unwrap();
        if again.client_id == id {
            assert_eq!(again, consent, "the same grant, as of when it was given");
            break;
        }
    }
    let admin = app.login(ADMIN.0, ADMIN.1).await;
    let req = app
        .http
        .delete(app.url(&format!("/applications/{id}")))
        .bearer_auth(admin);
    assert_eq!(app.json(req).await.0, 204);
    let deleted: events::catalogue::ApplicationDeleted =
        events.next("application.deleted").await.payload().unwrap().unwrap();
    assert_eq!(deleted.client_id, id);
    shutdown.cancel();
}

macro_rules! backend_suite {
    ($name:ident, $backend:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn client_credentials_with_basic_and_post_auth() {
                super::client_credentials_with_basic_and_post_auth(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn password_refresh_rotation_and_reuse_detection() {
                super::password_refresh_rotation_and_reuse_detection(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn revocation_is_recorded_and_published() {
                super::revocation_is_recorded_and_published(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn negative_cases_follow_rfc6749() {
                super::negative_cases_follow_rfc6749(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn expired_and_forged_tokens_are_refused() {
                super::expired_and_forged_tokens_are_refused(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn seed_002_documents_have_the_exact_shape() {
                super::seed_002_documents_have_the_exact_shape(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn only_registration_platform_users_create_applications() {
                super::only_registration_platform_users_create_applications(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn secret_rotation_and_deletion() {
                super::secret_rotation_and_deletion(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn secret_rotation_with_an_overlap() {
                super::secret_rotation_with_an_overlap(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn repeated_failures_are_rate_limited() {
                super::repeated_failures_are_rate_limited(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn registration_names_every_bad_field() {
                super::registration_names_every_bad_field(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn applications_name_every_bad_field() {
                super::applications_name_every_bad_field(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn applications_are_announced_and_announced_again() {
                super::applications_are_announced_and_announced_again(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn metadata_lists_endpoints_at_the_issuer() {
                super::metadata_lists_endpoints_at_the_issuer(spawn($backend).await).await;
            }
        }
    };
}

backend_suite!(sqlite_in_process, Backend::Sqlite(test_support::TestSqlite::create()));
backend_suite!(
    postgres_rabbitmq,
    Backend::Postgres(test_support::TestDatabase::create())
);

#[tokio::test]
async fn every_signing_algorithm_makes_tokens_the_jwks_verifies() {
    for algorithm in auth::keys::SigningAlgorithm::ALL {
        let app = spawn_with(Backend::Sqlite(test_support::TestSqlite::create()), |s| {
            s.oauth.signing_algorithm = algorithm
        })
        .await;
        let (id, secret) = app
            .application(json!({"name": "Algorithms", "scopes": ["profile"]}))
            .await;
        let token = app
            .oauth_client(&id, &secret)
            .exchange_client_credentials()
            .request_async(&app.http)
            .await
            .expect("token");
        let header = jsonwebtoken::decode_header(token.access_token().secret()).unwrap();
        assert_eq!(format!("{:?}", header.alg), algorithm.name());
        verify_with_jwks(&app, token.access_token().secret(), &id).await;
        assert_eq!(app.me(&app.login(ADMIN.0, ADMIN.1).await).await, 200);
    }
}

#[tokio::test]
async fn rotation_signs_with_the_new_key_and_still_verifies_the_old() {
    let sqlite = test_support::TestSqlite::create();
    let db = storage::Database::connect(&sqlite.url, &storage::PoolSettings::default()).unwrap();
    db.migrate(&[&events::MIGRATIONS, &auth::MIGRATIONS]).await.unwrap();
    // Each load is a replica starting against the same table.
    let load = || {
        auth::keys::KeyRing::load(
            &db,
            "http://issuer",
            "partner-api",
            3_600_000,
            auth::keys::SigningAlgorithm::EdDSA,
        )
    };
    let keys = load().await.unwrap();
    let now = storage::now_millis() / 1000;
    let claims = auth::keys::AccessClaims {
        iss: "http://issuer".into(),
        user: None,
        aud: "partner-api".into(),
        exp: now + 60,
        iat: now,
        nbf: now,
        jti: "j".parse().unwrap(),
        client_id: "c".parse().unwrap(),
        scope: String::new(),
        username: None,
        allowed_networks: Vec::new(),
    };
    let old = keys.sign(&claims).unwrap();
    let kid = keys.rotate(&db).await.unwrap();
    let new = keys.sign(&claims).unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    assert_ne!(
        jsonwebtoken::decode_header(&old).unwrap().kid,
        jsonwebtoken::decode_header(&new).unwrap().kid
    );
    assert!(keys.verify(&old).is_ok() && keys.verify(&new).is_ok());
    assert_eq!(keys.jwks()["keys"].as_array().unwrap().len(), 2, "both keys published");
    // Another replica loading now sees both, and signs with the new one.
    let replica = load().await.unwrap();
    assert!(replica.verify(&old).is_ok());
    assert_eq!(
        jsonwebtoken::decode_header(replica.sign(&claims).unwrap())
            .unwrap()
            .kid
            .as_deref(),
        Some(kid.as_str())
    );
}
