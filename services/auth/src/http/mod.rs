//! Auth's endpoints, one file per resource: the token endpoint and revocation (`token`), the
//! authorization code flow with its login and consent pages (`authorize`), applications,
//! users and accounts, metadata and keys, seed 002's documents (`seed`) and the endpoints only
//! introspection calls (`internal`).

pub mod applications;
pub mod authorize;
pub mod consents;
pub mod internal;
pub mod metadata;
pub mod role_requests;
pub mod seed;
pub mod sign_up;
pub mod token;
pub mod users;

use actix_web::web;

/// Every endpoint, each file registering its own. No two files' paths overlap, so the order
/// between files does not decide which resource answers.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(token::routes)
        .configure(applications::routes)
        .configure(metadata::routes)
        .configure(users::routes)
        .configure(consents::routes)
        .configure(role_requests::routes)
        .configure(authorize::routes)
        .configure(sign_up::routes)
        .configure(seed::routes)
        .configure(internal::routes);
}
