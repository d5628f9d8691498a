//! Articles: read by anyone with `blog:read`, written by their author, deleted by their author
//! or an administrator. Changes are conditional on `If-Match` when sent; each one publishes
//! its event through the outbox.

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::{ApiError, etag};
use identity::{ForUser, Scoped};
use ids::ArticleId;
use values::every_field;

use super::{BlogRead, BlogWrite, Deleter, lost_race, names_for, tagged, unchanged};
use crate::domain::writes::{self, Writer};
use crate::domain::{self, ArticleInput, ArticlePatch, Invalid, MAX_TITLE};
use crate::names::Snapshot;
use crate::state::Blog;
use crate::store::{ArticleFields, ArticleRow};
use crate::views::Article;

pub async fn load(state: &Blog, id: ArticleId) -> Result<ArticleRow, ApiError> {
    state
        .store
        .article(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no article {id}")))
}

/// Validates the text and that the locale and category exist; the names, for the events.
async fn checked(state: &Blog, fields: ArticleFields) -> Result<(ArticleFields, Arc<Snapshot>), ApiError> {
    let names = state
        .names
        .covering(&[fields.locales_id], &[fields.blog_category_id], &[])
        .await?;
    let known = |found: bool, field: &str, reason: &str| found.then_some(()).ok_or_else(|| Invalid::new(field, reason));
    let (title, content, (), ()) = every_field!(
        title = domain::text("title", &fields.title, MAX_TITLE, false),
        content = domain::text("content", &fields.content, state.settings.max_content_chars, true),
        locale = known(
            names.has_locale(fields.locales_id),
            "locales_id",
            "no such locale (GET /blog/locales)"
        ),
        category = known(
            names.has_category(fields.blog_category_id),
            "blog_category_id",
            "no such category (GET /blog/categories)"
        ),
    )?;
    Ok((
        ArticleFields {
            title,
            content,
            ..fields
        },
        names,
    ))
}

/// A write from a user whose account was deleted (their token not yet refused everywhere).
pub fn deleted_account() -> ApiError {
    ApiError::forbidden("this account was deleted")
}

/// The representation of `row` and its entity tag.
async fn view(state: &Blog, row: &ArticleRow) -> Result<(Article, String), ApiError> {
    let names = names_for(state, std::slice::from_ref(row), &[]).await?;
    let view = Article::of(row, &names, &state.settings.default_avatar);
    let tag = view.tag(row.version);
    Ok((view, tag))
}

async fn answer(state: &Blog, row: ArticleRow, status: StatusCode) -> Result<HttpResponse, ApiError> {
    let (view, tag) = view(state, &row).await?;
    Ok(tagged(status, view, tag))
}

/// Publishes an article (scope `blog:write`).
#[utoipa::path(post, path = "/blog/articles", operation_id = "createArticle", tag = "articles", request_body = ArticleInput, security(("bearer" = ["blog:write"])),
    responses((status = 201, body = http_kit::Envelope<Article>, headers(("ETag" = String), ("Location" = String))),
              (status = 403, body = http_kit::ErrorBody), (status = 413, body = http_kit::ErrorBody),
              (status = 422, description = "A field is not valid; the message names it", body = http_kit::ErrorBody)))]
pub async fn create(
    state: web::Data<Blog>,
    caller: ForUser<BlogWrite>,
    body: http_kit::Json<ArticleInput>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (fields, names) = checked(
        &state,
        ArticleFields {
            title: body.title,
            content: body.content,
            locales_id: body.locales_id,
            blog_category_id: body.blog_category_id,
        },
    )
    .await?;
    let (locale, category) = (
        names.locale(fields.locales_id).to_owned(),
        names.category(fields.blog_category_id).to_owned(),
    );
    let writer = Writer {
        username: caller.username().to_owned(),
        user_id: caller.user,
    };
    let row = writes::publish(&state.outbox, writer, fields, (locale, category))
        .await?
        .ok_or_else(deleted_account)?;
    tracing::info!(article.id = %row.id, "article published");
    let location = format!("/blog/articles/{}", row.id);
    let mut response = answer(&state, row, StatusCode::CREATED).await?;
    if let Ok(location) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// One article, with its ETag; `If-None-Match` answers 304 when it has not changed.
#[utoipa::path(get, path = "/blog/articles/{id}", operation_id = "getArticle", tag = "articles", security(("bearer" = ["blog:read"])),
    params(("id" = i64, Path)),
    responses((status = 200, body = http_kit::Envelope<Article>, headers(("ETag" = String))), (status = 304), (status = 404, body = http_kit::ErrorBody)))]
