//! The authorization code flow with PKCE, driven by the `oauth2` crate through the login and
//! consent pages over plain HTTP (forms and cookies, as a browser without JavaScript would),
//! and seed 003's "Log in with" flow.

use crate::common;

use std::collections::HashMap;

use common::{ADMIN, Backend, TestApp, spawn};
use oauth2::basic::BasicErrorResponseType;
use oauth2::{
    AuthUrl, AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    TokenResponse,
};
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// A browser without JavaScript: follows nothing by itself, keeps cookies, submits forms.
struct Browser<'a> {
    app: &'a TestApp,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    html: String,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let res = req.header("cookie", self.cookie_header()).send().await.unwrap();
        for set in res.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = res.status().as_u16();
        let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
        Page {
            status,
            location,
            html: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let url = if url.starts_with('/') {
            self.app.url(url)
        } else {
            url.to_owned()
        };
        self.send(self.app.http.get(url)).await
    }

    /// Submits the page's form whose action is `action`, with its hidden fields plus `extra`.
    async fn submit(&mut self, page: &Page, action: &str, extra: &[(&str, &str)]) -> Page {
        let form = form_with_action(&page.html, action);
        let mut fields = hidden_fields(form);
        fields.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self.send(self.app.http.post(self.app.url(action)).form(&fields)).await
    }
}

fn form_with_action<'h>(html: &'h str, action: &str) -> &'h str {
    let start = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posting to {action} in {html}"));
    &html[start..start + html[start..].find("</form>").unwrap()]
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn hidden_fields(form: &str) -> Vec<(String, String)> {
    form.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|input| {
            let attr = |name: &str| {
                let start = input.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                unescape(&input[start..start + input[start..].find('"').unwrap()])
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn code_app(app: &TestApp, public: bool) -> (String, String) {
    app.application(json!({
        "name": "Photo printer",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [REDIRECT],
        "scopes": ["profile", "email"],
        "public": public,
    }))
    .await
}

/// Login and consent pages, the code, then the token exchange with the PKCE verifier.
async fn sign_in_and_consent(browser: &mut Browser<'_>, authorize_url: &str) -> String {
    let page = browser.get(authorize_url).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Sign in"), "{}", page.html);
    let wrong = browser
        .submit(&page, "/oauth2/login", &[("username", ADMIN.0), ("password", "wrong")])
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.html.contains("Wrong username or password"));
    let login = browser
        .submit(&wrong, "/oauth2/login", &[("username", ADMIN.0), ("password", ADMIN.1)])
        .await;
    assert_eq!(login.status, 303);
    let consent = browser.get(login.location.as_deref().unwrap()).await;
    assert_eq!(consent.status, 200);
    assert!(
        consent.html.contains("Photo printer") && consent.html.contains("<code>email</code>"),
        "{}",
        consent.html
    );
    let approved = browser
        .submit(&consent, "/oauth2/consent", &[("decision", "approve")])
        .await;
    assert_eq!(approved.status, 303);
    approved.location.unwrap()
}

async fn code_flow_with_pkce_refresh_and_replay(app: TestApp) {
    let (id, secret) = code_app(&app, false).await;
    let client = app
        .oauth_client(&id, &secret)
        .set_auth_uri(AuthUrl::new(app.url("/oauth2/authorize")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::new(&app);
    let callback = sign_in_and_consent(&mut browser, url.as_str()).await;
    assert!(callback.starts_with(REDIRECT));
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some(state.secret().as_str()),
        "state round-trips"
    );
    let code = AuthorizationCode::new(query_param(&callback, "code").unwrap());

    let token = client
        .exchange_code(code.clone())
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().clone()))
        .request_async(&app.http)
        .await
        .expect("code exchanged");
    assert_eq!(token.scopes().unwrap()[0].as_str(), "email");
    assert_eq!(app.me(token.access_token().secret()).await, 200);
    let refreshed = client
        .exchange_refresh_token(token.refresh_token().unwrap())
        .request_async(&app.http)
        .await
        .expect("refresh");
    assert_eq!(app.me(refreshed.access_token().secret()).await, 200);

    // Replay: refused, and what the code issued is revoked.
    let replay = client
        .exchange_code(code)
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().clone()))
        .request_async(&app.http)
        .await;
    assert!(
        matches!(replay, Err(RequestTokenError::ServerResponse(ref e)) if *e.error() == BasicErrorResponseType::InvalidGrant)
    );
    assert_eq!(
        app.me(token.access_token().secret()).await,
        401,
        "the replayed code's access token is revoked"
    );
    let after = client
        .exchange_refresh_token(refreshed.refresh_token().unwrap())
        .request_async(&app.http)
        .await;
    assert!(after.is_err(), "its refresh token family is revoked");

    // Consent to `email` is remembered: asking for it again redirects at once. A wrong verifier
    // then fails. (Asking for more, `profile`, would show the consent page again.)
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .add_scope(Scope::new("email".into()))
        .url();
    let page = browser.get(url.as_str()).await;
    assert_eq!(page.status, 303);
    let code = AuthorizationCode::new(query_param(page.location.as_deref().unwrap(), "code").unwrap());
    let wrong = client
        .exchange_code(code)
        .set_pkce_verifier(PkceCodeVerifier::new("x".repeat(43)))
        .request_async(&app.http)
        .await;
    assert!(
        matches!(wrong, Err(RequestTokenError::ServerResponse(ref e)) if *e.error() == BasicErrorResponseType::InvalidGrant)
    );
}

