//! Profile fields parsed once at the edge: past [`ProfilePatch::parse`] nothing is invalid.

pub mod countries;
pub mod profiles;
pub mod sports;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde_json::{Map, Value};

pub use values::{FieldErrors, Invalid};

fn invalid(field: &str, reason: impl Into<String>) -> Invalid {
    Invalid::new(field, reason)
}

/// A text field: trimmed, 1 to `max` characters, no control characters.
fn text(field: &str, value: &str, max: usize, multiline: bool) -> Result<String, Invalid> {
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(field, "must not be empty (send null to clear it)"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && LINE_BREAKS.contains(c)))
    {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<String, Invalid> {
    if allowed.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(invalid(field, format!("must be one of {}", allowed.join(", "))))
    }
}

pub const GENDERS: &[&str] = &["female", "male", "non_binary", "unspecified"];
pub const RELATIONSHIPS: &[&str] = &[
    "single",
    "in_a_relationship",
    "engaged",
    "married",
    "civil_union",
    "separated",
    "divorced",
    "widowed",
    "complicated",
];
const MAX_SPORTS: usize = 30;
const MAX_NAME: usize = 100;
const MAX_BIOGRAPHY: usize = 2000;
const MAX_URL: usize = 2048;
/// Control characters a multi-line field takes.
const LINE_BREAKS: &str = "\n\t";

/// An ISO 8601 calendar date (`YYYY-MM-DD`) from 1900 to today.
fn birth_date(field: &str, value: &str, today: NaiveDate) -> Result<String, Invalid> {
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .filter(|_| value.len() == 10)
        .ok_or_else(|| invalid(field, "must be an ISO 8601 date, YYYY-MM-DD"))?;
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    if date < earliest || date > today {
        return Err(invalid(field, "must be between 1900-01-01 and today"));
    }
    Ok(date.format("%Y-%m-%d").to_string())
}

/// An absolute `http(s)` URL of at most 2,048 characters.
fn web_url(field: &str, value: &str) -> Result<String, Invalid> {
    if value.len() > MAX_URL {
        return Err(invalid(field, format!("must be at most {MAX_URL} characters")));
    }
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url.to_string()),
        _ => Err(invalid(field, "must be an absolute http or https URL")),
    }
}

/// An `enum` of `choices` and `null`.
fn or_null<S: AsRef<str>>(choices: &[S]) -> Vec<Value> {
    choices
        .iter()
        .map(|c| Value::from(c.as_ref()))
        .chain([Value::Null])
        .collect()
}

/// What `phone` accepts: `+`, a first digit that is not 0, 8 to 15 digits in all, with the
/// separators people write anywhere.
const PHONE_PATTERN: &str = r"^[ .()-]*\+[ .()-]*[1-9]([ .()-]*[0-9]){7,14}[ .()-]*$";

/// E.164: `+`, a country code and the number, 8 to 15 digits in all; spaces, dots, dashes and
/// brackets people write are dropped.
fn phone(field: &str, value: &str) -> Result<String, Invalid> {
    let compact: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or("");
    let well_formed =
        (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0');
    if well_formed {
        Ok(compact)
    } else {
        Err(invalid(
            field,
            "must be an international number in E.164 form (+5491155550000)",
        ))
    }
}

fn nationality(field: &str, value: &str) -> Result<String, Invalid> {
    let code = value.to_ascii_uppercase();
    if countries::is_assigned(&code) {
        Ok(code)
    } else {
        Err(invalid(field, "must be an ISO 3166-1 alpha-2 country code (FR, DE, …)"))
    }
}

fn sport_codes(field: &str, value: &Value) -> Result<String, Invalid> {
    let list = value
        .as_array()
        .ok_or_else(|| invalid(field, "must be an array of sport codes (GET /sports)"))?;
    if list.len() > MAX_SPORTS {
        return Err(invalid(field, format!("at most {MAX_SPORTS} sports")));
    }
    let mut codes = BTreeSet::new();
    for (i, code) in list.iter().enumerate() {
        match code.as_str() {
            Some(code) if sports::is_known(code) => codes.insert(code),
            _ => return Err(invalid(&format!("{field}[{i}]"), "is not a sport code of GET /sports")),
        };
    }
    Ok(codes.into_iter().collect::<Vec<_>>().join(" "))
}

/// A change to a profile (JSON merge patch, RFC 7396): a field absent stays, `null` clears
/// it, a value replaces it. Every value is normalised (trimmed, upper-case country code, …).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProfilePatch {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub gender: Option<Option<String>>,
    pub birth_date: Option<Option<String>>,
    pub picture: Option<Option<String>>,
    pub cover: Option<Option<String>>,
    pub relationship: Option<Option<String>>,
    pub biography: Option<Option<String>>,
    pub website: Option<Option<String>>,
    pub nationality: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    /// Space-separated codes; `Some(String::new())` clears them.
    pub sports: Option<String>,
}

