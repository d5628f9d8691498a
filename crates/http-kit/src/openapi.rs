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
