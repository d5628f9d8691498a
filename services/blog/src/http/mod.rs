//! The blog API. Every handler declares who may call it: requests reach it only through the
//! gateway, which signed who is calling; reading needs [`BlogRead`], writing
//! `ForUser<BlogWrite>` (a token that acts for a user), managing locales and categories
//! [`BlogAdmin`], deleting a [`Deleter`].

pub mod articles;
pub mod comments;
pub mod feed;
pub mod taxonomy;

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use http_kit::{ApiError, Endpoint, PageRequest};
use identity::{Caller, Requirement};

use crate::names::Snapshot;
use crate::state::Blog;
use crate::store::{ArticleRow, CommentRow};

pub const READ_SCOPE: &str = "blog:read";
pub const WRITE_SCOPE: &str = "blog:write";
pub const ADMIN_SCOPE: &str = "blog:admin";

/// Reading the blog: `blog:read`, or `blog:write` (a writer reads too).
pub struct BlogRead;

impl Requirement for BlogRead {
    const SCOPES: &'static [&'static str] = &[READ_SCOPE, WRITE_SCOPE];
}

/// Writing articles and comments, on a token acting for a user (`ForUser<BlogWrite>`).
pub struct BlogWrite;

impl Requirement for BlogWrite {
    const SCOPES: &'static [&'static str] = &[WRITE_SCOPE];
}

/// Managing locales and categories, and deleting anyone's articles and comments.
pub struct BlogAdmin;

impl Requirement for BlogAdmin {
    const SCOPES: &'static [&'static str] = &[ADMIN_SCOPE];
}

/// Who may delete an article or a comment: an administrator, or a writer (whose own it must
/// be, which the handler checks once it has the row). Refused before the row is read, so a
/// caller who may not delete learns nothing of the id.
pub enum Deleter {
    Admin,
    Author(ids::UserId),
}

impl Deleter {
    /// The user whose own the row must be; `None` for an administrator.
    pub fn author(&self) -> Option<&str> {
        match self {
            Self::Admin => None,
            Self::Author(user) => Some(user),
        }
    }
}

impl FromRequest for Deleter {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Caller::of(req).and_then(|caller| {
            if caller.0.has_scope(ADMIN_SCOPE) {
                return Ok(Self::Admin);
            }
            caller.require_scope(WRITE_SCOPE)?;
            Ok(Self::Author(caller.user()?.clone()))
        }))
    }
}

pub use http_kit::etag::{lost_race, tagged, unchanged};

/// RFC 8288 links to the neighbouring pages, keeping the other parameters.
pub fn links(req: &HttpRequest, page: PageRequest, has_next: bool) -> String {
    let others: Vec<_> = req
        .query_string()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("page="))
        .collect();
    let link = |n: u32, rel: &str| {
        let mut query = others.clone();
        let page = format!("page={n}");
        query.push(&page);
        format!("<{}?{}>; rel=\"{rel}\"", req.path(), query.join("&"))
    };
    let mut all = vec![link(1, "first")];
    if page.page() > 1 {
        all.push(link(page.page() - 1, "prev"));
    }
    if has_next {
        all.push(link(page.page() + 1, "next"));
    }
    all.join(", ")
}

/// Names for everything `articles` and `comments` refer to.
pub async fn names_for(
    state: &Blog,
    articles: &[ArticleRow],
    comments: &[CommentRow],
) -> Result<std::sync::Arc<Snapshot>, ApiError> {
    let locales: Vec<i64> = articles.iter().map(|a| a.locales_id).collect();
    let categories: Vec<i64> = articles.iter().map(|a| a.blog_category_id).collect();
    let groups: Vec<i64> = articles
        .iter()
        .map(|a| a.author.group_id)
        .chain(comments.iter().map(|c| c.author.group_id))
        .collect();
    Ok(state.names.covering(&locales, &categories, &groups).await?)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(Endpoint::new("/blog").get(feed::feed).build())
        .service(Endpoint::new("/blog/articles").post(articles::create).build())
        .service(
            Endpoint::new("/blog/articles/{id}")
                .get(articles::show)
                .patch(articles::update)
                .delete(articles::delete)
                .build(),
        )
        .service(
            Endpoint::new("/blog/articles/{id}/comments")
                .get(comments::list)
                .post(comments::create)
                .build(),
        )
        .service(
            Endpoint::new("/blog/comments/{id}")
                .patch(comments::update)
                .delete(comments::delete)
                .build(),
        )
        .service(
            Endpoint::new("/blog/{list}")
                .get(taxonomy::list)
                .post(taxonomy::create)
                .build(),
        )
        .service(
            Endpoint::new("/blog/{list}/{id}")
                .patch(taxonomy::rename)
                .delete(taxonomy::delete)
                .build(),
        );
}
