//! Locales and categories (`/blog/locales`, `/blog/categories`): read with `blog:read`,
//! managed with `blog:admin`. One set of handlers serves both lists.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use http_kit::{ApiError, Envelope};
use identity::Scoped;

use super::{BlogAdmin, BlogRead};
use crate::domain::{self, NameInput};
use crate::state::Blog;
use crate::store::{self, Taxonomy};
use crate::views::Named;

/// A valid name for an entry of `taxonomy`.
fn parse(taxonomy: Taxonomy, name: &str) -> Result<String, ApiError> {
    match taxonomy {
        Taxonomy::Locales => domain::locale_name(name),
        Taxonomy::Categories => domain::category_name(name),
    }
    .map_err(ApiError::from)
}

fn named(row: store::NamedRow) -> Named {
    Named {
        id: row.id,
        name: row.name,
    }
}

/// Every locale or category.
#[utoipa::path(get, path = "/blog/{list}", operation_id = "listLocalesOrCategories", tag = "locales and categories", params(("list" = Taxonomy, Path)),
    security(("bearer" = ["blog:read"])), responses((status = 200, body = Envelope<Vec<Named>>)))]
pub async fn list(
    state: web::Data<Blog>,
    _reader: Scoped<BlogRead>,
    list: web::Path<Taxonomy>,
) -> Result<Envelope<Vec<Named>>, ApiError> {
    let taxonomy = list.into_inner();
    let rows = state.store.names(taxonomy).await?;
    Ok(Envelope::ok(rows.into_iter().map(named).collect()))
}

/// Adds a locale (a language tag, `pt-BR`) or a category (scope `blog:admin`); 409 if it exists.
#[utoipa::path(post, path = "/blog/{list}", operation_id = "createLocaleOrCategory", tag = "locales and categories", params(("list" = Taxonomy, Path)),
    request_body = NameInput, security(("bearer" = ["blog:admin"])),
    responses((status = 201, body = Envelope<Named>), (status = 403, body = http_kit::ErrorBody),
              (status = 409, body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn create(
    state: web::Data<Blog>,
    _admin: Scoped<BlogAdmin>,
    list: web::Path<Taxonomy>,
    body: http_kit::Json<NameInput>,
) -> Result<Envelope<Named>, ApiError> {
    let taxonomy = list.into_inner();
    let name = parse(taxonomy, &body.name)?;
    let id = state
        .store
        .insert_name(taxonomy, name.clone())
        .await
        .map_err(|e| match e {
            storage::StorageError::Conflict(_) => ApiError::conflict(format!("`{name}` already exists")),
            other => other.into(),
        })?;
    Ok(Envelope::with_status(
        StatusCode::CREATED,
        "created",
        "Created",
        Named { id, name },
    ))
}

/// Renames a locale or category (scope `blog:admin`).
#[utoipa::path(patch, path = "/blog/{list}/{id}", operation_id = "renameLocaleOrCategory", tag = "locales and categories",
    params(("list" = Taxonomy, Path), ("id" = i64, Path)), request_body = NameInput, security(("bearer" = ["blog:admin"])),
    responses((status = 200, body = Envelope<Named>), (status = 404, body = http_kit::ErrorBody), (status = 409, body = http_kit::ErrorBody)))]
pub async fn rename(
    state: web::Data<Blog>,
    _admin: Scoped<BlogAdmin>,
    path: web::Path<(Taxonomy, i64)>,
    body: http_kit::Json<NameInput>,
) -> Result<Envelope<Named>, ApiError> {
    let (taxonomy, id) = path.into_inner();
    let name = parse(taxonomy, &body.name)?;
    if !state.store.rename(taxonomy, id, name.clone()).await? {
        return Err(ApiError::not_found(format!("no entry {id}")));
    }
    state.names.refresh().await?;
    Ok(Envelope::ok(Named { id, name }))
}

/// Deletes a locale or category no article uses (scope `blog:admin`); 409 while one does.
#[utoipa::path(delete, path = "/blog/{list}/{id}", operation_id = "deleteLocaleOrCategory", tag = "locales and categories",
    params(("list" = Taxonomy, Path), ("id" = i64, Path)), security(("bearer" = ["blog:admin"])),
    responses((status = 204), (status = 404, body = http_kit::ErrorBody), (status = 409, body = http_kit::ErrorBody)))]
pub async fn delete(
    state: web::Data<Blog>,
    _admin: Scoped<BlogAdmin>,
    path: web::Path<(Taxonomy, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (taxonomy, id) = path.into_inner();
    // The articles' foreign key refuses the deletion of an entry in use.
    let deleted = state.store.delete_name(taxonomy, id).await.map_err(|e| match e {
        storage::StorageError::Conflict(_) => ApiError::conflict("articles use it; move them first"),
        other => other.into(),
    })?;
    if !deleted {
        return Err(ApiError::not_found(format!("no entry {id}")));
    }
    state.names.refresh().await?;
    Ok(HttpResponse::NoContent().finish())
}