async fn bad_requests_show_a_page_or_redirect_with_the_error(app: TestApp) {
    let (id, _) = code_app(&app, false).await;
    let (public_id, _) = code_app(&app, true).await;
    let mut browser = Browser::new(&app);
    // Untrusted redirect URI: a page, never a redirect.
    let page = browser
        .get(&format!(
            "/oauth2/authorize?response_type=code&client_id={id}&redirect_uri=https://evil.example.com/cb"
        ))
        .await;
    assert_eq!((page.status, page.location), (400, None));
    assert!(page.html.contains("not registered"));
    let page = browser
        .get("/oauth2/authorize?response_type=code&client_id=nobody")
        .await;
    assert_eq!(page.status, 400);
    // Trusted redirect URI: the error goes back to the application, with the state.
    let page = browser
        .get(&format!(
            "/oauth2/authorize?response_type=token&client_id={id}&state=s1"
        ))
        .await;
    let location = page.location.unwrap();
    assert_eq!(
        (
            query_param(&location, "error").as_deref(),
            query_param(&location, "state").as_deref()
        ),
        (Some("unsupported_response_type"), Some("s1"))
    );
    let page = browser
        .get(&format!(
            "/oauth2/authorize?response_type=code&client_id={public_id}&state=s2"
        ))
        .await;
    assert_eq!(
        query_param(&page.location.unwrap(), "error").as_deref(),
        Some("invalid_request"),
        "PKCE is mandatory for public clients"
    );
    // Deny.
    let page = browser
        .get(&format!("/oauth2/authorize?response_type=code&client_id={id}&state=s3"))
        .await;
    let login = browser
        .submit(&page, "/oauth2/login", &[("username", ADMIN.0), ("password", ADMIN.1)])
        .await;
    let consent = browser.get(login.location.as_deref().unwrap()).await;
    let denied = browser
        .submit(&consent, "/oauth2/consent", &[("decision", "deny")])
        .await;
    let location = denied.location.unwrap();
    assert_eq!(
        (
            query_param(&location, "error").as_deref(),
            query_param(&location, "state").as_deref()
        ),
        (Some("access_denied"), Some("s3"))
    );
    // A form posted without the CSRF cookie is refused.
    let mut stranger = Browser::new(&app);
    let forged = stranger
        .submit(&consent, "/oauth2/consent", &[("decision", "approve")])
        .await;
    assert_eq!(forged.status, 403);
    // Logout ends the session: the next request asks to sign in again.
    let signed_out = browser.submit(&consent, "/oauth2/logout", &[]).await;
    assert_eq!(signed_out.status, 200);
    let page = browser
        .get(&format!("/oauth2/authorize?response_type=code&client_id={id}"))
        .await;
    assert!(page.html.contains("Sign in"));
}

async fn seed_003_log_in_with(app: TestApp) {
    let (id, secret) = code_app(&app, false).await;
    let mut browser = Browser::new(&app);
    let callback = sign_in_and_consent(&mut browser, &format!("/api/oauth?app_id={id}")).await;
    let auth_key = query_param(&callback, "auth_key").expect("auth_key in the redirect");
    assert!(query_param(&callback, "code").is_none());
    let url = app.url(&format!(
        "/api/authorize?app_id={id}&app_secret={secret}&auth_key={auth_key}"
    ));
    let (status, _, body) = app.json(app.http.get(&url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["access_token"]);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(app.me(token).await, 200);
    let (status, _, body) = app.json(app.http.get(&url)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "auth_key is single use"
    );
    let (status, _, _): (u16, _, Value) = app
        .json(
            app.http
                .get(app.url(&format!("/api/authorize?app_id={id}&app_secret=wrong&auth_key=x"))),
        )
        .await;
    assert_eq!(status, 401);
}

/// The developer portal's client (auth's bootstrap settings) signs people in without a consent
/// page and records no consent: it is the platform's own.
async fn first_party_clients_imply_consent(app: TestApp) {
    let mut browser = Browser::new(&app);
    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let challenge = challenge.as_str().to_owned();
    let url = format!(
        "/oauth2/authorize?response_type=code&client_id=portal&redirect_uri={}&scope=profile%20webhooks:manage&state=s1&code_challenge={challenge}&code_challenge_method=S256",
        urlencode("http://127.0.0.1:8080/portal/callback")
    );
    let page = browser.get(&url).await;
    assert!(page.html.contains("Developer portal"), "{}", page.html);
    let login = browser
        .submit(&page, "/oauth2/login", &[("username", ADMIN.0), ("password", ADMIN.1)])
        .await;
    assert_eq!(login.status, 303);
    let granted = browser.get(login.location.as_deref().unwrap()).await;
    assert_eq!(granted.status, 303, "no consent page: {}", granted.html);
    let location = granted.location.unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:8080/portal/callback?"),
        "{location}"
    );
    assert!(query_param(&location, "code").is_some());
    assert_eq!(query_param(&location, "state").as_deref(), Some("s1"));
    let token = app.login(ADMIN.0, ADMIN.1).await;
    let (status, _, consents) = app
        .json(app.http.get(app.url("/accounts/me/consents")).bearer_auth(token))
        .await;
    assert_eq!(status, 200);
    assert!(
        !consents.to_string().contains("\"portal\""),
        "no consent is recorded for a first-party client: {consents}"
    );
}

