//! The route table: which upstream serves a path, and what the gateway requires first.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Deserialize;
use settings::{SettingsError, Span};

use crate::rate_limits::RatePolicy;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Route {
    /// Path prefix, matched on a segment boundary.
    pub prefix: String,
    /// Base URL of the upstream service; the request's path and query are appended.
    pub upstream: String,
    pub timeout: Span,
    /// Passes without the gateway's token check (the upstream authenticates its callers).
    #[serde(default)]
    pub public: bool,
    /// Scopes the token must hold, every one.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Only these methods take this route (any when empty).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Name of a `[rate_limits.<name>]` policy, counted per client (per address when public).
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// Also accept the token from the `access_token` query parameter (seed 003's legacy paths).
    #[serde(default)]
    pub query_token: bool,
    /// A success revoked the request's bearer token (seed 002's `DELETE /revoke`): this
    /// replica refuses it from the answer on, before `token.revoked` reaches every replica.
    #[serde(default)]
    pub revokes_bearer: bool,
}

impl Route {
    pub fn validate(&self, index: usize, policies: &HashMap<String, RatePolicy>) -> Result<(), SettingsError> {
        let key = |field: &str| format!("routes[{index}].{field}");
        if !self.prefix.starts_with('/') || (self.prefix.len() > 1 && self.prefix.ends_with('/')) {
            return Err(settings::rule(
                &key("prefix"),
                "must start with `/` and not end with one",
            ));
        }
        if self.timeout.0.is_zero() {
            return Err(settings::rule(&key("timeout"), "must be more than 0"));
        }
        if let Some(name) = &self.rate_limit
            && !policies.contains_key(name)
        {
            return Err(settings::rule(
                &key("rate_limit"),
                format!("no [rate_limits.{name}] policy"),
            ));
        }
        if self.public && (!self.scopes.is_empty() || self.query_token) {
            return Err(settings::rule(
                &key("scopes"),
                "a public route checks no token, so it cannot require scopes",
            ));
        }
        if let Some(bad) = self
            .methods
            .iter()
            .find(|m| actix_web::http::Method::from_bytes(m.as_bytes()).is_err())
        {
            return Err(settings::rule(
                &key("methods"),
                format!("`{bad}` is not an HTTP method"),
            ));
        }
        Ok(())
    }