pub async fn show(
    state: web::Data<Blog>,
    _reader: Scoped<BlogRead>,
    req: HttpRequest,
    id: web::Path<ArticleId>,
) -> Result<HttpResponse, ApiError> {
    let row = load(&state, *id).await?;
    let (view, tag) = view(&state, &row).await?;
    Ok(unchanged(&req, &tag).unwrap_or_else(|| tagged(StatusCode::OK, view, tag)))
}

/// The article if `user` wrote it; 403 otherwise.
fn own(row: &ArticleRow, user: &str) -> Result<(), ApiError> {
    if row.author.user_id == user {
        Ok(())
    } else {
        Err(ApiError::forbidden("only the article's author may change it"))
    }
}

/// Changes an article (its author, scope `blog:write`): the fields sent replace the stored ones.
#[utoipa::path(patch, path = "/blog/articles/{id}", operation_id = "updateArticle", tag = "articles", request_body = ArticlePatch, security(("bearer" = ["blog:write"])),
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    responses((status = 200, body = http_kit::Envelope<Article>), (status = 403, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody),
              (status = 409, body = http_kit::ErrorBody), (status = 412, body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn update(
    state: web::Data<Blog>,
    caller: ForUser<BlogWrite>,
    req: HttpRequest,
    id: web::Path<ArticleId>,
    body: http_kit::Json<ArticlePatch>,
) -> Result<HttpResponse, ApiError> {
    let current = load(&state, *id).await?;
    own(&current, &caller.user)?;
    etag::if_match(&req, &view(&state, &current).await?.1)?;
    let patch = body.into_inner();
    let (fields, _) = checked(
        &state,
        ArticleFields {
            title: patch.title.unwrap_or_else(|| current.title.clone()),
            content: patch.content.unwrap_or_else(|| current.content.clone()),
            locales_id: patch.locales_id.unwrap_or(current.locales_id),
            blog_category_id: patch.blog_category_id.unwrap_or(current.blog_category_id),
        },
    )
    .await?;
    let at = (current.id, current.version);
    let row = writes::update(&state.outbox, at, caller.user, fields)
        .await?
        .ok_or_else(|| lost_race(&req))?;
    answer(&state, row, StatusCode::OK).await
}

/// Deletes an article and its comments (its author with `blog:write`, or `blog:admin`).
#[utoipa::path(delete, path = "/blog/articles/{id}", operation_id = "deleteArticle", tag = "articles", security(("bearer" = ["blog:write"]), ("bearer" = ["blog:admin"])),
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204), (status = 403, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody), (status = 412, body = http_kit::ErrorBody)))]
pub async fn delete(
    state: web::Data<Blog>,
    deleter: Deleter,
    req: HttpRequest,
    id: web::Path<ArticleId>,
) -> Result<HttpResponse, ApiError> {
    // Permission before existence: a caller who may not delete learns nothing of the id.
    let author = deleter.author();
    let current = load(&state, *id).await?;
    if let Some(user) = author {
        own(&current, user)?;
    }
    etag::if_match(&req, &view(&state, &current).await?.1)?;
    let (article, version) = (current.id, current.version);
    let done = writes::delete(&state.outbox, (article, version), current.author.user_id).await?;
    if !done {
        return Err(lost_race(&req));
    }
    tracing::info!(article.id = %article, "article deleted");
    Ok(HttpResponse::NoContent().finish())
}
