//! The blog database. A page of `GET /blog` is two queries (articles, then their newest
//! comments), whatever its size. Functions take a connection, so the domain composes them with
//! the outbox in one transaction; [`Store`] runs them for async callers. Placeholders (`$n`) must first appear in the statement in
//! numeric order: SQLite numbers them by first appearance.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use ids::{ArticleId, CommentId, UserId};
use storage::{AnyConnection, Database, StorageError};

/// The author columns every article and comment row carries.
#[derive(Debug, Clone, QueryableByName)]
pub struct AuthorColumns {
    #[diesel(sql_type = Text)]
    pub user_id: UserId,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub avatar: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub group_id: i64,
}

#[derive(Debug, Clone, QueryableByName)]
pub struct ArticleRow {
    #[diesel(sql_type = BigInt)]
    pub id: ArticleId,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = BigInt)]
    pub locales_id: i64,
    #[diesel(sql_type = BigInt)]
    pub blog_category_id: i64,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub content: String,
    #[diesel(sql_type = BigInt)]
    pub create_timestamp: i64,
    #[diesel(sql_type = BigInt)]
    pub modify_timestamp: i64,
    #[diesel(sql_type = BigInt)]
    pub version: i64,
    #[diesel(embed)]
    pub author: AuthorColumns,
}

#[derive(Debug, Clone, QueryableByName)]
pub struct CommentRow {
    #[diesel(sql_type = BigInt)]
    pub id: CommentId,
    #[diesel(sql_type = BigInt)]
    pub article_id: ArticleId,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = Text)]
    pub content: String,
    #[diesel(sql_type = BigInt)]
    pub create_timestamp: i64,
    #[diesel(sql_type = BigInt)]
    pub modify_timestamp: i64,
    #[diesel(sql_type = BigInt)]
    pub version: i64,
    #[diesel(embed)]
    pub author: AuthorColumns,
}

#[derive(Debug, Clone, QueryableByName)]
pub struct NamedRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct ArticleKey {
    #[diesel(sql_type = BigInt)]
    id: ArticleId,
}

#[derive(QueryableByName)]
struct CommentKey {
    #[diesel(sql_type = BigInt)]
    id: CommentId,
}

#[derive(Debug, Clone, QueryableByName)]
pub struct GroupRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub parent_id: i64,
}

/// The blog's tables for async callers: each method is one call on the blocking pool, with
/// owned arguments, so no caller writes a closure or clones to feed one.
#[derive(Clone)]
pub struct Store {
    db: Database,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub async fn article(&self, id: ArticleId) -> Result<Option<ArticleRow>, StorageError> {
        self.db.run(move |c| Ok(article(c, id)?)).await
    }

    /// A page of the feed (`limit` rows from `offset`) and the newest `per_article` comments
    /// of its first `shown` articles, in one checkout: the rows past `shown` only tell the
    /// caller whether there is a next page.
    pub async fn feed(
        &self,
        filter: FeedFilter,
        (limit, offset): (i64, i64),
        shown: usize,
        per_article: i64,
    ) -> Result<(Vec<ArticleRow>, Vec<CommentRow>), StorageError> {
        self.db
            .run(move |c| {
                let articles = feed(c, &filter, limit, offset)?;
                let ids: Vec<ArticleId> = articles.iter().take(shown).map(|a| a.id).collect();
                let comments = newest_comments(c, &ids, per_article)?;
                Ok((articles, comments))
            })
            .await
    }

    pub async fn comment(&self, id: CommentId) -> Result<Option<CommentRow>, StorageError> {
        self.db.run(move |c| Ok(comment(c, id)?)).await
    }

