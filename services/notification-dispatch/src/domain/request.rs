//! Seed 004's `POST /Services` body, read as the seed writes it. The seed spells the same
//! field several ways (`title`, `Tittle`, `titulo`, `Titre`; `message`, `mensaje`; `channel`,
//! `Cannel`, `canal`), so keys are matched without case against each field's spellings; the
//! OpenAPI document gives the canonical (first) one. Every bad field is reported, named by its
//! canonical path (`parameters.notification.title`).

use ids::UserId;
use serde_json::{Map, Value};
use values::{FieldErrors, Invalid};

use super::picture::{self, Picture};
use super::{Channel, Kind, ServiceToken, qr};

pub const TITLE_MAX: usize = 32;
pub const MESSAGE_MAX: usize = 166;
const LINK_MAX: usize = 2048;
const REFERENCE_MAX: usize = 128;

/// Who asks and for which service: enough to authorize before judging the rest.
pub struct Head {
    pub provider_id: i64,
    pub service_token: ServiceToken,
    pub service_id: i32,
}

/// One thing to send (a `parameters` member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub kind: Kind,
    pub title: String,
    pub message: String,
    pub channel: Channel,
    pub link: Option<String>,
    pub picture: Option<Picture>,
    /// A ticket's or coupon's text, rendered as a QR image when sent.
    pub qr_code: Option<String>,
    /// Passes the user's quiet hours.
    pub urgent: bool,
}

/// Whom to notify with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub destination: UserId,
    pub contents: Vec<Content>,
    /// The provider's own reference: a repeated one is the same request (as `Idempotency-Key`).
    pub reference: Option<String>,
}

/// What a request parsed to; `errors` lists every field that did not.
pub struct Parsed {
    pub head: Option<Head>,
    pub body: Option<Body>,
    pub errors: FieldErrors,
}

const TOP: [&[&str]; 5] = [
    &["provider_id"],
    &["service_token"],
    &["service_id"],
    &["parameters"],
    &["reference"],
];
const PARAMETERS: [&[&str]; 5] = [
    &["destination"],
    &["notification", "notifications"],
    &["advertisement", "advertisements"],
    &["qr_code", "qrcode", "qrcodes"],
    &["micropayment", "micro_payment", "micropayments"],
];
const TITLE: &[&str] = &["title", "tittle", "titulo", "titre"];
const MESSAGE: &[&str] = &["message", "mensaje"];
const CHANNEL: &[&str] = &["channel", "cannel", "canal"];
const LINK: &[&str] = &["link", "enlace", "lien"];
const PICTURE: &[&str] = &["picture", "imagen", "image"];
const URGENT: &[&str] = &["urgent"];
const DATA: &[&str] = &["data", "code", "codigo"];

/// An object's members by field: each key matched (without case) to the field whose spellings
/// hold it; unknown keys and a field given twice are errors.
struct Fields<'a> {
    found: Vec<Option<&'a Value>>,
}

impl<'a> Fields<'a> {
    fn of(object: &'a Map<String, Value>, fields: &[&[&str]], path: &str, errors: &mut FieldErrors) -> Self {
        let mut found = vec![None; fields.len()];
        for (key, value) in object {
            let lower = key.to_lowercase();
            match fields.iter().position(|spellings| spellings.contains(&lower.as_str())) {
                Some(i) if found[i].is_some() => errors.push(Invalid::new(
                    join(path, fields[i][0]),
                    format!("given twice (`{key}` is another spelling of `{}`)", fields[i][0]),
                )),
                Some(i) => found[i] = Some(value),
                None => errors.push(Invalid::new(join(path, key), "unknown field")),
            }
        }
        Self { found }
    }

    fn get(&self, i: usize) -> Option<&'a Value> {
        self.found[i].filter(|v| !v.is_null())
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn required<'v>(value: Option<&'v Value>, field: &str) -> Result<&'v Value, Invalid> {
    value.ok_or_else(|| Invalid::new(field, "required"))
}

