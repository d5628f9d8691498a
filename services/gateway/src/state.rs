//! What every request through the gateway shares.

use std::collections::HashMap;
use std::sync::Arc;

use crate::client_address::ClientAddressSettings;
use crate::cors::CorsSettings;
use crate::metrics::GatewayMetrics;
use crate::rate_limits::{Limits, RatePolicy};
use crate::route_table::RouteTable;
use crate::token_validator::Validator;

pub struct Gateway {
    pub routes: RouteTable,
    pub validator: Arc<Validator>,
    pub limits: Limits,
    pub policies: HashMap<String, RatePolicy>,
    /// Clients whose users' requests count apart in rate limits.
    pub per_user_clients: std::collections::HashSet<String>,
    pub cors: CorsSettings,
    pub client_address: ClientAddressSettings,
    /// Signs the identity headers.
    pub identity_key: identity::SigningKey,
    pub metrics: GatewayMetrics,
    /// Largest request body forwarded (bytes); larger ones answer 413.
    pub body_limit: usize,
    /// Longest wait for the next piece of a request body; past it, 408.
    pub body_idle_timeout: std::time::Duration,
    /// What each application was served, reported on the bus.
    pub usage: std::sync::Arc<crate::usage::Usage>,
}
