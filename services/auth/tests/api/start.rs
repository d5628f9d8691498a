//! Settings that stop auth at start, with the key named, rather than running on a default.

use std::process::Command;

fn start_with(variable: &str, value: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_auth"))
        .env("AUTH_HTTP__PORT", test_support::free_port().to_string())
        .env(variable, value)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_unknown_signing_algorithm_stops_auth_at_start() {
    let (code, stderr) = start_with("AUTH_OAUTH__SIGNING_ALGORITHM", "HS256");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("oauth.signing_algorithm") && stderr.contains("EdDSA") && stderr.contains("HS256"),
        "{stderr}"
    );
}

#[test]
fn a_renamed_key_in_the_environment_stops_auth_at_start() {
    let (code, stderr) = start_with("AUTH_OAUTH__ACCESS_TOKEN_TTL_SECS", "60");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("oauth.access_token_ttl_secs") && stderr.contains("is not a setting"),
        "{stderr}"
    );
}
