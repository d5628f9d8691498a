//! The blog: articles, comments, locales and categories, with seed 002's `GET /blog` document
//! exactly. Authors are a local projection of users kept from `user.*` events; every change
//! publishes its event (`article.published`, `article.updated`, `article.deleted`,
//! `comment.created`) through the outbox.

mod consumers;
pub mod domain;
mod http;
mod names;
mod state;
pub mod store;
mod views;

use std::sync::Arc;

use actix_web::web;
use diesel_migrations::embed_migrations;
use events::Subscription;
use http_kit::openapi::BearerScheme;
use http_kit::server::{self, HttpSettings, Service};
use identity::IdentitySettings;
use runtime::{BusSettings, DatabaseSettings, Deps, ServiceSettings, StartError, Started};
use serde::Deserialize;
use settings::{SettingsError, Validate};
use storage::{Database, Migrations};
use utoipa::OpenApi;

pub const NAME: &str = "blog";
pub const ENV_PREFIX: &str = "BLOG_";
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// CloudEvents `source` of this service's events.
pub const SOURCE: &str = "/blog";

// Ids are serial integers (seed 002), spelled differently by each dialect.
pub static MIGRATIONS: Migrations = Migrations {
    postgres: embed_migrations!("migrations/postgres"),
    sqlite: embed_migrations!("migrations/sqlite"),
};

#[derive(Debug, Clone, Deserialize)]
pub struct BlogSettings {
    pub default_avatar: String,
    pub comments_per_article: i64,
    pub max_content_chars: usize,
    pub max_comment_chars: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpSettings,
    pub bus: BusSettings,
    pub database: DatabaseSettings,
    pub identity: IdentitySettings,
    pub blog: BlogSettings,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.http.validate("http")?;
        self.bus.validate()?;
        self.database.validate()?;
        self.identity.validate()?;
        if !(0..=100).contains(&self.blog.comments_per_article) {
            return Err(settings::rule("blog.comments_per_article", "must be between 0 and 100"));
        }
        if self.blog.max_content_chars == 0 || self.blog.max_comment_chars == 0 {
            return Err(settings::rule(
                "blog.max_content_chars",
                "content limits must be more than 0",
            ));
        }
        // A character takes up to 4 bytes in UTF-8 and a few more escaped in JSON.
        if self.blog.max_content_chars > self.http.body_limit {
            return Err(settings::rule(
                "blog.max_content_chars",
                "must fit in http.body_limit (bytes); raise the body limit first",
            ));
        }
        Ok(())
    }
}

impl ServiceSettings for Settings {
    fn bus(&self) -> &BusSettings {
        &self.bus
    }

