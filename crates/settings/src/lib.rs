//! Configuration loading shared by every service.
//!
//! Layers, later wins:
//! 1. the service's commented defaults file, compiled into the binary;
//! 2. an optional file named by `<PREFIX>CONFIG_FILE` (for Helm ConfigMaps);
//! 3. `PLATFORM_*` environment variables, for keys every service shares (telemetry, bus, cache);
//! 4. `<PREFIX>*` environment variables for this service only.
//!
//! Nested keys use `__`: `GATEWAY_HTTP__PORT=9000` sets `http.port`.
//! A value named `…_FILE` is read from that file, so Kubernetes secrets can be mounted.

mod span;
mod tls;

pub use span::Span;
pub use tls::TrustedCas;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;

/// Environment prefix for keys shared by all services.
pub const SHARED_PREFIX: &str = "PLATFORM_";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A key is missing or has the wrong type; figment names the key and where it came from.
    #[error("configuration: {0}")]
    Invalid(String),
    /// A value parsed but breaks a rule of the service.
    #[error("configuration key `{key}`: {reason}")]
    Rule { key: String, reason: String },
    #[error("configuration key `{key}`: cannot read secret file {path}: {source}")]
    SecretFile {
        key: String,
        path: String,
        source: std::io::Error,
    },
}

/// A service's typed settings check their own rules after parsing.
pub trait Validate {
    fn validate(&self) -> Result<(), SettingsError>;
}

/// Builds the layered figment for a service; exposed so the embedded runner can add layers.
pub fn figment(defaults_toml: &str, prefix: &str) -> Result<Figment, SettingsError> {
    let mut figment = Figment::from(Toml::string(defaults_toml));
    if let Ok(path) = std::env::var(format!("{prefix}CONFIG_FILE")) {
        figment = figment.merge(config_file(&path)?);
    }
    let figment = env_layers(figment, SHARED_PREFIX)?;
    env_layers(figment, prefix)
}