    pub async fn comments_of(
        &self,
        article: ArticleId,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<CommentRow>, StorageError> {
        self.db.run(move |c| Ok(comments_of(c, article, limit, offset)?)).await
    }

    /// The comment as changed to `content`, if it was still at `version`.
    pub async fn update_comment(
        &self,
        id: CommentId,
        content: String,
        version: i64,
    ) -> Result<Option<CommentRow>, StorageError> {
        self.db
            .transaction(move |c| {
                if !update_comment(c, id, &content, version, storage::now_millis())? {
                    return Ok(None);
                }
                Ok(comment(c, id)?)
            })
            .await
    }

    pub async fn delete_comment(&self, id: CommentId, version: i64) -> Result<bool, StorageError> {
        self.db.run(move |c| Ok(delete_comment(c, id, version)?)).await
    }

    pub async fn names(&self, taxonomy: Taxonomy) -> Result<Vec<NamedRow>, StorageError> {
        self.db.run(move |c| Ok(names(c, taxonomy)?)).await
    }

    /// Every locale, category and group, in one checkout (what `crate::names` keeps).
    pub async fn all_names(&self) -> Result<(Vec<NamedRow>, Vec<NamedRow>, Vec<GroupRow>), StorageError> {
        self.db
            .run(|c| {
                Ok((
                    names(c, Taxonomy::Locales)?,
                    names(c, Taxonomy::Categories)?,
                    groups(c)?,
                ))
            })
            .await
    }

    pub async fn id_by_name(&self, taxonomy: Taxonomy, name: String) -> Result<Option<i64>, StorageError> {
        self.db.run(move |c| Ok(id_by_name(c, taxonomy, &name)?)).await
    }

    pub async fn insert_name(&self, taxonomy: Taxonomy, name: String) -> Result<i64, StorageError> {
        self.db.run(move |c| Ok(insert_name(c, taxonomy, &name)?)).await
    }

    pub async fn rename(&self, taxonomy: Taxonomy, id: i64, name: String) -> Result<bool, StorageError> {
        self.db.run(move |c| Ok(rename(c, taxonomy, id, &name)?)).await
    }

    pub async fn delete_name(&self, taxonomy: Taxonomy, id: i64) -> Result<bool, StorageError> {
        self.db.run(move |c| Ok(delete_name(c, taxonomy, id)?)).await
    }
}

// Rows join only their authors: the names of locales, categories and groups (a few rows that
// rarely change) come from memory (`crate::names`). A join of five tables cost PostgreSQL more
// to plan than to run, on every request.
const AUTHOR_COLUMNS: &str = "u.user_id, u.username, u.avatar, u.group_id";

fn article_select() -> String {
    format!(
        "SELECT a.id, a.account_id, a.locales_id, a.blog_category_id, a.title, a.content, a.create_timestamp, \
         a.modify_timestamp, a.version, {AUTHOR_COLUMNS} FROM articles a JOIN authors u ON u.id = a.account_id"
    )
}

fn comment_select() -> String {
    format!(
        "SELECT cm.id, cm.article_id, cm.account_id, cm.content, cm.create_timestamp, cm.modify_timestamp, \
         cm.version, {AUTHOR_COLUMNS} FROM comments cm JOIN authors u ON u.id = cm.account_id"
    )
}

// Authors: a projection of users, from events and from the identity of whoever writes.

/// Records a registered user, unless already known or deleted.
pub fn author_registered(conn: &mut AnyConnection, user_id: &str, username: &str, at: i64) -> QueryResult<()> {
    // The WHERE also tells SQLite's parser that ON CONFLICT belongs to the INSERT.
    diesel::sql_query(
        "INSERT INTO authors (user_id, username, group_id, updated_at) SELECT $1, $2, 1, $3 \
         WHERE NOT EXISTS (SELECT 1 FROM deleted_authors WHERE user_id = $1) ON CONFLICT (user_id) DO NOTHING",
    )
    .bind::<Text, _>(user_id)
    .bind::<Text, _>(username)
    .bind::<BigInt, _>(at)
    .execute(conn)
    .map(drop)
}

/// Applies a `user.updated` of time `at`, unless the row already reflects a later one or the
/// user was deleted.
pub fn author_updated(
    conn: &mut AnyConnection,
    user_id: &str,
    username: &str,
    avatar: Option<&str>,
    at: i64,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO authors (user_id, username, group_id, avatar, updated_at) SELECT $1, $2, 1, $3, $4 \
         WHERE NOT EXISTS (SELECT 1 FROM deleted_authors WHERE user_id = $1) \
         ON CONFLICT (user_id) DO UPDATE SET username = excluded.username, avatar = excluded.avatar, \
         updated_at = excluded.updated_at WHERE authors.updated_at <= excluded.updated_at",
    )
    .bind::<Text, _>(user_id)
    .bind::<Text, _>(username)
    .bind::<Nullable<Text>, _>(avatar)
    .bind::<BigInt, _>(at)
    .execute(conn)
    .map(drop)
}

