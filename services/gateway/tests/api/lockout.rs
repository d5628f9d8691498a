//! A stranger cannot lock everyone out. Auth and introspection on PostgreSQL, Redis and
//! RabbitMQ, two gateway processes on the default route table. Five partners, each from an
//! address of its own, sign in, take tokens, introspect and call the API through both gateways
//! while fifty other addresses make 1,000 failed logins, 1,000 failed client authentications
//! (the gateway's own client among the targets) and send 10,000 forged tokens. No one gets a
//! 5xx; the partners get no 429 and no refusal at all; the attackers are limited; not one
//! forged token costs an introspection call.

use crate::platform;
use crate::support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform::{Backend, Platform};
use serde_json::{Value, json};
use support::Gateway;

const PARTNERS: u8 = 5;
const ATTACKERS: u8 = 50;
const FAILED_LOGINS_EACH: usize = 20;
const FAILED_CLIENT_AUTHS_EACH: usize = 20;
const FORGED_EACH: usize = 200;

/// A client whose connections leave from `address` (any of 127.0.0.0/8 works on loopback).
fn client_from(address: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address)
        .timeout(Duration::from_secs(30))
        // Below the servers' keep-alive (actix's 5 s): a POST on a pooled connection the
        // server is closing at that instant fails without an answer, and is not resent.
        .pool_idle_timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

/// Statuses seen, by what was asked ("partner POST /oauth" → {200: 31}).
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, BTreeMap<u16, usize>>>);

impl Tally {
    /// Sends `req`; 0 stands for a request that got no answer at all.
    async fn send(&self, what: &str, req: reqwest::RequestBuilder) -> (u16, Value) {
        let (status, body) = match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                (status, res.json().await.unwrap_or(Value::Null))
            }
            Err(error) => {
                eprintln!("{what}: no answer: {error:?}");
                (0, Value::Null)
            }
        };
        let mut seen = self.0.lock().unwrap();
        *seen.entry(what.to_owned()).or_default().entry(status).or_default() += 1;
        (status, body)
    }

    fn count(&self, who: &str, status: impl Fn(u16) -> bool) -> usize {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter(|(what, _)| what.starts_with(who))
            .flat_map(|(_, statuses)| statuses.iter())
            .filter(|(s, _)| status(**s))
            .map(|(_, n)| n)
            .sum()
    }

    fn report(&self) -> String {
        format!("{:#?}", self.0.lock().unwrap())
    }
}

struct Partner {
    client: reqwest::Client,
    user: String,
    password: String,
    app: (String, String),
}

impl Partner {
    /// One round of everything a partner does, through gateway `gw`; the tokens it was given.
    async fn round(&self, tally: &Tally, gw: &Gateway) -> usize {
        let base = &gw.base;
        let (_, login) = tally
            .send(
                "partner POST /oauth",
                self.client
                    .post(format!("{base}/oauth"))
                    .basic_auth(&self.user, Some(&self.password)),
            )
            .await;
        let (_, grant) = tally
            .send(
                "partner POST /oauth2/token client_credentials",
                self.client
                    .post(format!("{base}/oauth2/token"))
                    .basic_auth(&self.app.0, Some(&self.app.1))
                    .form(&[("grant_type", "client_credentials"), ("scope", "profile")]),
            )
            .await;
        let (_, password) = tally
            .send(
                "partner POST /oauth2/token password",
                self.client
                    .post(format!("{base}/oauth2/token"))
                    .basic_auth(&self.app.0, Some(&self.app.1))
                    .form(&[
                        ("grant_type", "password"),
                        ("username", self.user.as_str()),
                        ("password", self.password.as_str()),
                        ("scope", "profile"),
                    ]),
            )
            .await;
        let tokens: Vec<String> = [&login, &grant, &password]
            .iter()
            .filter_map(|body| body["access_token"].as_str().map(str::to_owned))
            .collect();
        for token in &tokens {
            tally
                .send(
                    "partner POST /oauth2/introspect",
                    self.client
                        .post(format!("{base}/oauth2/introspect"))
                        .basic_auth(&self.app.0, Some(&self.app.1))
                        .form(&[("token", token.as_str())]),
                )
                .await;
            tally
                .send(
                    "partner GET /users/me",
                    self.client.get(format!("{base}/users/me")).bearer_auth(token),
                )
                .await;
        }
        tokens.len()
    }
}

