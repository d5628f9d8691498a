//! What every request and consumer of the service shares.

use std::sync::Arc;

use cache::LocalCache;
use tokens::{AccessClaims, RemoteKeys};

use crate::IntrospectionSettings;
use crate::callers::Callers;
use crate::store::Revocations;

/// What every request shares.
pub struct Introspector {
    pub keys: RemoteKeys,
    pub revocations: Revocations,
    pub callers: Callers,
    /// Tokens whose signature was checked, by hash: a token is verified once, not per call.
    pub verified: LocalCache<[u8; 32], Arc<AccessClaims>>,
    pub client: reqwest::Client,
    pub lookup_url: String,
    pub settings: IntrospectionSettings,
}
