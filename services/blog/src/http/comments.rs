//! Comments on articles: listed by page, written by anyone with `blog:write`, changed by
//! their author, deleted by their author or an administrator.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::{ApiError, Envelope, PageQuery, PageRequest, etag};
use identity::{ForUser, Scoped};
use ids::{ArticleId, CommentId};

use super::articles;
use super::{BlogRead, BlogWrite, Deleter, links, lost_race, names_for, tagged};
use crate::domain::writes::{self, Writer};
use crate::domain::{self, CommentInput};
use crate::state::Blog;
use crate::store::CommentRow;
use crate::views::Comment;

async fn load(state: &Blog, id: CommentId) -> Result<CommentRow, ApiError> {
    state
        .store
        .comment(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no comment {id}")))
}

/// The representation of `row` and its entity tag.
async fn view(state: &Blog, row: &CommentRow) -> Result<(Comment, String), ApiError> {
    let names = names_for(state, &[], std::slice::from_ref(row)).await?;
    let view = Comment::of(row, &names, &state.settings.default_avatar);
    let tag = view.tag(row.version);
    Ok((view, tag))
}

async fn answer(state: &Blog, row: CommentRow, status: StatusCode) -> Result<HttpResponse, ApiError> {
    let (view, tag) = view(state, &row).await?;
    Ok(tagged(status, view, tag))
}

fn content(state: &Blog, value: &str) -> Result<String, ApiError> {
    domain::text("content", value, state.settings.max_comment_chars, true).map_err(ApiError::from)
}

/// An article's comments, oldest first, a page at a time (`Link` points to the next).
#[utoipa::path(get, path = "/blog/articles/{id}/comments", operation_id = "listComments", tag = "comments", params(("id" = i64, Path), PageQuery),
    security(("bearer" = ["blog:read"])),
    responses((status = 200, body = Envelope<Vec<Comment>>), (status = 404, body = http_kit::ErrorBody)))]
pub async fn list(
    state: web::Data<Blog>,
    _reader: Scoped<BlogRead>,
    req: HttpRequest,
    id: web::Path<ArticleId>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::try_from(query.into_inner())?;
    let article = articles::load(&state, *id).await?.id;
    let mut rows = state
        .store
        .comments_of(article, page.limit() + 1, page.offset())
        .await?;
    let has_next = rows.len() > page.size() as usize;
    rows.truncate(page.size() as usize);
    let avatar = &state.settings.default_avatar;
    let names = names_for(&state, &[], &rows).await?;
    let comments: Vec<Comment> = rows.iter().map(|row| Comment::of(row, &names, avatar)).collect();
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::LINK, links(&req, page, has_next)))
        .json(Envelope::ok(comments)))
}

/// Comments on an article (scope `blog:write`).
#[utoipa::path(post, path = "/blog/articles/{id}/comments", operation_id = "createComment", tag = "comments", request_body = CommentInput,
    params(("id" = i64, Path)), security(("bearer" = ["blog:write"])),
    responses((status = 201, body = Envelope<Comment>), (status = 403, body = http_kit::ErrorBody),
              (status = 404, body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn create(
    state: web::Data<Blog>,
    caller: ForUser<BlogWrite>,
    id: web::Path<ArticleId>,
    body: http_kit::Json<CommentInput>,
) -> Result<HttpResponse, ApiError> {
    let text = content(&state, &body.content)?;
    let article = articles::load(&state, *id).await?.id;
    let writer = Writer {
        username: caller.username().to_owned(),
        user_id: caller.user,
    };
    let row = writes::comment(&state.outbox, writer, article, text)
        .await?
        .ok_or_else(articles::deleted_account)?;
    answer(&state, row, StatusCode::CREATED).await
}

/// Changes a comment (its author, scope `blog:write`).
#[utoipa::path(patch, path = "/blog/comments/{id}", operation_id = "updateComment", tag = "comments", request_body = CommentInput,
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), security(("bearer" = ["blog:write"])),
    responses((status = 200, body = Envelope<Comment>), (status = 403, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody), (status = 412, body = http_kit::ErrorBody)))]
pub async fn update(
    state: web::Data<Blog>,
    caller: ForUser<BlogWrite>,
    req: HttpRequest,
    id: web::Path<CommentId>,
    body: http_kit::Json<CommentInput>,
) -> Result<HttpResponse, ApiError> {
    let user = caller.user.as_str();
    let current = load(&state, *id).await?;
    if current.author.user_id != user {
        return Err(ApiError::forbidden("only the comment's author may change it"));
    }
    etag::if_match(&req, &view(&state, &current).await?.1)?;
    let text = content(&state, &body.content)?;
    let (comment, version) = (current.id, current.version);
    let row = state
        .store
        .update_comment(comment, text, version)
        .await?
        .ok_or_else(|| lost_race(&req))?;
    answer(&state, row, StatusCode::OK).await
}

/// Deletes a comment (its author with `blog:write`, or `blog:admin`).
#[utoipa::path(delete, path = "/blog/comments/{id}", operation_id = "deleteComment", tag = "comments",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), security(("bearer" = ["blog:write"]), ("bearer" = ["blog:admin"])),
    responses((status = 204), (status = 403, body = http_kit::ErrorBody), (status = 404, body = http_kit::ErrorBody), (status = 412, body = http_kit::ErrorBody)))]
pub async fn delete(
    state: web::Data<Blog>,
    deleter: Deleter,
    req: HttpRequest,
    id: web::Path<CommentId>,
) -> Result<HttpResponse, ApiError> {
    // Permission before existence: a caller who may not delete learns nothing of the id.
    let author = deleter.author();
    let current = load(&state, *id).await?;
    if author.is_some_and(|user| current.author.user_id != user) {
        return Err(ApiError::forbidden("only the comment's author may delete it"));
    }
    etag::if_match(&req, &view(&state, &current).await?.1)?;
    let (comment, version) = (current.id, current.version);
    if !state.store.delete_comment(comment, version).await? {
        return Err(lost_race(&req));
    }
    Ok(HttpResponse::NoContent().finish())
}
