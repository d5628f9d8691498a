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
use http_kit::Endpoint;

use crate::oauth_form;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        Endpoint::new("/oauth2/token")
            .app_data(oauth_form())
            .post(token::token)
            .build(),
    )
    .service(
        Endpoint::new("/oauth2/revoke")
            .app_data(oauth_form())
            .post(token::revoke)
            .build(),
    )
    .service(Endpoint::new("/oauth2/register").post(applications::register).build())
    .service(
        Endpoint::new("/.well-known/oauth-authorization-server")
            .get(metadata::metadata)
            .build(),
    )
    .service(
        Endpoint::new("/.well-known/openid-configuration")
            .get(metadata::metadata)
            .build(),
    )
    .service(Endpoint::new("/.well-known/jwks.json").get(metadata::jwks).build())
    .service(Endpoint::new("/users").post(users::register).build())
    .service(Endpoint::new("/accounts/me").get(users::me).build())
    .service(Endpoint::new("/accounts/me/consents").get(consents::list).build())
    .service(
        Endpoint::new("/accounts/me/consents/{client_id}")
            .delete(consents::withdraw)
            .build(),
    )
    .service(
        Endpoint::new("/accounts/me/role-requests")
            .post(role_requests::ask)
            .get(role_requests::mine)
            .build(),
    )
    .service(
        Endpoint::new("/accounts/role-requests")
            .get(role_requests::pending)
            .build(),
    )
    .service(
        Endpoint::new("/accounts/role-requests/{id}/decision")
            .post(role_requests::decide)
            .build(),
    )
    .service(Endpoint::new("/accounts/{id}/roles").put(users::set_roles).build())
    .service(
        Endpoint::new("/applications")
            .post(applications::create)
            .get(applications::list)
            .build(),
    )
    .service(
        Endpoint::new("/applications/{id}")
            .get(applications::show)
            .patch(applications::change)
            .delete(applications::delete)
            .build(),
    )
    .service(
        Endpoint::new("/applications/{id}/secret")
            .post(applications::rotate_secret)
            .build(),
    )
    .service(Endpoint::new("/oauth2/authorize").get(authorize::authorize).build())
    .service(Endpoint::new("/oauth2/login").post(authorize::login).build())
    .service(Endpoint::new("/oauth2/consent").post(authorize::consent).build())
    .service(Endpoint::new("/oauth2/logout").post(authorize::logout).build())
    .service(
        Endpoint::new("/oauth2/sign-up")
            .get(sign_up::page)
            .post(sign_up::submit)
            .build(),
    )
    .service(Endpoint::new("/oauth2/signed-up").get(sign_up::signed_up).build())
    .service(Endpoint::new("/oauth2/verify-email").get(sign_up::verify_email).build())
    .service(Endpoint::new("/api/oauth").get(authorize::seed_login_with).build())
    .service(Endpoint::new("/api/authorize").get(token::seed_authorize).build())
    .service(Endpoint::new("/oauth").post(seed::login).build())
    .service(Endpoint::new("/revoke").delete(seed::revoke).build())
    .service(
        Endpoint::new("/internal/v1/client-authentication")
            .app_data(oauth_form())
            .post(internal::authenticate_client)
            .build(),
    )
    .service(
        Endpoint::new("/internal/v1/token-lookup")
            .app_data(oauth_form())
            .post(internal::lookup_token)
            .build(),
    );
}