fn integer(value: &Value, field: &str) -> Result<i64, Invalid> {
    match value {
        Value::Number(n) => n.as_i64(),
        // Clients that quote their ids (JavaScript's int64 problem) are understood.
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| Invalid::new(field, "must be an integer"))
}

fn text<'v>(value: &'v Value, field: &str) -> Result<&'v str, Invalid> {
    value.as_str().ok_or_else(|| Invalid::new(field, "must be a string"))
}

/// Trimmed, not empty, at most `max` characters (Unicode scalar values, not bytes).
fn bounded(value: &Value, field: &str, max: usize) -> Result<String, Invalid> {
    let trimmed = text(value, field)?.trim();
    if trimmed.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    let count = trimmed.chars().count();
    if count > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} characters ({count} given)"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn link(value: &Value, field: &str) -> Result<String, Invalid> {
    let raw = text(value, field)?.trim();
    let parsed = url::Url::parse(raw).map_err(|_| Invalid::new(field, "must be an absolute http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() || raw.len() > LINK_MAX {
        return Err(Invalid::new(
            field,
            format!("must be an http(s) URL of at most {LINK_MAX} characters"),
        ));
    }
    Ok(parsed.to_string())
}

fn channel(value: &Value, field: &str) -> Result<Channel, Invalid> {
    Channel::from_json(value).ok_or_else(|| {
        let known: Vec<String> = Channel::ALL
            .iter()
            .map(|c| format!("{} ({})", c.name(), c.code()))
            .collect();
        Invalid::new(field, format!("unknown channel; one of {}", known.join(", ")))
    })
}

/// The limits a request is read with.
pub struct Limits {
    pub picture_max_bytes: usize,
}

fn content(kind: Kind, value: &Value, path: &str, limits: &Limits, errors: &mut FieldErrors) -> Option<Content> {
    let Some(object) = value.as_object() else {
        errors.push(Invalid::new(path, "must be an object"));
        return None;
    };
    let fields = Fields::of(
        object,
        &[TITLE, MESSAGE, CHANNEL, LINK, PICTURE, URGENT, DATA],
        path,
        errors,
    );
    let field = |name: &str| join(path, name);
    let title =
        errors.keep(required(fields.get(0), &field("title")).and_then(|v| bounded(v, &field("title"), TITLE_MAX)));
    let message = errors
        .keep(required(fields.get(1), &field("message")).and_then(|v| bounded(v, &field("message"), MESSAGE_MAX)));
    let channel = errors.keep(required(fields.get(2), &field("channel")).and_then(|v| channel(v, &field("channel"))));
    let link = fields.get(3).and_then(|v| errors.keep(link(v, &field("link"))));
    let picture =
        match (kind, fields.get(4)) {
            (_, None) => None,
            (Kind::Advertisement, Some(v)) => errors.keep(text(v, &field("picture")).and_then(|t| {
                picture::parse(t, limits.picture_max_bytes).map_err(|r| Invalid::new(field("picture"), r))
            })),
            (_, Some(_)) => {
                errors.push(Invalid::new(
                    field("picture"),
                    "only an advertisement carries a picture",
                ));
                None
            }
        };
    let urgent = match (kind, fields.get(5)) {
        (_, None) => false,
        (Kind::Notification, Some(Value::Bool(b))) => *b,
        (Kind::Notification, Some(_)) => {
            errors.push(Invalid::new(field("urgent"), "must be true or false"));
            false
        }
        (_, Some(_)) => {
            errors.push(Invalid::new(field("urgent"), "only a notification may be urgent"));
            false
        }
    };
    let qr_code = match (kind, fields.get(6)) {
        (Kind::QrCode, data) => errors.keep(
            required(data, &field("data"))
                .and_then(|v| bounded(v, &field("data"), qr::MAX_DATA))
                .and_then(|d| qr::svg(&d).map(|_| d).map_err(|r| Invalid::new(field("data"), r))),
        ),
        (_, None) => None,
        (_, Some(_)) => {
            errors.push(Invalid::new(field("data"), "only a qr_code carries data"));
            None
        }
    };
    let qr_ok = kind != Kind::QrCode || qr_code.is_some();
    match (title, message, channel) {
        (Some(title), Some(message), Some(channel)) if qr_ok => Some(Content {
            kind,
            title,
            message,
            channel,
            link,
            picture,
            qr_code,
            urgent,
        }),
        _ => None,
    }
}

