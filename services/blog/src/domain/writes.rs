//! The blog's changes, each with its event in one transaction (`events::Outbox::write`):
//! events about an article carry `article/<id>` as their subject.

use events::catalogue::{ArticleDeleted, ArticlePublished, ArticleUpdated, CommentCreated};
use events::{EventPayload, Outbox, Staged};
use ids::{ArticleId, UserId};
use storage::{AnyConnection, StorageError};

use crate::SOURCE;
use crate::store::{self, ArticleFields, ArticleRow, CommentRow};

fn stage<P: EventPayload>(events: &mut Staged, article: ArticleId, payload: &P) -> Result<(), StorageError> {
    events.publish(SOURCE, Some(format!("article/{article}")), payload)
}

/// Who writes: the user, under the name their token carries.
pub struct Writer {
    pub user_id: UserId,
    pub username: String,
}

/// A new article by `writer` (`None` when the author's account is gone), with
/// `article.published`; `locale` and `category` are the names its ids stand for.
pub async fn publish(
    outbox: &Outbox,
    writer: Writer,
    fields: ArticleFields,
    (locale, category): (String, String),
) -> Result<Option<ArticleRow>, StorageError> {
    outbox
        .write(move |conn, events| {
            let Some(account) = store::author_id(conn, &writer.user_id, &writer.username)? else {
                return Ok(None);
            };
            let now = storage::now_millis();
            let id = store::insert_article(conn, account, &fields, now)?;
            let row = store::article(conn, id)?.ok_or(StorageError::NotFound)?;
            let published = ArticlePublished {
                article_id: id,
                author_id: writer.user_id.clone(),
                title: row.title.clone(),
                locale: locale.clone(),
                category: category.clone(),
                published_at: now,
            };
            stage(events, id, &published)?;
            Ok(Some(row))
        })
        .await
}

/// Changes article `id` from `version` (`None` when someone changed it meanwhile), with
/// `article.updated`.
pub async fn update(
    outbox: &Outbox,
    (id, version): (ArticleId, i64),
    author_id: UserId,
    fields: ArticleFields,
) -> Result<Option<ArticleRow>, StorageError> {
    outbox
        .write(move |conn, events| {
            let now = storage::now_millis();
            if !store::update_article(conn, id, &fields, version, now)? {
                return Ok(None);
            }
            let row = store::article(conn, id)?.ok_or(StorageError::NotFound)?;
            let updated = ArticleUpdated {
                article_id: id,
                author_id: author_id.clone(),
                title: row.title.clone(),
                version: row.version,
                modified_at: now,
            };
            stage(events, id, &updated)?;
            Ok(Some(row))
        })
        .await
}

/// Deletes article `id` at `version` and its comments (false when it changed meanwhile),
/// with `article.deleted`.
pub async fn delete(outbox: &Outbox, (id, version): (ArticleId, i64), author_id: UserId) -> Result<bool, StorageError> {
    outbox
        .write(move |conn, events| {
            if !store::delete_article(conn, id, version)? {
                return Ok(false);
            }
            stage(
                events,
                id,
                &ArticleDeleted {
                    article_id: id,
                    author_id: author_id.clone(),
                },
            )?;
            Ok(true)
        })
        .await
}

/// A new comment by `writer` on `article` (`None` when the author's account is gone), with
/// `comment.created`.
pub async fn comment(
    outbox: &Outbox,
    writer: Writer,
    article: ArticleId,
    text: String,
) -> Result<Option<CommentRow>, StorageError> {
    outbox
        .write(move |conn, events| {
            let Some(account) = store::author_id(conn, &writer.user_id, &writer.username)? else {
                return Ok(None);
            };
            let now = storage::now_millis();
            let id = store::insert_comment(conn, article, account, &text, now)?;
            let created = CommentCreated {
                comment_id: id,
                article_id: article,
                author_id: writer.user_id.clone(),
                created_at: now,
            };
            stage(events, article, &created)?;
            store::comment(conn, id)?.ok_or(StorageError::NotFound).map(Some)
        })
        .await
}

/// Forgets an author whose account is gone: their articles (each with `article.deleted`),
/// comments and name, leaving a tombstone dated `at` that older events cannot undo. In the
/// caller's transaction: the consumer runs it once per `user.deleted` (`Outbox::once`).
pub fn forget_author(
    conn: &mut AnyConnection,
    events: &mut Staged,
    user_id: &UserId,
    at: i64,
) -> Result<(), StorageError> {
    for article in store::delete_author(conn, user_id, at)? {
        stage(
            events,
            article,
            &ArticleDeleted {
                article_id: article,
                author_id: user_id.clone(),
            },
        )?;
    }
    Ok(())
}