    pub fn matches(&self, method: &str, path: &str) -> bool {
        let path_matches = self.prefix == "/"
            || path
                .strip_prefix(&self.prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        path_matches && (self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
    }
}

/// Where a route's requests go, parsed once.
pub struct Target {
    /// `host:port`, to connect to.
    pub address: String,
    /// The `Host` header upstreams get.
    pub host: http::HeaderValue,
    /// The upstream URL's path, put before the request's (empty for most).
    pub base_path: String,
    /// Whether it answered its last readiness check; shared by every route to this address.
    pub healthy: Arc<AtomicBool>,
}

impl Target {
    /// Whether `upstream` is a URL the gateway can send to.
    pub fn parses(upstream: &str) -> bool {
        Self::of(upstream).is_some()
    }

    fn of(upstream: &str) -> Option<Self> {
        let url = url::Url::parse(upstream).ok().filter(|u| u.scheme() == "http")?;
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Some(Self {
            address: format!("{host}:{port}"),
            host: http::HeaderValue::from_str(&authority).ok()?,
            base_path: url.path().trim_end_matches('/').to_owned(),
            healthy: Arc::new(AtomicBool::new(true)),
        })
    }
}

pub struct Entry {
    pub route: Route,
    /// The instances of the route's upstream (one, or several for a replicated service).
    pub targets: Vec<Target>,
    next: AtomicUsize,
}

impl Entry {
    /// The targets to try, in order: the healthy ones in turn (round robin), then the others,
    /// which are tried only when every healthy one refused.
    pub fn ordered(&self) -> Vec<&Target> {
        // Most upstreams are one instance: nothing to choose, on every request.
        if let [only] = self.targets.as_slice() {
            return vec![only];
        }
        let (mut healthy, unhealthy): (Vec<_>, Vec<_>) =
            self.targets.iter().partition(|t| t.healthy.load(Ordering::Relaxed));
        // The turn is taken among the healthy only, so each gets an equal share.
        if !healthy.is_empty() {
            let start = self.next.fetch_add(1, Ordering::Relaxed) % healthy.len();
            healthy.rotate_left(start);
        }
        healthy.into_iter().chain(unhealthy).collect()
    }
}

pub struct RouteTable(Vec<Entry>);

impl RouteTable {
    /// The table of validated routes, each with its upstream's addresses (a route whose
    /// addresses do not parse is left out). Routes to one address share its health.
    pub fn new(routes: Vec<(Route, Vec<String>)>) -> Self {
        let mut health: HashMap<String, Arc<AtomicBool>> = HashMap::new();
        let entries = routes
            .into_iter()
            .filter_map(|(route, urls)| {
                let targets = urls
                    .iter()
                    .map(|url| {
                        let mut target = Target::of(url)?;
                        target.healthy = health.entry(target.address.clone()).or_insert(target.healthy).clone();
                        Some(target)
                    })
                    .collect::<Option<Vec<_>>>()
                    .filter(|t| !t.is_empty())?;
                Some(Entry {
                    route,
                    targets,
                    next: AtomicUsize::new(0),
                })
            })
            .collect();
        Self(entries)
    }

    /// The first route, in configuration order, that takes this request.
    pub fn find(&self, method: &str, path: &str) -> Option<&Entry> {
        self.0.iter().find(|e| e.route.matches(method, path))
    }

    /// The address and health flag of every instance of a replicated upstream, once each: the
    /// readiness checks' work (a lone instance is tried whatever its health).
    pub fn addresses(&self) -> Vec<(String, Arc<AtomicBool>)> {
        let mut seen = HashMap::new();
        let replicated = self.0.iter().filter(|e| e.targets.len() > 1);
        for target in replicated.flat_map(|e| &e.targets) {
            seen.entry(target.address.clone())
                .or_insert_with(|| target.healthy.clone());
        }
        seen.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str) -> Route {
        Route {
            prefix: prefix.into(),
            upstream: "http://127.0.0.1:1".into(),
            timeout: Span::from_secs(1),
            public: false,
            scopes: Vec::new(),
            methods: Vec::new(),
            rate_limit: None,
            query_token: false,
            revokes_bearer: false,
        }
    }

    #[test]
    fn prefixes_match_on_segment_boundaries_and_methods_filter() {
        let r = route("/oauth");
        assert!(r.matches("GET", "/oauth") && r.matches("GET", "/oauth/x"));
        assert!(!r.matches("GET", "/oauth2/token") && !r.matches("GET", "/oauthx"));
        assert!(route("/").matches("GET", "/anything"));
        let one = || vec!["http://127.0.0.1:1".to_owned()];
        let table = RouteTable::new(vec![
            (
                Route {
                    methods: vec!["POST".into()],
                    public: true,
                    ..route("/users")
                },
                one(),
            ),
            (route("/users"), one()),
        ]);
        assert!(table.find("POST", "/users").is_some_and(|e| e.route.public));
        assert!(table.find("GET", "/users/me").is_some_and(|e| !e.route.public));
        assert!(table.find("GET", "/blog").is_none());
    }

    #[test]
    fn replicas_take_turns_and_the_unhealthy_go_last() {
        let urls = vec!["http://a:1".to_owned(), "http://b:1".to_owned()];
        let table = RouteTable::new(vec![(route("/blog"), urls.clone()), (route("/blog2"), urls)]);
        let entry = table.find("GET", "/blog").map(Entry::ordered).unwrap_or_default();
        let next = table.find("GET", "/blog").map(Entry::ordered).unwrap_or_default();
        assert_ne!(entry[0].address, next[0].address, "round robin");
        let addresses = table.addresses();
        assert_eq!(addresses.len(), 2, "routes to one address share it");
        for (address, healthy) in &addresses {
            healthy.store(address != "a:1", Ordering::Relaxed);
        }
        let three = vec![
            "http://a:1".to_owned(),
            "http://b:1".to_owned(),
            "http://c:1".to_owned(),
        ];
        let table3 = RouteTable::new(vec![(route("/x"), three)]);
        table3
            .addresses()
            .iter()
            .for_each(|(a, h)| h.store(a != "b:1", Ordering::Relaxed));
        let firsts: Vec<_> = (0..4)
            .filter_map(|_| table3.find("GET", "/x").map(|e| e.ordered()[0].address.clone()))
            .collect();
        assert_eq!(firsts, ["a:1", "c:1", "a:1", "c:1"], "equal turns among the healthy");
        for _ in 0..3 {
            let order: Vec<_> = table
                .find("GET", "/blog2")
                .map(Entry::ordered)
                .unwrap_or_default()
                .iter()
                .map(|t| t.address.clone())
                .collect();
            assert_eq!(order, ["b:1", "a:1"], "a is tried only after b");
        }
    }

    #[test]
    fn bad_routes_name_their_key() {
        let none = HashMap::new();
        let msg = route("oauth").validate(2, &none).err().map(|e| e.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("configuration key `routes[2].prefix`: must start with `/` and not end with one")
        );
        assert!(!Target::parses("ftp://x") && Target::parses("http://blog:8084"));
        let unknown = Route {
            rate_limit: Some("gold".into()),
            ..route("/a")
        }
        .validate(0, &none);
        assert!(unknown.is_err_and(|e| e.to_string().contains("[rate_limits.gold]")));
    }
}
