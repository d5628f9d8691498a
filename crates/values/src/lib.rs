//! Values parsed once at the edge. A parser refuses with an [`Invalid`] naming its field; a
//! request with several fields reports **every** bad one ([`FieldErrors`], answered 422 with
//! the list), so a client fixes its request in one round, not one field at a time.

pub mod text;

use serde::Serialize;
use utoipa::ToSchema;

/// One field that did not parse, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    /// The field as the client named it (`title`, `sports[2]`).
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Every field of one request that did not parse; never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct FieldErrors(Vec<Invalid>);

impl FieldErrors {
    /// The value, or `None` with its error (or errors) recorded.
    pub fn keep<T, E: Into<FieldErrors>>(&mut self, parsed: Result<T, E>) -> Option<T> {
        parsed.map_err(|e| self.0.extend(e.into().0)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, error: Invalid) {
        self.0.push(error);
    }

    /// `Err(self)` when a field failed.
    pub fn check(self) -> Result<(), Self> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Invalid> {
        self.0.iter()
    }
}

impl From<Invalid> for FieldErrors {
    fn from(error: Invalid) -> Self {
        Self(vec![error])
    }
}

/// Parses every field, then answers all of them or every error:
/// `let (title, content) = every_field!(title = text(..), content = text(..))?;`
#[macro_export]
macro_rules! every_field {
    ($($name:ident = $parsed:expr),+ $(,)?) => {{
        let mut errors = $crate::FieldErrors::default();
        $(let $name = errors.keep($parsed);)+
        match ($($name,)+) {
            ($(Some($name),)+) => Ok(($($name,)+)),
            _ => Err(errors),
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positive(field: &str, n: i64) -> Result<i64, Invalid> {
        if n > 0 {
            Ok(n)
        } else {
            Err(Invalid::new(field, "must be positive"))
        }
    }

    #[test]
    fn every_bad_field_is_reported_and_good_ones_come_back() {
        let good: Result<(i64, i64), FieldErrors> = every_field!(a = positive("a", 1), b = positive("b", 2));
        assert_eq!(good, Ok((1, 2)));
        let bad: Result<(i64, i64, i64), FieldErrors> =
            every_field!(a = positive("a", 0), b = positive("b", 2), c = positive("c", -1));
        let errors = bad.unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["a", "c"]);
        assert_eq!(errors.to_string(), "a: must be positive; c: must be positive");
        assert!(FieldErrors::default().check().is_ok());
    }
}
