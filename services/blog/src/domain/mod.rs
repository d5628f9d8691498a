//! Request bodies and query parameters, parsed once at the edge: a value past this module is
//! valid. Every refusal names its field.

pub mod writes;

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

pub use values::Invalid;

fn invalid(field: &str, reason: impl Into<String>) -> Invalid {
    Invalid::new(field, reason)
}

/// Trimmed text of 1 to `max` characters; line breaks and tabs only where `multiline`.
pub fn text(field: &'static str, value: &str, max: usize, multiline: bool) -> Result<String, Invalid> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    let length = value.chars().count();
    if length > max {
        return Err(invalid(
            field,
            format!("is {length} characters; at most {max} are allowed"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && LINE_BREAKS.contains(c)))
    {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

pub const MAX_TITLE: usize = 200;
const MAX_CATEGORY: usize = 64;
/// Control characters `text` takes in multi-line fields.
const LINE_BREAKS: &str = "\n\r\t";

/// What `text(_, _, max, multiline)` accepts, for the API document.
pub fn text_schema(max: usize, multiline: bool) -> serde_json::Value {
    values::text::text_schema(max, if multiline { LINE_BREAKS } else { "" })
}

/// What `locale_name` accepts.
pub const LOCALE_PATTERN: &str = "^[a-z]{2,3}(-[A-Z]{2})?$";

/// What `category_name` accepts.
pub fn category_schema() -> serde_json::Value {
    text_schema(MAX_CATEGORY, false)
}

/// An article as its author sends it (seed 002's field names).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleInput {
    pub title: String,
    pub content: String,
    /// A locale id (GET /blog/locales).
    pub locales_id: i64,
    /// A category id (GET /blog/categories).
    pub blog_category_id: i64,
}

/// A change to an article: the fields sent replace the stored ones.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticlePatch {
    pub title: Option<String>,
    pub content: Option<String>,
    pub locales_id: Option<i64>,
    pub blog_category_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentInput {
    pub content: String,
}

/// A locale or category name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameInput {
    pub name: String,
}

/// A locale name: a BCP 47 language tag of the simple kind, `fr` or `pt-BR`.
pub fn locale_name(value: &str) -> Result<String, Invalid> {
    let (language, region) = value.split_once('-').map_or((value, None), |(l, r)| (l, Some(r)));
    let language_ok = (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_lowercase());
    let region_ok = region.is_none_or(|r| r.len() == 2 && r.chars().all(|c| c.is_ascii_uppercase()));
    if language_ok && region_ok {
        Ok(value.to_owned())
    } else {
        Err(invalid("name", "must be a language tag such as `fr` or `pt-BR`"))
    }
}

pub fn category_name(value: &str) -> Result<String, Invalid> {
    text("name", value, MAX_CATEGORY, false)
}

/// `GET /blog`'s query: a page, and filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// 1-based page number (default 1).
    #[param(minimum = 1, maximum = 4294967295.0)]
    pub page: Option<u32>,
    /// Articles per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub size: Option<u32>,
    /// Category id.
    pub category: Option<i64>,
    /// Locale id or name (`fr`).
    pub locale: Option<String>,
    /// Account id of the author.
    pub author: Option<i64>,
    /// Words to find in titles and contents (case-insensitive).
    #[param(max_length = 100)]
    pub q: Option<String>,
}

/// `q` as a `LIKE` pattern: lower case, its own `%`, `_` and `\` escaped.
pub fn search_pattern(q: &str) -> Result<String, Invalid> {
    let q = q.trim();
    if q.chars().count() > 100 {
        return Err(invalid("q", "at most 100 characters"));
    }
    if q.is_empty() {
        return Ok(String::new());
    }
    let mut pattern = String::from("%");
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Ok(pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_bounded_and_trimmed() {
        assert_eq!(text("title", "  Hello ", 10, false), Ok("Hello".into()));
        assert_eq!(
            text("title", "   ", 10, false).map_err(|e| e.field),
            Err("title".to_owned())
        );
        assert!(text("title", &"é".repeat(11), 10, false).is_err());
        assert!(text("title", "a\nb", 10, false).is_err() && text("content", "a\nb", 10, true).is_ok());
    }

    #[test]
    fn locale_names_are_language_tags() {
        for ok in ["fr", "en", "pt-BR", "ast"] {
            assert!(locale_name(ok).is_ok(), "{ok}");
        }
        for bad in ["FR", "f", "french", "pt-br", "pt_BR", ""] {
            assert!(locale_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_patterns_escape_like_wildcards() {
        assert_eq!(search_pattern(" Rust "), Ok("%rust%".into()));
        assert_eq!(search_pattern("100%_\\"), Ok("%100\\%\\_\\\\%".into()));
        assert_eq!(search_pattern(""), Ok(String::new()));
    }
}