fn head(fields: &Fields<'_>, errors: &mut FieldErrors) -> Option<Head> {
    let provider_id = errors.keep(required(fields.get(0), "provider_id").and_then(|v| integer(v, "provider_id")));
    let service_token = errors.keep(required(fields.get(1), "service_token").and_then(|v| {
        text(v, "service_token")
            .and_then(|t| ServiceToken::parse(t).ok_or_else(|| Invalid::new("service_token", "must be a UUID")))
    }));
    let service_id = errors.keep(required(fields.get(2), "service_id").and_then(|v| {
        integer(v, "service_id")
            .and_then(|n| i32::try_from(n).map_err(|_| Invalid::new("service_id", "must be a 32-bit integer")))
    }));
    Some(Head {
        provider_id: provider_id?,
        service_token: service_token?,
        service_id: service_id?,
    })
}

fn reference(value: Option<&Value>, errors: &mut FieldErrors) -> Option<String> {
    let value = value?;
    errors.keep(text(value, "reference").and_then(|r| {
        let r = r.trim();
        if r.is_empty() || r.len() > REFERENCE_MAX {
            Err(Invalid::new("reference", format!("1 to {REFERENCE_MAX} characters")))
        } else {
            Ok(r.to_owned())
        }
    }))
}

fn parameters(value: Option<&Value>, limits: &Limits, errors: &mut FieldErrors) -> Option<(UserId, Vec<Content>)> {
    let Some(object) = value.and_then(Value::as_object) else {
        errors.push(Invalid::new("parameters", "required: an object"));
        return None;
    };
    let fields = Fields::of(object, &PARAMETERS, "parameters", errors);
    let destination = errors.keep(required(fields.get(0), "parameters.destination").and_then(|v| {
        let id = text(v, "parameters.destination")?.trim();
        match UserId::parse(id) {
            Ok(id) if id.len() <= 128 => Ok(id),
            _ => Err(Invalid::new("parameters.destination", "must be a user id")),
        }
    }));
    if fields.get(4).is_some() {
        errors.push(Invalid::new(
            "parameters.microPayment",
            "service_not_offered: micro-payments are not defined by the services API",
        ));
    }
    let mut contents = Vec::new();
    let mut complete = true;
    for (i, kind) in Kind::ALL.into_iter().enumerate() {
        if let Some(value) = fields.get(i + 1) {
            let path = format!("parameters.{}", kind.name());
            match content(kind, value, &path, limits, errors) {
                Some(c) => contents.push(c),
                None => complete = false,
            }
        }
    }
    if complete && contents.is_empty() && fields.get(4).is_none() {
        errors.push(Invalid::new(
            "parameters",
            "names what to send: notification, advertisement or qr_code",
        ));
    }
    Some((destination?, contents)).filter(|_| complete)
}