/// The account id of `user_id`, recording the author first if this is their first write;
/// `None` for a deleted user.
pub fn author_id(conn: &mut AnyConnection, user_id: &str, username: &str) -> QueryResult<Option<i64>> {
    author_registered(conn, user_id, username, 0)?;
    diesel::sql_query("SELECT id FROM authors WHERE user_id = $1")
        .bind::<Text, _>(user_id)
        .get_result::<Id>(conn)
        .optional()
        .map(|row| row.map(|r| r.id))
}

/// Forgets a deleted user: their comments, their articles (with every comment on them) and
/// the author row, and remembers the deletion. Returns the ids of the articles deleted.
pub fn delete_author(conn: &mut AnyConnection, user_id: &str, at: i64) -> QueryResult<Vec<ArticleId>> {
    diesel::sql_query("INSERT INTO deleted_authors (user_id, deleted_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind::<Text, _>(user_id)
        .bind::<BigInt, _>(at)
        .execute(conn)?;
    let articles: Vec<ArticleId> =
        diesel::sql_query("SELECT a.id FROM articles a JOIN authors u ON u.id = a.account_id WHERE u.user_id = $1")
            .bind::<Text, _>(user_id)
            .load::<ArticleKey>(conn)?
            .into_iter()
            .map(|r| r.id)
            .collect();
    for statement in [
        "DELETE FROM comments WHERE account_id IN (SELECT id FROM authors WHERE user_id = $1)",
        "DELETE FROM articles WHERE account_id IN (SELECT id FROM authors WHERE user_id = $1)",
        "DELETE FROM authors WHERE user_id = $1",
    ] {
        diesel::sql_query(statement).bind::<Text, _>(user_id).execute(conn)?;
    }
    Ok(articles)
}

// Articles.

/// What `GET /blog` may filter on; 0 and "" mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedFilter {
    pub category: i64,
    pub locale: i64,
    pub author: i64,
    /// A `LIKE` pattern over the lower-cased title and content (`search_text`), or "".
    pub text: String,
}

/// A page of articles, newest first.
pub fn feed(conn: &mut AnyConnection, filter: &FeedFilter, limit: i64, offset: i64) -> QueryResult<Vec<ArticleRow>> {
    // Unused filters compare their neutral value, so one statement serves every combination;
    // PostgreSQL plans each execution with the values bound, and the indexes still apply.
    let sql = format!(
        "{} WHERE ($1 = 0 OR a.blog_category_id = $1) AND ($2 = 0 OR a.locales_id = $2) \
         AND ($3 = 0 OR a.account_id = $3) \
         AND ($4 = '' OR a.search_text LIKE $4 ESCAPE '\\') \
         ORDER BY a.create_timestamp DESC, a.id DESC LIMIT $5 OFFSET $6",
        article_select()
    );
    diesel::sql_query(sql)
        .bind::<BigInt, _>(filter.category)
        .bind::<BigInt, _>(filter.locale)
        .bind::<BigInt, _>(filter.author)
        .bind::<Text, _>(&filter.text)
        .bind::<BigInt, _>(limit)
        .bind::<BigInt, _>(offset)
        .load(conn)
}