    fn http(&self) -> &HttpSettings {
        &self.http
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Partner API platform: blog", description = "Articles, comments, locales and categories; seed 002's GET /blog."),
    paths(
        http::feed::feed,
        http::articles::create, http::articles::show, http::articles::update, http::articles::delete,
        http::comments::list, http::comments::create, http::comments::update, http::comments::delete,
        http::taxonomy::list, http::taxonomy::create, http::taxonomy::rename, http::taxonomy::delete,
    ),
    tags((name = "seed", description = "Seed 002's endpoint, exact shape"), (name = "articles"), (name = "comments"), (name = "locales and categories")),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

/// The blog's API document: text limits as its settings and parsers have them, and `/blog/{list}`
/// as the two lists it is (`/blog/locales`, `/blog/categories`), each with the names it takes.
fn document(settings: &BlogSettings) -> serde_json::Value {
    use http_kit::openapi::describe;
    let mut doc = http_kit::openapi::complete(ApiDoc::openapi());
    describe(
        &mut doc,
        "ArticleInput",
        "title",
        domain::text_schema(domain::MAX_TITLE, false),
    );
    describe(
        &mut doc,
        "ArticleInput",
        "content",
        domain::text_schema(settings.max_content_chars, true),
    );
    // In a patch, `null` leaves the field as it is.
    let nullable = values::text::nullable;
    describe(
        &mut doc,
        "ArticlePatch",
        "title",
        nullable(domain::text_schema(domain::MAX_TITLE, false)),
    );
    describe(
        &mut doc,
        "ArticlePatch",
        "content",
        nullable(domain::text_schema(settings.max_content_chars, true)),
    );
    describe(
        &mut doc,
        "CommentInput",
        "content",
        domain::text_schema(settings.max_comment_chars, true),
    );
    let locale = serde_json::json!({"type": "string", "pattern": domain::LOCALE_PATTERN});
    split_taxonomies(
        &mut doc,
        &[
            ("locales", "Locales", "Locale", locale),
            ("categories", "Categories", "Category", domain::category_schema()),
        ],
    );
    doc
}

/// Replaces the `{list}` paths by one path per list, with operation ids and request bodies of
/// their own.
/// `lists`: each list's path segment, its names in operation ids (plural, singular) and the
/// schema of the names it takes.
fn split_taxonomies(doc: &mut serde_json::Value, lists: &[(&str, &str, &str, serde_json::Value)]) {
    use serde_json::json;
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for template in ["/blog/{list}", "/blog/{list}/{id}"] {
        let Some(item) = paths.remove(template) else { continue };
        for (list, plural, singular, name) in lists {
            let mut item = item.clone();
            for (_, operation) in item.as_object_mut().into_iter().flatten() {
                if let Some(parameters) = operation["parameters"].as_array_mut() {
                    parameters.retain(|p| p["name"] != "list");
                }
                let id = operation["operationId"].as_str().unwrap_or_default();
                operation["operationId"] = json!(
                    id.replace("LocalesOrCategories", plural)
                        .replace("LocaleOrCategory", singular)
                );
                if operation.get("requestBody").is_some() {
                    operation["requestBody"]["content"]["application/json"]["schema"] = json!({
                        "type": "object", "additionalProperties": false, "required": ["name"],
                        "properties": {"name": name},
                    });
                }
            }
            paths.insert(template.replace("{list}", list), item);
        }
    }
}

const MIGRATION_SETS: [&Migrations; 2] = [&events::MIGRATIONS, &MIGRATIONS];

pub async fn start(settings: Settings, deps: Deps) -> Result<Started, StartError> {
    let db = runtime::database(&settings.database, &MIGRATION_SETS).await?;
    let (outbox, relay) = runtime::outbox_relay(&db, &deps);
    let store = store::Store::new(db.clone());
    let state = Arc::new(state::Blog {
        store: store.clone(),
        outbox,
        names: names::Names::load(store).await?,
        settings: settings.blog.clone(),
    });
    let consumer = deps
        .bus
        .subscribe(
            Subscription::new(NAME, &consumers::BINDINGS),
            Arc::new(consumers::Authors(state.clone())),
            deps.shutdown.clone(),
        )
        .await?;
    let names = state.clone();
    let refresh = runtime::every(std::time::Duration::from_secs(10), deps.shutdown.clone(), move || {
        let names = names.clone();
        async move {
            if let Err(error) = names.names.refresh().await {
                tracing::warn!(%error, "locale and category names not refreshed");
            }
        }
    });
    let data = web::Data::from(state);
    let identity = web::Data::new(settings.identity.clone());
    let service = Service {
        name: NAME,
        openapi: document(&settings.blog),
        readiness: runtime::readiness(&db, &deps),
        routes: Arc::new(move |cfg| {
            cfg.app_data(data.clone()).app_data(identity.clone());
            http::routes(cfg);
        }),
        metrics: vec![runtime::statement_metrics(&db)],
    };
    let http = server::start(service, &settings.http, deps.shutdown.clone())?;
    Ok(Started {
        name: NAME,
        http,
        tasks: vec![relay, consumer, refresh],
    })
}

/// Opens and migrates the database, for `blog migrate` (a Helm hook in Kubernetes).
pub async fn migrate(settings: &Settings) -> Result<Database, StartError> {
    Ok(runtime::database(&settings.database, &MIGRATION_SETS).await?)
}
