//! Seed 000's list of sport codes.

use actix_web::HttpResponse;
use actix_web::http::header;
use http_kit::Envelope;

use crate::domain::sports::{SPORTS, Sport};

/// Seed 000's sports list: every code a profile's `sports` accepts.
#[utoipa::path(get, path = "/sports", operation_id = "listSports", tag = "profiles", responses((status = 200, body = Envelope<Vec<Sport>>)))]
pub async fn sports() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .json(Envelope::ok(SPORTS))
}
