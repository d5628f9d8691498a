//! The route table: which upstream serves a path, and what the gateway requires first.

use std::collections::HashMap;

use serde::Deserialize;
use settings::SettingsError;

use crate::limits::RatePolicy;

#[derive(Debug, Clone, Deserialize)]
pub struct Route {
    /// Path prefix, matched on a segment boundary.
    pub prefix: String,
    /// Base URL of the upstream service; the request's path and query are appended.
    pub upstream: String,
    pub timeout_secs: u64,
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
        if Target::of(&self.upstream).is_none() {
            return Err(settings::rule(
                &key("upstream"),
                "must be an http:// URL with a host (TLS to upstreams is the mesh's job)",
            ));
        }
        if self.timeout_secs == 0 {
            return Err(settings::rule(&key("timeout_secs"), "must be more than 0"));
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

    fn matches(&self, method: &str, path: &str) -> bool {
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
}

impl Target {
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
        })
    }
}

pub struct Entry {
    pub route: Route,
    pub target: Target,
}

pub struct RouteTable(Vec<Entry>);

impl RouteTable {
    /// The table of validated routes (a route whose upstream does not parse is left out).
    pub fn new(routes: Vec<Route>) -> Self {
        Self(
            routes
                .into_iter()
                .filter_map(|route| {
                    Some(Entry {
                        target: Target::of(&route.upstream)?,
                        route,
                    })
                })
                .collect(),
        )
    }

    /// The first route, in configuration order, that takes this request.
    pub fn find(&self, method: &str, path: &str) -> Option<&Entry> {
        self.0.iter().find(|e| e.route.matches(method, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str) -> Route {
        Route {
            prefix: prefix.into(),
            upstream: "http://127.0.0.1:1".into(),
            timeout_secs: 1,
            public: false,
            scopes: Vec::new(),
            methods: Vec::new(),
            rate_limit: None,
            query_token: false,
        }
    }

    #[test]
    fn prefixes_match_on_segment_boundaries_and_methods_filter() {
        let r = route("/oauth");
        assert!(r.matches("GET", "/oauth") && r.matches("GET", "/oauth/x"));
        assert!(!r.matches("GET", "/oauth2/token") && !r.matches("GET", "/oauthx"));
        assert!(route("/").matches("GET", "/anything"));
        let table = RouteTable::new(vec![
            Route {
                methods: vec!["POST".into()],
                public: true,
                ..route("/users")
            },
            route("/users"),
        ]);
        assert!(table.find("POST", "/users").is_some_and(|e| e.route.public));
        assert!(table.find("GET", "/users/me").is_some_and(|e| !e.route.public));
        assert!(table.find("GET", "/blog").is_none());
    }

    #[test]
    fn bad_routes_name_their_key() {
        let none = HashMap::new();
        let msg = route("oauth").validate(2, &none).err().map(|e| e.to_string());
        assert_eq!(
            msg.as_deref(),
            Some("configuration key `routes[2].prefix`: must start with `/` and not end with one")
        );
        assert!(
            Route {
                upstream: "ftp://x".into(),
                ..route("/a")
            }
            .validate(0, &none)
            .is_err()
        );
        let unknown = Route {
            rate_limit: Some("gold".into()),
            ..route("/a")
        }
        .validate(0, &none);
        assert!(unknown.is_err_and(|e| e.to_string().contains("[rate_limits.gold]")));
    }
}
