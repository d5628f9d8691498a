//! What every HTTP service of the platform shares, so that each answers alike:
//!
//! - [`envelope`]: seed 001's JSON envelope, `{success, code, message, data}`;
//! - [`error`]: [`ApiError`], the one mapping from failures to statuses and error envelopes;
//! - [`extract`]: JSON, form, query and path extractors whose failures answer in the envelope,
//!   and a catch-all that turns any other error (unknown route, …) into the envelope too;
//! - [`oauth_error`]: RFC 6749 §5.2 errors (`{"error", "error_description"}`) for the OAuth
//!   endpoints, which off-the-shelf clients parse instead of the envelope;
//! - [`credentials`]: the bearer token or Basic credentials of an `Authorization` header;
//! - [`endpoint`]: resources that answer 405 with `Allow` for a method they do not serve;
//! - [`observe`]: request ids, W3C `traceparent`, a span per request, Prometheus metrics;
//! - [`health`]: `/healthz`, `/readyz` with the service's own checks, `/metrics`;
//! - [`etag`]: entity tags of representations, `If-Match` (412) and `If-None-Match` (304);
//! - [`pagination`]: page/size and cursor pages, with totals and links;
//! - [`openapi`]: the service's OpenAPI 3 document at `/openapi.json`;
//! - [`server`]: binding, serving and graceful shutdown.

pub mod credentials;
pub mod endpoint;
pub mod envelope;
pub mod error;
pub mod etag;
pub mod extract;
pub mod health;
pub mod oauth_error;
pub mod observe;
pub mod openapi;
pub mod pagination;
pub mod server;

pub use endpoint::Endpoint;
pub use envelope::Envelope;
pub use error::{ApiError, ErrorBody, ErrorKind};
pub use extract::Json;
pub use health::Readiness;
pub use oauth_error::OAuthError;
pub use observe::RequestId;
pub use pagination::{CursorPage, Page, PageQuery, PageRequest};
pub use server::{HttpSettings, Running, Service};