/// The newest `per_article` comments of each article, oldest first within an article.
pub fn newest_comments(
    conn: &mut AnyConnection,
    articles: &[ArticleId],
    per_article: i64,
) -> QueryResult<Vec<CommentRow>> {
    if articles.is_empty() || per_article == 0 {
        return Ok(Vec::new());
    }
    // The ids come from the database as integers: written into the statement, they cannot
    // inject anything, and one statement serves any page size.
    let ids = articles.iter().map(ArticleId::to_string).collect::<Vec<_>>().join(",");
    let sql = format!(
        "SELECT * FROM (SELECT t.*, ROW_NUMBER() OVER (PARTITION BY t.article_id ORDER BY t.id DESC) AS rn \
         FROM ({} WHERE cm.article_id IN ({ids})) t) ranked WHERE rn <= $1 ORDER BY article_id, id",
        comment_select()
    );
    diesel::sql_query(sql).bind::<BigInt, _>(per_article).load(conn)
}

pub fn article(conn: &mut AnyConnection, id: ArticleId) -> QueryResult<Option<ArticleRow>> {
    diesel::sql_query(format!("{} WHERE a.id = $1", article_select()))
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .optional()
}

/// The fields an author writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleFields {
    pub title: String,
    pub content: String,
    pub locales_id: i64,
    pub blog_category_id: i64,
}

impl ArticleFields {
    /// What text search looks in; `domain::search_pattern` lower-cases the query alike.
    fn search_text(&self) -> String {
        format!("{}\n{}", self.title, self.content).to_lowercase()
    }
}

pub fn insert_article(
    conn: &mut AnyConnection,
    account_id: i64,
    fields: &ArticleFields,
    now: i64,
) -> QueryResult<ArticleId> {
    diesel::sql_query(
        "INSERT INTO articles (account_id, locales_id, blog_category_id, title, content, create_timestamp, modify_timestamp, version, search_text) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, 1, $7) RETURNING id",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(fields.locales_id)
    .bind::<BigInt, _>(fields.blog_category_id)
    .bind::<Text, _>(&fields.title)
    .bind::<Text, _>(&fields.content)
    .bind::<BigInt, _>(now)
    .bind::<Text, _>(fields.search_text())
    .get_result::<ArticleKey>(conn)
    .map(|row| row.id)
}

/// Writes the article at version `version + 1` if it is still at `version`.
pub fn update_article(
    conn: &mut AnyConnection,
    id: ArticleId,
    fields: &ArticleFields,
    version: i64,
    now: i64,
) -> QueryResult<bool> {
    diesel::sql_query(
        "UPDATE articles SET title = $1, content = $2, locales_id = $3, blog_category_id = $4, modify_timestamp = $5, \
         search_text = $6, version = version + 1 WHERE id = $7 AND version = $8",
    )
    .bind::<Text, _>(&fields.title)
    .bind::<Text, _>(&fields.content)
    .bind::<BigInt, _>(fields.locales_id)
    .bind::<BigInt, _>(fields.blog_category_id)
    .bind::<BigInt, _>(now)
    .bind::<Text, _>(fields.search_text())
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(version)
    .execute(conn)
    .map(|n| n == 1)
}

/// Deletes the article (its comments go with it) if it is still at `version`.
pub fn delete_article(conn: &mut AnyConnection, id: ArticleId, version: i64) -> QueryResult<bool> {
    diesel::sql_query("DELETE FROM articles WHERE id = $1 AND version = $2")
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(version)
        .execute(conn)
        .map(|n| n == 1)
}

// Comments.

pub fn comments_of(
    conn: &mut AnyConnection,
    article: ArticleId,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<CommentRow>> {
    diesel::sql_query(format!(
        "{} WHERE cm.article_id = $1 ORDER BY cm.id LIMIT $2 OFFSET $3",
        comment_select()
    ))
    .bind::<BigInt, _>(article)
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .load(conn)
}

pub fn comment(conn: &mut AnyConnection, id: CommentId) -> QueryResult<Option<CommentRow>> {
    diesel::sql_query(format!("{} WHERE cm.id = $1", comment_select()))
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .optional()
}

pub fn insert_comment(
    conn: &mut AnyConnection,
    article: ArticleId,
    account_id: i64,
    content: &str,
    now: i64,
) -> QueryResult<CommentId> {
    diesel::sql_query(
        "INSERT INTO comments (article_id, account_id, content, create_timestamp, modify_timestamp, version) \
         VALUES ($1, $2, $3, $4, $4, 1) RETURNING id",
    )
    .bind::<BigInt, _>(article)
    .bind::<BigInt, _>(account_id)
    .bind::<Text, _>(content)
    .bind::<BigInt, _>(now)
    .get_result::<CommentKey>(conn)
    .map(|row| row.id)
}

pub fn update_comment(
    conn: &mut AnyConnection,
    id: CommentId,
    content: &str,
    version: i64,
    now: i64,
) -> QueryResult<bool> {
    diesel::sql_query(
        "UPDATE comments SET content = $1, modify_timestamp = $2, version = version + 1 WHERE id = $3 AND version = $4",
    )
    .bind::<Text, _>(content)
    .bind::<BigInt, _>(now)
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(version)
    .execute(conn)
    .map(|n| n == 1)
}

pub fn delete_comment(conn: &mut AnyConnection, id: CommentId, version: i64) -> QueryResult<bool> {
    diesel::sql_query("DELETE FROM comments WHERE id = $1 AND version = $2")
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(version)
        .execute(conn)
        .map(|n| n == 1)
}

// Locales and categories: the same `{id, name}` lists, managed by administrators.

/// Also the `{list}` of `/blog/{list}`: `locales` or `categories`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Taxonomy {
    Locales,
    Categories,
}

impl Taxonomy {
    fn table(self) -> &'static str {
        match self {
            Self::Locales => "locales",
            Self::Categories => "categories",
        }
    }
}

