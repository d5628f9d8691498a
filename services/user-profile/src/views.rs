//! What the API answers: the owner's full profile, the public subset anyone signed in sees,
//! and seed 003's `user_info` document.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::ProfileRow;

fn iso(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn sports(row: &ProfileRow) -> Vec<String> {
    row.sports.split_ascii_whitespace().map(str::to_owned).collect()
}

/// The caller's own profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub id: String,
    pub username: String,
    /// Only for tokens with the `email` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// female, male, non_binary or unspecified.
    pub gender: Option<String>,
    /// ISO 8601 date, YYYY-MM-DD.
    pub birth_date: Option<String>,
    /// URL of the profile picture.
    pub picture: Option<String>,
    /// URL of the cover image.
    pub cover: Option<String>,
    /// single, in_a_relationship, engaged, married, civil_union, separated, divorced, widowed, complicated.
    pub relationship: Option<String>,
    pub biography: Option<String>,
    pub website: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub nationality: Option<String>,
    /// E.164, for SMS notifications from the providers the user authorized; only for tokens
    /// with the `phone` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Codes from GET /sports.
    pub sports: Vec<String>,
    pub verified: bool,
    /// ISO 8601.
    pub registered_at: String,
    /// ISO 8601.
    pub updated_at: String,
}

impl Profile {
    pub fn of(row: &ProfileRow, with_email: bool, with_phone: bool) -> Self {
        Self {
            id: row.user_id.to_string(),
            username: row.username.clone(),
            email: with_email.then(|| row.email.clone()),
            first_name: row.first_name.clone(),
            last_name: row.last_name.clone(),
            gender: row.gender.clone(),
            birth_date: row.birth_date.clone(),
            picture: row.picture.clone(),
            cover: row.cover.clone(),
            relationship: row.relationship.clone(),
            biography: row.biography.clone(),
            website: row.website.clone(),
            nationality: row.nationality.clone(),
            phone: row.phone.clone().filter(|_| with_phone),
            sports: sports(row),
            verified: row.verified,
            registered_at: iso(row.registered_at),
            updated_at: iso(row.updated_at),
        }
    }
}

/// What any signed-in caller may see of a user: no e-mail, birth date, gender or relationship.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicProfile {
    pub id: String,
    pub username: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub picture: Option<String>,
    pub cover: Option<String>,
    pub biography: Option<String>,
    pub website: Option<String>,
    pub nationality: Option<String>,
    pub sports: Vec<String>,
    pub verified: bool,
}

impl From<&ProfileRow> for PublicProfile {
    fn from(row: &ProfileRow) -> Self {
        Self {
            id: row.user_id.to_string(),
            username: row.username.clone(),
            first_name: row.first_name.clone(),
            last_name: row.last_name.clone(),
            picture: row.picture.clone(),
            cover: row.cover.clone(),
            biography: row.biography.clone(),
            website: row.website.clone(),
            nationality: row.nationality.clone(),
            sports: sports(row),
            verified: row.verified,
        }
    }
}

/// Seed 003's document: `{"user_info": {…}}`, every value a string, `""` when unset.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfoDocument {
    pub user_info: UserInfo,
}

/// Every key of seed 003's document is always present, so its clients find what they
/// expect; a value the token's scopes do not cover is withheld as `""`: `user_email` needs
/// `email`, every other field but `user_id` needs `profile`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct UserInfo {
    pub user_id: String,
    pub user_name: String,
    pub user_email: String,
    pub user_firstname: String,
    pub user_lastname: String,
    pub user_gender: String,
    /// YYYY-MM-DD.
    pub user_birthdate: String,
    pub user_picture: String,
    pub user_cover: String,
    /// ISO 8601 registration time.
    pub user_registered: String,
    /// "1" when verified, "0" otherwise.
    pub user_verified: String,
    pub user_relationship: String,
    pub user_biography: String,
    pub user_website: String,
}

impl UserInfo {
    pub fn of(row: &ProfileRow, profile_scope: bool, email_scope: bool) -> Self {
        let mut info = Self {
            user_id: row.user_id.to_string(),
            ..Self::default()
        };
        if email_scope {
            info.user_email = row.email.clone();
        }
        if profile_scope {
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            info.user_name = row.username.clone();
            info.user_firstname = text(&row.first_name);
            info.user_lastname = text(&row.last_name);
            info.user_gender = text(&row.gender);
            info.user_birthdate = text(&row.birth_date);
            info.user_picture = text(&row.picture);
            info.user_cover = text(&row.cover);
            info.user_registered = iso(row.registered_at);
            info.user_verified = if row.verified { "1" } else { "0" }.to_owned();
            info.user_relationship = text(&row.relationship);
            info.user_biography = text(&row.biography);
            info.user_website = text(&row.website);
        }
        info
    }
}
