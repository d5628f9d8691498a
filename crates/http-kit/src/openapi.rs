//! Each service describes its API with utoipa; the kit adds the operational endpoints and the
//! error envelope, and serves the document at `/openapi.json`.

use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

#[derive(OpenApi)]
#[openapi(
    paths(crate::health::healthz, crate::health::readyz, crate::health::metrics),
    components(schemas(crate::ErrorBody, crate::health::Status, crate::health::CheckResult, crate::pagination::PageLinks)),
    tags((name = "operations", description = "Health, readiness and metrics of the service"))
)]
struct KitApi;

/// The service's document with the kit's paths and schemas merged in.
pub fn complete(mut service: Document) -> Document {
    service.merge(KitApi::openapi());
    service
}

/// Declares the `bearer` security scheme (an RFC 6750 JWT access token) that operations name
/// in `security(("bearer" = [scopes]))`.
pub struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut Document) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