pub fn names(conn: &mut AnyConnection, taxonomy: Taxonomy) -> QueryResult<Vec<NamedRow>> {
    diesel::sql_query(format!("SELECT id, name FROM {} ORDER BY id", taxonomy.table())).load(conn)
}

pub fn groups(conn: &mut AnyConnection) -> QueryResult<Vec<GroupRow>> {
    diesel::sql_query("SELECT id, name, parent_id FROM author_groups").load(conn)
}

pub fn id_by_name(conn: &mut AnyConnection, taxonomy: Taxonomy, name: &str) -> QueryResult<Option<i64>> {
    diesel::sql_query(format!("SELECT id FROM {} WHERE name = $1", taxonomy.table()))
        .bind::<Text, _>(name)
        .get_result::<Id>(conn)
        .optional()
        .map(|row| row.map(|r| r.id))
}

pub fn insert_name(conn: &mut AnyConnection, taxonomy: Taxonomy, name: &str) -> QueryResult<i64> {
    diesel::sql_query(format!(
        "INSERT INTO {} (name) VALUES ($1) RETURNING id",
        taxonomy.table()
    ))
    .bind::<Text, _>(name)
    .get_result::<Id>(conn)
    .map(|row| row.id)
}

pub fn rename(conn: &mut AnyConnection, taxonomy: Taxonomy, id: i64, name: &str) -> QueryResult<bool> {
    diesel::sql_query(format!("UPDATE {} SET name = $1 WHERE id = $2", taxonomy.table()))
        .bind::<Text, _>(name)
        .bind::<BigInt, _>(id)
        .execute(conn)
        .map(|n| n == 1)
}

pub fn delete_name(conn: &mut AnyConnection, taxonomy: Taxonomy, id: i64) -> QueryResult<bool> {
    diesel::sql_query(format!("DELETE FROM {} WHERE id = $1", taxonomy.table()))
        .bind::<BigInt, _>(id)
        .execute(conn)
        .map(|n| n == 1)
}