/// Tokens auth never signed: another key under auth's own `kid`, a key it never had, no
/// signature at all, and junk shaped like a JWT.
fn forgeries(auth_kid: &str) -> Vec<String> {
    let now = tokens::now_secs();
    let claims = json!({"iss": platform::ISSUER, "sub": "partner-0", "aud": "partner-api", "exp": now + 3600,
                        "iat": now, "nbf": now, "jti": "forged", "client_id": "gateway", "scope": "profile"});
    let impostor = test_support::TestKey::generate(auth_kid);
    let stranger = test_support::TestKey::generate("not-auths-key");
    let unsigned = {
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "at+jwt", "kid": auth_kid})),
            b64(&claims)
        )
    };
    (0..FORGED_EACH)
        .map(|i| {
            let mut claims = claims.clone();
            claims["jti"] = json!(format!("forged-{i}"));
            match i % 4 {
                0 => impostor.sign(&claims),
                1 => stranger.sign(&claims),
                2 => unsigned.clone(),
                _ => format!("eyJhbGciOiJFZERTQSJ9.{i}.c2ln"),
            }
        })
        .collect()
}

struct Attack {
    partners: Vec<(String, String)>,
    auth_kid: String,
}

impl Attack {
    async fn from(&self, n: u8, tally: &Tally, gateways: &[Gateway]) {
        let client = client_from(IpAddr::from([127, 0, 2, n]));
        let gw = &gateways[usize::from(n) % gateways.len()].base;
        for i in 0..FAILED_LOGINS_EACH {
            let target = match i % 2 {
                0 => format!("partner-{}", i / 2 % usize::from(PARTNERS)),
                _ => format!("nobody-{n}-{i}"),
            };
            tally
                .send(
                    "attacker POST /oauth",
                    client
                        .post(format!("{gw}/oauth"))
                        .basic_auth(target, Some("wrong-password")),
                )
                .await;
        }
        for i in 0..FAILED_CLIENT_AUTHS_EACH {
            let (what, path, id) = match i % 4 {
                0 => (
                    "attacker POST /oauth2/introspect",
                    "/oauth2/introspect",
                    "gateway".to_owned(),
                ),
                1 => ("attacker POST /oauth2/token", "/oauth2/token", "gateway".to_owned()),
                2 => (
                    "attacker POST /oauth2/introspect",
                    "/oauth2/introspect",
                    self.partners[i % 5].0.clone(),
                ),
                _ => (
                    "attacker POST /oauth2/token",
                    "/oauth2/token",
                    self.partners[i % 5].0.clone(),
                ),
            };
            let form: &[(&str, &str)] = if path == "/oauth2/token" {
                &[("grant_type", "client_credentials")]
            } else {
                &[("token", "x.y.z")]
            };
            tally
                .send(
                    what,
                    client
                        .post(format!("{gw}{path}"))
                        .basic_auth(id, Some("wrong-secret"))
                        .form(form),
                )
                .await;
        }
        for (i, token) in forgeries(&self.auth_kid).iter().enumerate() {
            let gw = &gateways[i % gateways.len()].base;
            tally
                .send(
                    "attacker GET /users/me forged",
                    client.get(format!("{gw}/users/me")).bearer_auth(token),
                )
                .await;
        }
    }
}