/// Reads a `POST /Services` body.
pub fn parse(body: &Value, limits: &Limits) -> Parsed {
    let mut errors = FieldErrors::default();
    let Some(object) = body.as_object() else {
        errors.push(Invalid::new("body", "must be a JSON object"));
        return Parsed {
            head: None,
            body: None,
            errors,
        };
    };
    let fields = Fields::of(object, &TOP, "", &mut errors);
    let head = head(&fields, &mut errors);
    let reference = reference(fields.get(4), &mut errors);
    let body = parameters(fields.get(3), limits, &mut errors).map(|(destination, contents)| Body {
        destination,
        contents,
        reference,
    });
    Parsed { head, body, errors }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LIMITS: Limits = Limits {
        picture_max_bytes: 1024,
    };

    fn fields(parsed: &Parsed) -> Vec<String> {
        parsed.errors.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn the_seeds_own_example_parses_with_its_spanish_keys() {
        let body = json!({
            "provider_id": 42, "service_token": "5f0c6f8e-3c1b-4b7e-9a55-0d1c2b3a4f5e", "service_id": 1,
            "parameters": {
                "destination": "user-1",
                "notification": {"titulo": "Clínica Dr. Nano. Turno", "mensaje": "Oftalmologo Lunes 29-10 a las 9:15Hs.", "canal": "SMS"},
                "advertisement": {"Titre": "Autos usados CHECHO", "Message": "Lleve su auto usado con Financiameiento ...", "Cannel": "FCM"}
            }
        });
        let parsed = parse(&body, &LIMITS);
        assert!(parsed.errors.check().is_ok());
        let head = parsed.head.unwrap();
        assert_eq!((head.provider_id, head.service_id), (42, 1));
        let body = parsed.body.unwrap();
        assert_eq!(body.destination, "user-1");
        assert_eq!(body.contents.len(), 2);
        assert_eq!(body.contents[0].kind, Kind::Notification);
        assert_eq!(body.contents[0].title, "Clínica Dr. Nano. Turno");
        assert_eq!(body.contents[0].channel, Channel::Sms);
        assert_eq!(body.contents[1].kind, Kind::Advertisement);
        assert_eq!(body.contents[1].channel, Channel::Fcm);
    }

    #[test]
    fn every_bad_field_is_named() {
        let accented = "é".repeat(33);
        let body = json!({
            "provider_id": "x", "service_token": "nope", "service_id": 1, "extra": true,
            "parameters": {
                "destination": "",
                "notification": {"title": accented, "message": "m".repeat(167), "channel": "PIGEON", "link": "ftp://x"},
                "advertisement": {"title": "t", "mensaje": "m", "canal": 2, "picture": "????"},
                "microPayment": {}
            }
        });
        let parsed = parse(&body, &LIMITS);
        assert_eq!(
            fields(&parsed),
            [
                "extra",
                "provider_id",
                "service_token",
                "parameters.destination",
                "parameters.microPayment",
                "parameters.notification.title",
                "parameters.notification.message",
                "parameters.notification.channel",
                "parameters.notification.link",
                "parameters.advertisement.picture",
            ]
        );
        let title = parsed.errors.iter().find(|e| e.field.ends_with("title")).unwrap();
        assert!(title.reason.contains("33 given"), "{}", title.reason);
        assert!(parsed.head.is_none() && parsed.body.is_none());
    }

    #[test]
    fn thirty_two_accented_characters_fit() {
        let body = json!({"provider_id": 1, "service_token": uuid::Uuid::new_v4().to_string(), "service_id": 1,
            "parameters": {"destination": "u", "notification": {"title": "é".repeat(32), "message": "ñ".repeat(166), "channel": 1}}});
        let parsed = parse(&body, &LIMITS);
        assert!(parsed.errors.check().is_ok());
    }

    #[test]
    fn spellings_given_twice_and_misplaced_fields_are_refused() {
        let body = json!({"provider_id": 1, "service_token": uuid::Uuid::new_v4().to_string(), "service_id": 1,
            "parameters": {"destination": "u",
                "notification": {"title": "a", "Tittle": "b", "message": "m", "channel": "SMS", "picture": "x"},
                "qr_code": {"title": "Ticket", "message": "Your seat", "channel": "EMAIL"}}});
        assert_eq!(
            fields(&parse(&body, &LIMITS)),
            [
                "parameters.notification.title",
                "parameters.notification.picture",
                "parameters.qr_code.data"
            ]
        );
    }

    #[test]
    fn a_request_must_name_something_to_send() {
        let body = json!({"provider_id": 1, "service_token": uuid::Uuid::new_v4().to_string(), "service_id": 1,
            "parameters": {"destination": "u"}});
        assert_eq!(fields(&parse(&body, &LIMITS)), ["parameters"]);
        assert_eq!(fields(&parse(&json!([1]), &LIMITS)), ["body"]);
    }
}