impl ProfilePatch {
    /// The patch, or every field that did not parse.
    pub fn parse(body: &Map<String, Value>, today: NaiveDate) -> Result<Self, FieldErrors> {
        let mut patch = Self::default();
        let mut errors = FieldErrors::default();
        for (field, value) in body {
            errors.keep(patch.set(field, value, today));
        }
        errors.check().map(|()| patch)
    }

    fn set(&mut self, f: &str, value: &Value, today: NaiveDate) -> Result<(), Invalid> {
        if f == "sports" {
            self.sports = Some(if value.is_null() {
                String::new()
            } else {
                sport_codes(f, value)?
            });
            return Ok(());
        }
        let slot = match f {
            "first_name" => &mut self.first_name,
            "last_name" => &mut self.last_name,
            "gender" => &mut self.gender,
            "birth_date" => &mut self.birth_date,
            "picture" => &mut self.picture,
            "cover" => &mut self.cover,
            "relationship" => &mut self.relationship,
            "biography" => &mut self.biography,
            "website" => &mut self.website,
            "nationality" => &mut self.nationality,
            "phone" => &mut self.phone,
            "id" | "username" | "email" | "verified" | "registered_at" | "updated_at" => {
                return Err(invalid(f, "cannot be changed here"));
            }
            _ => return Err(invalid(f, "is not a profile field")),
        };
        let Some(raw) = value.as_str() else {
            if value.is_null() {
                *slot = Some(None);
                return Ok(());
            }
            return Err(invalid(f, "must be a string or null"));
        };
        let parsed = match f {
            "first_name" | "last_name" => text(f, raw, MAX_NAME, false)?,
            "gender" => one_of(f, raw, GENDERS)?,
            "birth_date" => birth_date(f, raw, today)?,
            "picture" | "cover" | "website" => web_url(f, raw)?,
            "relationship" => one_of(f, raw, RELATIONSHIPS)?,
            "biography" => text(f, raw, MAX_BIOGRAPHY, true)?,
            "phone" => phone(f, raw)?,
            _ => nationality(f, raw)?,
        };
        *slot = Some(Some(parsed));
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// What [`Self::parse`] accepts, as the JSON Schema of the request body: every field
    /// optional, `null` clearing it, no other field.
    pub fn schema() -> Value {
        use serde_json::json;
        use values::text::nullable;
        let text = |max, allowed| nullable(values::text::text_schema(max, allowed));
        let url = nullable(
            json!({"type": "string", "maxLength": MAX_URL, "pattern": r"^[hH][tT][tT][pP][sS]?://[^\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000/?#]+([/?#][^\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"}),
        );
        let countries: Vec<String> = countries::all()
            .map(str::to_owned)
            .chain(countries::all().map(str::to_ascii_lowercase))
            .collect();
        let sports: Vec<&str> = sports::SPORTS.iter().map(|s| s.code).collect();
        json!({
            "type": "object",
            "additionalProperties": false,
            "description": "A JSON merge patch (RFC 7396): a field absent stays, null clears it.",
            "properties": {
                "first_name": text(MAX_NAME, ""),
                "last_name": text(MAX_NAME, ""),
                "gender": {"enum": or_null(GENDERS)},
                "birth_date": nullable(json!({"type": "string", "format": "date", "description": "YYYY-MM-DD, from 1900-01-01 to today"})),
                "picture": url.clone(),
                "cover": url.clone(),
                "relationship": {"enum": or_null(RELATIONSHIPS)},
                "biography": text(MAX_BIOGRAPHY, LINE_BREAKS),
                "website": url,
                "nationality": {"enum": or_null(&countries), "description": "ISO 3166-1 alpha-2, any case"},
                "phone": nullable(json!({"type": "string", "pattern": PHONE_PATTERN, "description": "E.164 (+5491155550000); spaces, dots, dashes and brackets are dropped"})),
                "sports": nullable(json!({"type": "array", "maxItems": MAX_SPORTS, "items": {"enum": sports}})),
            }
        })
    }

    /// Whether the change touches what other services copy (the blog's author data).
    pub fn changes_public_identity(&self) -> bool {
        self.picture.is_some()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<ProfilePatch, FieldErrors> {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap_or_default();
        ProfilePatch::parse(body.as_object().unwrap_or(&Map::new()), today)
    }

    fn field_of(body: Value) -> String {
        parse(body)
            .err()
            .and_then(|e| e.iter().next().map(|i| i.field.clone()))
            .unwrap_or_default()
    }

    #[test]
    fn values_are_normalised() {
        let patch = parse(
            json!({"first_name": "  Ana ", "nationality": "fr", "sports": ["yoga", "tennis", "yoga"],
            "birth_date": "1990-02-28", "website": "https://ana.example"}),
        );
        let patch = patch.unwrap_or_default();
        assert_eq!(patch.first_name, Some(Some("Ana".into())));
        let phone = parse(json!({"phone": "+54 9 11 5555-0000"})).unwrap();
        assert_eq!(phone.phone, Some(Some("+5491155550000".into())));
        for bad in ["5491155550000", "+0123456789", "+12", "+54abc11555"] {
            assert_eq!(field_of(json!({"phone": bad})), "phone", "{bad}");
        }
        assert_eq!(patch.nationality, Some(Some("FR".into())));
        assert_eq!(patch.sports.as_deref(), Some("tennis yoga"));
        assert_eq!(patch.website, Some(Some("https://ana.example/".into())));
        assert_eq!(parse(json!({"cover": null})).ok().and_then(|p| p.cover), Some(None));
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = parse(json!({"nationality": "XX", "first_name": "Ana", "gender": "robot"})).unwrap_err();
        let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["gender", "nationality"]);
    }

    #[test]
    fn each_bad_value_names_its_field() {
        assert_eq!(field_of(json!({"nationality": "XX"})), "nationality");
        assert_eq!(field_of(json!({"nationality": "FRA"})), "nationality");
        assert_eq!(field_of(json!({"birth_date": "24/11/1990"})), "birth_date");
        assert_eq!(field_of(json!({"birth_date": "1990-2-3"})), "birth_date");
        assert_eq!(field_of(json!({"birth_date": "2030-01-01"})), "birth_date");
        assert_eq!(field_of(json!({"birth_date": "1990-02-30"})), "birth_date");
        assert_eq!(field_of(json!({"sports": ["tennis", "quidditch"]})), "sports[1]");
        assert_eq!(field_of(json!({"sports": "tennis"})), "sports");
        assert_eq!(field_of(json!({"biography": "x".repeat(2001)})), "biography");
        assert_eq!(field_of(json!({"first_name": ""})), "first_name");
        assert_eq!(field_of(json!({"gender": "robot"})), "gender");
        assert_eq!(field_of(json!({"website": "javascript:alert(1)"})), "website");
        assert_eq!(field_of(json!({"picture": 3})), "picture");
        assert_eq!(field_of(json!({"email": "a@b.c"})), "email");
        assert_eq!(field_of(json!({"favourite_colour": "blue"})), "favourite_colour");
    }
}