/// The file a deployment mounts (a Helm ConfigMap). Helm writes every number as a float
/// (`port = 8080.0`): integral ones are read as integers, so typed settings take them.
fn config_file(path: &str) -> Result<Serialized<figment::value::Value>, SettingsError> {
    use figment::value::{Num, Value};
    fn integral(value: Value) -> Value {
        match value {
            Value::Num(tag, Num::F64(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Num(tag, Num::I64(f as i64)),
            Value::Dict(tag, dict) => Value::Dict(tag, dict.into_iter().map(|(k, v)| (k, integral(v))).collect()),
            Value::Array(tag, items) => Value::Array(tag, items.into_iter().map(integral).collect()),
            other => other,
        }
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| SettingsError::Invalid(format!("cannot read the configuration file {path}: {e}")))?;
    let value: Value = Toml::from_str(&text).map_err(|e| SettingsError::Invalid(format!("{path}: {e}")))?;
    Ok(Serialized::defaults(integral(value)))
}

/// Loads and validates settings of type `T`.
pub fn load<T: DeserializeOwned + Validate>(defaults_toml: &str, prefix: &str) -> Result<T, SettingsError> {
    extract(figment(defaults_toml, prefix)?, prefix)
}

/// Extracts and validates settings from an already-built figment, refusing any `<prefix>…`
/// environment variable that names no setting.
pub fn extract<T: DeserializeOwned + Validate>(figment: Figment, prefix: &str) -> Result<T, SettingsError> {
    let settings: T = figment.extract().map_err(|e| SettingsError::Invalid(describe(e)))?;
    no_unused_variables::<T>(&figment, prefix)?;
    settings.validate()?;
    Ok(settings)
}

/// A renamed or misspelt key in the environment would otherwise be ignored and its default used
/// without a word. Only the service's own variables are checked: `PLATFORM_*` ones are shared
/// by services that do not all have every section.
fn no_unused_variables<T: DeserializeOwned>(figment: &Figment, prefix: &str) -> Result<(), SettingsError> {
    let value: figment::value::Value = figment.extract().map_err(|e| SettingsError::Invalid(describe(e)))?;
    let mut ignored = Vec::new();
    // Its result is the settings already extracted above; only the ignored paths matter here.
    let _: Result<T, _> = serde_ignored::deserialize(&value, |path| ignored.push(path.to_string()));
    for (variable, key) in own_variables(prefix) {
        if ignored
            .iter()
            .any(|path| key == *path || key.starts_with(&format!("{path}.")))
        {
            return Err(rule(
                &key,
                format!("is not a setting of this service (from {variable})"),
            ));
        }
    }
    Ok(())
}

/// The service's own variables and the dotted keys they set (`GATEWAY_TOKENS__MAX_TTL` →
/// `tokens.max_ttl`; a `…_FILE` variable sets the key without its suffix).
fn own_variables(prefix: &str) -> Vec<(String, String)> {
    std::env::vars()
        .filter_map(|(name, _)| {
            let key = name.strip_prefix(prefix)?;
            let key = key.strip_suffix("_FILE").unwrap_or(key);
            (!key.is_empty() && key != "CONFIG").then(|| (name.clone(), key.to_ascii_lowercase().replace("__", ".")))
        })
        .collect()
}

/// Settings stated in code: the defaults file alone (no environment), changed by `change`, then
/// checked by the service's rules. Tests build settings this way so that a renamed key fails to
/// compile instead of being silently ignored.
pub fn changed<T: DeserializeOwned + Validate>(
    defaults_toml: &str,
    change: impl FnOnce(&mut T),
) -> Result<T, SettingsError> {
    let mut settings: T = Figment::from(Toml::string(defaults_toml))
        .extract()
        .map_err(|e| SettingsError::Invalid(describe(e)))?;
    change(&mut settings);
    settings.validate()?;
    Ok(settings)
}

/// A rule violation, for `Validate` implementations.
pub fn rule(key: &str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Rule {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// `value` as an http(s) URL, or the error naming `key`.
pub fn http_url(key: &str, value: &str) -> Result<url::Url, SettingsError> {
    url::Url::parse(value)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| rule(key, "must be an http(s) URL"))
}

/// Environment variables under `prefix`; a `KEY_FILE` variable sets `key` to that file's contents.
fn env_layers(figment: Figment, prefix: &str) -> Result<Figment, SettingsError> {
    let plain = Env::prefixed(prefix)
        .filter(|key| !key.as_str().ends_with("_file") && key.as_str() != "config_file")
        .split("__");
    let mut secrets = figment::value::Dict::new();
    for (name, path) in std::env::vars() {
        let Some(key) = name.strip_prefix(prefix).and_then(|k| k.strip_suffix("_FILE")) else {
            continue;
        };
        if key.is_empty() || key == "CONFIG" {
            continue;
        }
        let dotted = key.to_ascii_lowercase().replace("__", ".");
        let contents = std::fs::read_to_string(&path).map_err(|source| SettingsError::SecretFile {
            key: dotted.clone(),
            path: path.clone(),
            source,
        })?;
        insert_nested(&mut secrets, &dotted, contents.trim_end_matches(['\n', '\r']).into());
    }
    Ok(figment.merge(plain).merge(Serialized::defaults(secrets)))
}

fn insert_nested(dict: &mut figment::value::Dict, dotted: &str, value: figment::value::Value) {
    match dotted.split_once('.') {
        None => {
            dict.insert(dotted.to_owned(), value);
        }
        Some((head, tail)) => {
            let mut inner = match dict.remove(head) {
                Some(figment::value::Value::Dict(_, inner)) => inner,
                _ => figment::value::Dict::new(),
            };
            insert_nested(&mut inner, tail, value);
            dict.insert(head.to_owned(), inner.into());
        }
    }
}

fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("key `{}`: ", e.path.join("."))
            };
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            format!("{key}{}{source}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
// figment::Jail closures must return figment::Error, which is large; that is figment's choice.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Http {
        port: u16,
        host: String,
    }

    #[derive(Debug, Deserialize)]
    struct Demo {
        http: Http,
        name: String,
    }

    impl Validate for Demo {
        fn validate(&self) -> Result<(), SettingsError> {
            if self.name.is_empty() {
                return Err(rule("name", "must not be empty"));
            }
            Ok(())
        }
    }

    const DEFAULTS: &str = "name = \"demo\"\n[http]\nport = 8080\nhost = \"127.0.0.1\"\n";

    // `Jail` serializes tests that touch the process environment and restores it afterwards.
    #[test]
    fn defaults_then_env_override_with_nesting() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DEMO_HTTP__PORT", "9000");
            let s: Demo = load(DEFAULTS, "DEMO_").map_err(|e| e.to_string())?;
            assert_eq!((s.http.port, s.http.host.as_str()), (9000, "127.0.0.1"));
            Ok(())
        });
    }

    #[test]
    fn shared_prefix_applies_and_service_prefix_wins() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PLATFORM_NAME", "shared");
            assert_eq!(
                load::<Demo>(DEFAULTS, "DEMO_").map_err(|e| e.to_string())?.name,
                "shared"
            );
            jail.set_env("DEMO_NAME", "own");
            assert_eq!(load::<Demo>(DEFAULTS, "DEMO_").map_err(|e| e.to_string())?.name, "own");
            Ok(())
        });
    }

    #[test]
    fn bad_type_names_the_key_and_the_variable() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DEMO_HTTP__PORT", "not-a-port");
            let msg = load::<Demo>(DEFAULTS, "DEMO_")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains("http.port") && msg.contains("DEMO_"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn changed_ignores_the_environment_and_still_checks_the_rules() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DEMO_HTTP__PORT", "9000");
            let s: Demo = changed(DEFAULTS, |s: &mut Demo| s.name = "test".into()).map_err(|e| e.to_string())?;
            assert_eq!((s.http.port, s.name.as_str()), (8080, "test"));
            let broken = changed(DEFAULTS, |s: &mut Demo| s.name.clear())
                .err()
                .map(|e| e.to_string());
            assert_eq!(broken.as_deref(), Some("configuration key `name`: must not be empty"));
            Ok(())
        });
    }

    #[test]
    fn a_variable_naming_no_setting_is_refused_but_shared_ones_may_not_apply() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PLATFORM_CACHE__URL", "redis://shared");
            jail.set_env("DEMO_HTTP__PORT", "9000");
            assert!(load::<Demo>(DEFAULTS, "DEMO_").is_ok(), "known and shared keys pass");
            jail.set_env("DEMO_HTTP__PORT_SECS", "9");
            let msg = load::<Demo>(DEFAULTS, "DEMO_").err().map(|e| e.to_string());
            assert_eq!(
                msg.as_deref(),
                Some(
                    "configuration key `http.port_secs`: is not a setting of this service (from DEMO_HTTP__PORT_SECS)"
                )
            );
            Ok(())
        });
    }

    #[test]
    fn rule_violation_names_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DEMO_NAME", "");
            let msg = load::<Demo>(DEFAULTS, "DEMO_").err().map(|e| e.to_string());
            assert_eq!(msg.as_deref(), Some("configuration key `name`: must not be empty"));
            Ok(())
        });
    }

    #[test]
    fn file_suffix_reads_secret_from_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("name.secret", "from-file\n")?;
            let path = jail.directory().join("name.secret");
            jail.set_env("DEMO_NAME_FILE", path.display());
            assert_eq!(
                load::<Demo>(DEFAULTS, "DEMO_").map_err(|e| e.to_string())?.name,
                "from-file"
            );
            jail.set_env("DEMO_NAME_FILE", "/nonexistent/secret");
            let msg = load::<Demo>(DEFAULTS, "DEMO_")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(msg.contains("`name`") && msg.contains("/nonexistent/secret"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn config_file_layers_over_defaults() {
        figment::Jail::expect_with(|jail| {
            // As Helm's toToml writes numbers: floats.
            jail.create_file("extra.toml", "[http]\nport = 7000.0\n")?;
            jail.set_env("DEMO_CONFIG_FILE", jail.directory().join("extra.toml").display());
            assert_eq!(
                load::<Demo>(DEFAULTS, "DEMO_").map_err(|e| e.to_string())?.http.port,
                7000
            );
            Ok(())
        });
    }
}
