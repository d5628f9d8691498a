//! The platform's identifiers, one type each, so that a user's id is never passed where a
//! client's is expected and a token that acts for a client alone cannot be read as a user's.
//! Each keeps the format it already has on the wire: user, client and token ids are opaque
//! text (auth mints UUIDs; configured clients have names such as `gateway`), articles and
//! comments are numbered.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest text id accepted: far above a UUID (36), short enough for any index or header.
pub const MAX_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("{0} is longer than {MAX_LEN} bytes")]
    TooLong(&'static str),
    #[error("{0} has a character that is not printable ASCII (spaces and controls included)")]
    BadCharacter(&'static str),
    #[error("{0} is not a positive number")]
    NotPositive(&'static str),
}

/// A text id written in the code, such as the owner of the platform's own clients: checked
/// when the code compiles, so it cannot fail when it runs. `ids::literal!(UserId, "platform")`.
#[macro_export]
macro_rules! literal {
    ($id:ident, $raw:literal) => {{
        const _: () = assert!($crate::check_text("an id", $raw).is_ok(), "not a valid text id");
        $crate::$id::checked_at_compile_time($raw)
    }};
}

/// Text ids are printable ASCII without spaces: they travel in headers, paths and JWTs.
/// `const`, so that [`literal!`] applies the same rule when the code compiles.
#[doc(hidden)]
pub const fn check_text(what: &'static str, raw: &str) -> Result<(), IdError> {
    let bytes = raw.as_bytes();
    if bytes.is_empty() {
        return Err(IdError::Empty(what));
    }
    if bytes.len() > MAX_LEN {
        return Err(IdError::TooLong(what));
    }
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_graphic() {
            return Err(IdError::BadCharacter(what));
        }
        i += 1;
    }
    Ok(())
}

/// Stores an id as its inner value (`Text` or `BigInt`) on any diesel backend; a stored value
/// parses like any other, so a row that does not is an error, not a panic.
macro_rules! stored_as {
    ($name:ident, $inner:ty, $sql:ident, $parse:path) => {
        #[cfg(feature = "diesel")]
        impl<DB: diesel::backend::Backend> diesel::serialize::ToSql<diesel::sql_types::$sql, DB> for $name
        where
            $inner: diesel::serialize::ToSql<diesel::sql_types::$sql, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, DB>) -> diesel::serialize::Result {
                self.0.to_sql(out)
            }
        }

        #[cfg(feature = "diesel")]
        impl<DB: diesel::backend::Backend> diesel::deserialize::FromSql<diesel::sql_types::$sql, DB> for $name
        where
            $inner: diesel::deserialize::FromSql<diesel::sql_types::$sql, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                Ok($parse(<$inner>::from_sql(bytes)?)?)
            }
        }
    };
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $minted:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[cfg_attr(feature = "diesel", derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow))]
        #[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::Text))]
        #[serde(transparent)]
        pub struct $name(String);

        stored_as!($name, String, Text, Self::parse);

        impl $name {
            /// For [`literal!`] only, which has checked `raw` when it was compiled.
            #[doc(hidden)]
            pub fn checked_at_compile_time(raw: &'static str) -> Self {
                Self(raw.to_owned())
            }

            /// A new id, in the form auth mints them (time-ordered UUIDs).
            pub fn mint() -> Self {
                let minted: fn(uuid::Uuid) -> String = $minted;
                Self(minted(uuid::Uuid::now_v7()))
            }

            pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
                let raw = raw.into();
                check_text($what, &raw)?;
                Ok(Self(raw))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(raw: &str) -> Result<Self, IdError> {
                Self::parse(raw)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(raw: String) -> Result<Self, IdError> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        /// Reads as the text it is wherever text is taken (headers, keys, queries); where an id
        /// is required, only this type will do.
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::parse(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_LEN))
                    .pattern(Some("^[!-~]+$"))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

macro_rules! number_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[cfg_attr(feature = "diesel", derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow))]
        #[cfg_attr(feature = "diesel", diesel(sql_type = diesel::sql_types::BigInt))]
        #[serde(transparent)]
        pub struct $name(i64);

        stored_as!($name, i64, BigInt, Self::new);

        impl $name {
            pub fn new(raw: i64) -> Result<Self, IdError> {
                if raw > 0 { Ok(Self(raw)) } else { Err(IdError::NotPositive($what)) }
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(raw: &str) -> Result<Self, IdError> {
                raw.parse().map_err(|_| IdError::NotPositive($what)).and_then(Self::new)
            }
        }

        impl TryFrom<i64> for $name {
            type Error = IdError;

            fn try_from(raw: i64) -> Result<Self, IdError> {
                Self::new(raw)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::new(i64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .minimum(Some(1))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

text_id!(
    /// A user of the platform, as auth assigned it (a UUID for those who signed up).
    UserId,
    "a user id",
    |u| u.to_string()
);
text_id!(
    /// An application (OAuth2 client): a UUID for registered ones, a name for configured ones.
    ClientId,
    "a client id",
    |u| u.simple().to_string()
);
text_id!(
    /// An access token's `jti`.
    Jti,
    "a token id",
    |u| u.to_string()
);
number_id!(
    /// A blog article.
    ArticleId,
    "an article id"
);
number_id!(
    /// A comment on an article.
    CommentId,
    "a comment id"
);

/// What a token revocation covers (`token.revoked`, the revocation lists). Everything but one token covers those issued until the event's
/// time, so a token issued afterwards is good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// One token; `user` is the one it was issued for (none for a client's own token).
    Token {
        jti: Jti,
        client_id: ClientId,
        user: Option<UserId>,
    },
    /// Every token of the application (it was deleted).
    Client(ClientId),
    /// Every token the application holds for the user (the user withdrew their consent).
    Grant { client_id: ClientId, user: UserId },
    /// Every token of the user (the account was deleted).
    User(UserId),
}

/// RFC 9068's `sub`: the user a token acts for, or its client for a client's own token.
pub fn subject<'a>(user: Option<&'a UserId>, client: &'a ClientId) -> &'a str {
    user.map_or(client.as_str(), UserId::as_str)
}

/// The user a `sub` names beside its `client_id`: none when it is the client itself.
pub fn user_of(subject: &str, client: &ClientId) -> Result<Option<UserId>, IdError> {
    (client != subject).then(|| UserId::parse(subject)).transpose()
}

/// For settings where an empty value means "none" (environment variables cannot be unset in
/// every deployment tool): `#[serde(deserialize_with = "ids::empty_is_none")]`.
pub fn empty_is_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let raw = Option::<String>::deserialize(d)?.filter(|s| !s.is_empty());
    raw.map(|s| s.parse().map_err(serde::de::Error::custom)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_ids_are_printable_ascii_within_the_limit() {
        assert_eq!(
            UserId::parse("0190c4a3-7e1d-7c2b-9d4e-5f6a7b8c9d0e")
                .unwrap()
                .as_str()
                .len(),
            36
        );
        assert_eq!(ClientId::parse("gateway").unwrap(), "gateway");
        assert_eq!(UserId::parse(""), Err(IdError::Empty("a user id")));
        assert_eq!(ClientId::parse("a b"), Err(IdError::BadCharacter("a client id")));
        assert_eq!(Jti::parse("é"), Err(IdError::BadCharacter("a token id")));
        assert_eq!(Jti::parse("x".repeat(MAX_LEN + 1)), Err(IdError::TooLong("a token id")));
        assert!(Jti::parse("x".repeat(MAX_LEN)).is_ok());
        assert_eq!(
            (UserId::mint().len(), ClientId::mint().len()),
            (36, 32),
            "their forms on the wire"
        );
        assert_ne!(Jti::mint(), Jti::mint());
    }

    #[test]
    fn literals_are_the_ids_they_spell() {
        assert_eq!(literal!(UserId, "platform"), UserId::parse("platform").unwrap());
        assert!(check_text("an id", "a b").is_err() && check_text("an id", "").is_err());
        assert!(check_text("an id", "gateway").is_ok());
    }

    #[test]
    fn ids_read_and_write_their_wire_form() {
        let user: UserId = serde_json::from_str("\"ana\"").unwrap();
        assert_eq!(serde_json::to_string(&user).unwrap(), "\"ana\"");
        assert!(serde_json::from_str::<ClientId>("\"\"").is_err());
        let article: ArticleId = serde_json::from_str("42").unwrap();
        assert_eq!((article.get(), article.to_string()), (42, "42".to_owned()));
        assert!(serde_json::from_str::<CommentId>("0").is_err());
        assert_eq!("7".parse::<ArticleId>().unwrap().get(), 7);
        assert!("-7".parse::<ArticleId>().is_err() && "x".parse::<CommentId>().is_err());
    }

    #[derive(Deserialize)]
    struct Optional {
        #[serde(default, deserialize_with = "empty_is_none")]
        client: Option<ClientId>,
    }

    #[test]
    fn an_empty_setting_is_none_and_a_bad_one_an_error() {
        let read = |json: &str| serde_json::from_str::<Optional>(json).map(|o| o.client);
        assert_eq!(read(r#"{"client":""}"#).unwrap(), None);
        assert_eq!(read("{}").unwrap(), None);
        assert_eq!(read(r#"{"client":"gateway"}"#).unwrap().unwrap(), "gateway");
        assert!(read(r#"{"client":"a b"}"#).is_err());
    }
}