/// The sum of one metric sample over every gateway.
async fn metric(gateways: &[Gateway], sample: &str) -> f64 {
    let mut sum = 0.0;
    for gw in gateways {
        let text = reqwest::get(format!("{}/metrics", gw.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        sum += text
            .lines()
            .find(|l| l.starts_with(sample))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strangers_failing_and_forging_lock_no_one_out() {
    // Lower than the default per-address limit, so that the attack also meets it; a window
    // longer than the test takes on a loaded machine, so no lock ends before it is checked.
    let p = Platform::start_with(Backend::Postgres, |s| {
        s.limits.source_max_failures = 30;
        s.limits.window = settings::Span::from_secs(300);
    })
    .await;
    let prefix = format!("{}:", test_support::unique("lockout"));
    let env = [
        ("GATEWAY_UPSTREAMS__INTROSPECTION", p.introspection.clone()),
        ("GATEWAY_UPSTREAMS__USER_PROFILE", support::upstream()),
    ];
    let redis = test_support::redis_url();
    let gateways = vec![
        support::spawn(&p, &redis, &prefix, "", &env).await,
        support::spawn(&p, &redis, &prefix, "", &env).await,
    ];

    let mut partners = Vec::new();
    for i in 0..PARTNERS {
        let user = format!("partner-{i}");
        p.register(&user).await;
        let app = p
            .application(
                json!({"name": format!("Partner {i}"), "grant_types": ["password", "client_credentials"],
                                "scopes": ["profile"]}),
            )
            .await;
        partners.push(Partner {
            client: client_from(IpAddr::from([127, 0, 1, i + 1])),
            password: format!("{user}-password-1"),
            user,
            app,
        });
    }
    let tally = Tally::default();
    // Each partner has worked from its address before the attack.
    for partner in &partners {
        partner.round(&tally, &gateways[0]).await;
    }

    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", p.auth))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let attack = Arc::new(Attack {
        partners: partners.iter().map(|p| p.app.clone()).collect(),
        auth_kid: jwks["keys"][0]["kid"].as_str().unwrap().to_owned(),
    });
    let (tally, gateways) = (Arc::new(tally), Arc::new(gateways));
    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicUsize::new(0));
    let partner_tasks: Vec<_> = partners
        .into_iter()
        .map(|partner| {
            let (tally, gateways, stop, issued) = (tally.clone(), gateways.clone(), stop.clone(), issued.clone());
            tokio::spawn(async move {
                let mut round = 0;
                while !stop.load(Ordering::SeqCst) {
                    let n = partner.round(&tally, &gateways[round % 2]).await;
                    issued.fetch_add(n, Ordering::SeqCst);
                    round += 1;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                partner
            })
        })
        .collect();
    let attack_tasks: Vec<_> = (1..=ATTACKERS)
        .map(|n| {
            let (tally, gateways, attack) = (tally.clone(), gateways.clone(), attack.clone());
            tokio::spawn(async move { attack.from(n, &tally, &gateways).await })
        })
        .collect();
    for task in attack_tasks {
        task.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let mut partners = Vec::new();
    for task in partner_tasks {
        partners.push(task.await.unwrap());
    }

    let report = tally.report();
    eprintln!("{report}");
    assert_eq!(
        tally.count("", |s| s >= 500 || s == 0),
        0,
        "no 5xx, no dropped request: {report}"
    );
    assert!(
        tally.count("partner", |_| true) > 100,
        "the partners kept working: {report}"
    );
    assert_eq!(
        tally.count("partner", |s| s != 200),
        0,
        "every partner request succeeded: {report}"
    );
    let logins = tally.count("attacker POST /oauth", |_| true) - tally.count("attacker POST /oauth2", |_| true);
    let client_auths = tally.count("attacker POST /oauth2", |_| true);
    let forged = tally.count("attacker GET", |_| true);
    assert_eq!(
        (logins, client_auths, forged),
        (1_000, 1_000, 10_000),
        "the attack was made in full"
    );
    assert!(
        tally.count("attacker POST", |s| s == 429) > 0,
        "the attackers met the limits: {report}"
    );
    assert_eq!(
        tally.count("attacker GET", |s| s == 401),
        10_000,
        "every forged token refused"
    );
    let signature_refusals = metric(
        &gateways,
        "gateway_token_lookups_total{level=\"signature\",result=\"invalid\"",
    )
    .await;
    let introspected = metric(
        &gateways,
        "gateway_token_lookups_total{level=\"introspection\",result=\"miss\"",
    )
    .await;
    assert!(signature_refusals >= 10_000.0, "{signature_refusals}");
    let genuine = issued.load(Ordering::SeqCst) + 3 * usize::from(PARTNERS);
    assert!(
        introspected <= genuine as f64,
        "{introspected} introspection calls for {genuine} genuine tokens: forged ones cost none"
    );

    // The lock-outs the attack caused are bounded: a partner user's account, attacked from fifty
    // addresses, refuses an address it has never seen for at most the window, and still
    // admits the partner's own.
    let stranger = client_from(IpAddr::from([127, 0, 3, 1]));
    let res = stranger
        .post(format!("{}/oauth", gateways[0].base))
        .basic_auth(&partners[0].user, Some(&partners[0].password))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "an account under attack admits only known addresses");
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "bounded by the window: {wait}");
    let at_home = partners[0].round(&tally, &gateways[1]).await;
    assert_eq!(at_home, 3);
    assert_eq!(tally.count("partner", |s| s != 200), 0, "{}", tally.report());
}