/// A newcomer signs up from the login page: a guessable password is refused beside its field,
/// the account is signed in and the authorization continues to consent; the e-mailed link
/// (from `account.verification_requested`) confirms the address once (`user.verified`).
async fn sign_up_continues_the_authorization_and_confirms_the_address(app: TestApp) {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut events = test_support::Watch::start(&app.bus, &["account.*", "user.verified"], shutdown.clone()).await;
    let (id, _) = code_app(&app, false).await;
    let mut browser = Browser::new(&app);
    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let authorize = format!(
        "/oauth2/authorize?response_type=code&client_id={id}&redirect_uri={}&scope=profile&state=s9&code_challenge={}&code_challenge_method=S256",
        urlencode(REDIRECT),
        challenge.as_str()
    );
    let login = browser.get(&authorize).await;
    let start = login
        .html
        .find("/oauth2/sign-up?")
        .expect("the login page offers sign-up");
    let link = unescape(&login.html[start..start + login.html[start..].find('"').unwrap()]);
    let page = browser.get(&link).await;
    assert_eq!(page.status, 200);
    let weak = browser
        .submit(
            &page,
            "/oauth2/sign-up",
            &[
                ("username", "nina"),
                ("email", "nina@example.com"),
                ("password", "password1"),
            ],
        )
        .await;
    assert_eq!(weak.status, 422);
    assert!(
        weak.html.contains("id=\"password-error\"") && weak.html.contains("Too easy to guess"),
        "{}",
        weak.html
    );
    assert!(
        weak.html.contains("value=\"nina@example.com\""),
        "what was typed is kept"
    );
    let forged = app
        .http
        .post(app.url("/oauth2/sign-up"))
        .form(&[
            ("csrf", "forged"),
            ("username", "mallory"),
            ("email", "m@example.com"),
            ("password", "kettle ostrich violin morning"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "no CSRF cookie, no account");
    let created = browser
        .submit(
            &weak,
            "/oauth2/sign-up",
            &[
                ("username", "nina"),
                ("email", "nina@example.com"),
                ("password", "kettle ostrich violin morning"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.html);
    let consent = browser.get(created.location.as_deref().unwrap()).await;
    assert!(
        consent.html.contains("Allow access?") && consent.html.contains("nina"),
        "{}",
        consent.html
    );
    let taken = browser.get(&link).await;
    let again = browser
        .submit(
            &taken,
            "/oauth2/sign-up",
            &[
                ("username", "nina"),
                ("email", "other@example.com"),
                ("password", "kettle ostrich violin morning"),
            ],
        )
        .await;
    assert_eq!(again.status, 422);
    assert!(again.html.contains("already registered"));

    let requested: events::catalogue::VerificationRequested = events
        .next("account.verification_requested")
        .await
        .payload()
        .unwrap()
        .unwrap();
    assert_eq!(requested.email, "nina@example.com");
    let path = requested
        .verify_url
        .split_once("/oauth2/")
        .map(|(_, p)| format!("/oauth2/{p}"))
        .unwrap();
    let first = browser.get(&path).await;
    assert_eq!(first.status, 200);
    assert!(first.html.contains("confirmed"));
    let verified: events::catalogue::UserVerified = events.next("user.verified").await.payload().unwrap().unwrap();
    assert_eq!(
        (verified.user_id.as_str(), verified.email.as_str()),
        (requested.user_id.as_str(), "nina@example.com")
    );
    assert_eq!(browser.get(&path).await.status, 400, "the link works once");
    assert_eq!(browser.get("/oauth2/verify-email?token=nonsense").await.status, 400);
    shutdown.cancel();
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

macro_rules! backend_suite {
    ($name:ident, $backend:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn code_flow_with_pkce_refresh_and_replay() {
                super::code_flow_with_pkce_refresh_and_replay(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn bad_requests_show_a_page_or_redirect_with_the_error() {
                super::bad_requests_show_a_page_or_redirect_with_the_error(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn first_party_clients_imply_consent() {
                super::first_party_clients_imply_consent(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn sign_up_continues_the_authorization_and_confirms_the_address() {
                super::sign_up_continues_the_authorization_and_confirms_the_address(spawn($backend).await).await;
            }

            #[tokio::test]
            async fn seed_003_log_in_with() {
                super::seed_003_log_in_with(spawn($backend).await).await;
            }
        }
    };
}

backend_suite!(sqlite_in_process, Backend::Sqlite(test_support::TestSqlite::create()));
backend_suite!(
    postgres_rabbitmq,
    Backend::Postgres(test_support::TestDatabase::create())
);
