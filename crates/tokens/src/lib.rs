//! Access tokens as every service sees them: the RFC 9068 claims auth signs, a key set built
//! from a JWKS that verifies them (and kept fresh from auth's), the RFC 7662 answer about a token, and the list of revoked
//! tokens that gateways and the introspection service keep in memory.

mod claims;
mod introspection;
mod keyset;
mod remote;
mod revocations;

pub use claims::{AccessClaims, networks_admit};
pub use introspection::Introspection;
pub use keyset::{KeySet, KeySetError, SigningAlgorithm, VerifyError};
pub use remote::{FetchError, RemoteKeys};
pub use revocations::RevocationList;

/// Now, in the seconds since the epoch that `exp`, `iat` and `nbf` count.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
