//! The profile API, one file per resource.

pub mod profiles;
pub mod sports;

use actix_web::web;
use http_kit::Endpoint;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/api/get_user_info").get(profiles::user_info).build())
        .service(
            Endpoint::new("/users/me")
                .get(profiles::me)
                .patch(profiles::update_me)
                .delete(profiles::delete_me)
                .build(),
        )
        .service(Endpoint::new("/users/{id}").get(profiles::public_profile).build())
        .service(Endpoint::new("/sports").get(sports::sports).build());
}
