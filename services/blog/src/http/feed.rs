//! Seed 002's `GET /blog`: newest articles first, each with its account, locale, category
//! and newest comments, in two queries per page.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use http_kit::{ApiError, PageQuery, PageRequest};
use identity::Scoped;

use super::{BlogRead, links, names_for};
use crate::domain::{self, FeedQuery};
use crate::state::Blog;
use crate::store::{FeedFilter, Taxonomy};
use crate::views::{Article, Comment, Feed, FeedItem};

/// A `locale` filter: an id, or a name looked up once.
async fn locale_id(state: &Blog, locale: Option<&str>) -> Result<i64, ApiError> {
    let Some(locale) = locale.filter(|l| !l.is_empty()) else {
        return Ok(0);
    };
    if let Ok(id) = locale.parse() {
        return Ok(id);
    }
    state
        .store
        .id_by_name(Taxonomy::Locales, locale.to_owned())
        .await?
        .ok_or_else(|| ApiError::invalid_field("locale", "no such locale (GET /blog/locales)"))
}

/// The blog, newest first (seed 002's document, exactly). Pages with `page` and `size`; the
/// `Link` header points to the next and previous pages. Filters: `category`, `locale`,
/// `author`, `q`.
#[utoipa::path(get, path = "/blog", operation_id = "getBlogFeed", tag = "seed", params(FeedQuery), security(("bearer" = ["blog:read"])),
    responses((status = 200, body = Feed, headers(("Link" = String, description = "RFC 8288 first/prev/next"))),
              (status = 403, body = http_kit::ErrorBody), (status = 422, body = http_kit::ErrorBody)))]
pub async fn feed(
    state: web::Data<Blog>,
    _reader: Scoped<BlogRead>,
    req: HttpRequest,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = PageRequest::try_from(PageQuery {
        page: query.page,
        size: query.size,
    })?;
    let filter = FeedFilter {
        category: query.category.unwrap_or(0),
        locale: locale_id(&state, query.locale.as_deref()).await?,
        author: query.author.unwrap_or(0),
        text: domain::search_pattern(query.q.as_deref().unwrap_or_default())?,
    };
    let per_article = state.settings.comments_per_article;
    // One more than a page tells whether there is a next one, without counting them all.
    let (mut articles, comments) = state
        .store
        .feed(
            filter,
            (page.limit() + 1, page.offset()),
            page.size() as usize,
            per_article,
        )
        .await?;
    let has_next = articles.len() > page.size() as usize;
    articles.truncate(page.size() as usize);
    let avatar = &state.settings.default_avatar;
    let names = names_for(&state, &articles, &comments).await?;
    let mut data: Vec<FeedItem> = articles
        .iter()
        .map(|row| FeedItem {
            article: Article::of(row, &names, avatar),
            comments: Vec::new(),
        })
        .collect();
    for comment in &comments {
        if let Some(item) = data.iter_mut().find(|item| item.article.id == comment.article_id.get()) {
            item.comments.push(Comment::of(comment, &names, avatar));
        }
    }
    let document = Feed {
        timestamp: storage::now_millis(),
        status: 200,
        error: "OK".to_owned(),
        message: String::new(),
        path: req.path().to_owned(),
        data,
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::LINK, links(&req, page, has_next)))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .json(document))
}
