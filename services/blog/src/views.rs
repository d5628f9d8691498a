//! Seed 002's shapes: integer ids, epoch-millisecond timestamps, each article with its
//! account (group, avatar), locale and category, comments with their user.

use serde::Serialize;
use utoipa::ToSchema;

use crate::names::Snapshot;
use crate::store::{ArticleRow, AuthorColumns, CommentRow};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub parent_id: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Avatar {
    pub id: i64,
    pub path: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub group: Group,
    /// One avatar per account: its id is the account's.
    pub avatar: Avatar,
}

/// A locale or a category: `{id, name}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Named {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Article {
    pub id: i64,
    pub account_id: i64,
    pub locales_id: i64,
    pub blog_category_id: i64,
    pub title: String,
    pub content: String,
    /// Milliseconds since the epoch.
    pub create_timestamp: i64,
    /// Milliseconds since the epoch.
    pub modify_timestamp: i64,
    pub account: Account,
    pub locale: Named,
    pub category: Named,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Comment {
    pub id: i64,
    pub content: String,
    pub create_timestamp: i64,
    pub modify_timestamp: i64,
    pub user: Account,
}

/// One entry of `data`: the article, and its newest comments when it has any (seed 002 leaves
/// `comments` out of articles without).
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedItem {
    pub article: Article,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<Comment>,
}

/// Seed 002's `GET /blog` document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Feed {
    /// When the answer was made, milliseconds since the epoch.
    pub timestamp: i64,
    pub status: u16,
    /// "OK".
    pub error: String,
    pub message: String,
    pub path: String,
    pub data: Vec<FeedItem>,
}

fn account(id: i64, author: &AuthorColumns, names: &Snapshot, default_avatar: &str) -> Account {
    let (group, parent_id) = names.group(author.group_id);
    Account {
        id,
        username: author.username.clone(),
        group: Group {
            id: author.group_id,
            name: group.to_owned(),
            parent_id,
        },
        avatar: Avatar {
            id,
            path: author.avatar.clone().unwrap_or_else(|| default_avatar.to_owned()),
        },
    }
}

impl Article {
    /// The entity tag of this representation at `version`: it shows the author's and the
    /// names' current values, which change without the article's version.
    pub fn tag(&self, version: i64) -> String {
        let a = &self.account;
        http_kit::etag::tag(
            version,
            &[
                &a.username,
                &a.avatar.path,
                &a.group.name,
                &self.locale.name,
                &self.category.name,
            ],
        )
    }

    pub fn of(row: &ArticleRow, names: &Snapshot, default_avatar: &str) -> Self {
        Self {
            id: row.id.get(),
            account_id: row.account_id,
            locales_id: row.locales_id,
            blog_category_id: row.blog_category_id,
            title: row.title.clone(),
            content: row.content.clone(),
            create_timestamp: row.create_timestamp,
            modify_timestamp: row.modify_timestamp,
            account: account(row.account_id, &row.author, names, default_avatar),
            locale: Named {
                id: row.locales_id,
                name: names.locale(row.locales_id).to_owned(),
            },
            category: Named {
                id: row.blog_category_id,
                name: names.category(row.blog_category_id).to_owned(),
            },
        }
    }
}

impl Comment {
    /// The entity tag of this representation at `version` (see [`Article::tag`]).
    pub fn tag(&self, version: i64) -> String {
        let u = &self.user;
        http_kit::etag::tag(version, &[&u.username, &u.avatar.path, &u.group.name])
    }

    pub fn of(row: &CommentRow, names: &Snapshot, default_avatar: &str) -> Self {
        Self {
            id: row.id.get(),
            content: row.content.clone(),
            create_timestamp: row.create_timestamp,
            modify_timestamp: row.modify_timestamp,
            user: account(row.account_id, &row.author, names, default_avatar),
        }
    }
}
