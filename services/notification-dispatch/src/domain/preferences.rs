//! A user's choices: channels they turned off, providers they muted or allowed to advertise,
//! quiet hours in their time zone. Stored as one document, parsed into these types at the edge
//! and whenever it is read back.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, LocalResult, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use values::{FieldErrors, Invalid};

use super::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderChoice {
    /// Nothing from this provider.
    pub muted: bool,
    /// Its advertisements are welcome (never without this explicit opt-in).
    pub advertisements: bool,
    pub channels_off: BTreeSet<Channel>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    pub time_zone: Tz,
    pub quiet_hours: Option<QuietHours>,
    pub channels_off: BTreeSet<Channel>,
    pub providers: BTreeMap<i64, ProviderChoice>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            time_zone: Tz::UTC,
            quiet_hours: None,
            channels_off: BTreeSet::new(),
            providers: BTreeMap::new(),
        }
    }
}

/// Quiet hours as sent and shown: `HH:MM` local times; `start` after `end` spans midnight.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuietHoursDocument {
    #[schema(example = "22:00")]
    pub start: String,
    #[schema(example = "07:00")]
    pub end: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderDocument {
    #[serde(default)]
    pub muted: bool,
    #[serde(default)]
    pub advertisements: bool,
    /// Channels turned off for this provider: `{"SMS": false}`.
    #[serde(default)]
    pub channels: BTreeMap<String, bool>,
}

/// The preferences document of `GET/PUT /notifications/preferences`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesDocument {
    /// An IANA time zone (`Europe/Paris`); quiet hours are in it.
    #[serde(default = "utc")]
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    /// Non-urgent notifications wait until they end; urgent ones pass.
    #[serde(default)]
    pub quiet_hours: Option<QuietHoursDocument>,
    /// Channels on (`true`) or off (`false`) for every provider; unnamed ones are on.
    #[serde(default)]
    pub channels: BTreeMap<String, bool>,
    /// Per provider (by `provider_id`): muted, advertisements allowed, channels.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderDocument>,
}

fn utc() -> String {
    "UTC".to_owned()
}

impl PreferencesDocument {
    /// The keywords of each property that the schema derived from the type cannot tell: the
    /// names `parse` takes.
    pub fn keywords() -> Vec<(&'static str, &'static str, serde_json::Value)> {
        use serde_json::json;
        let channels = json!({"propertyNames": {"pattern": Channel::NAME_PATTERN}});
        vec![
            (
                "PreferencesDocument",
                "time_zone",
                json!({"enum": chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect::<Vec<_>>()}),
            ),
            ("PreferencesDocument", "channels", channels.clone()),
            (
                "PreferencesDocument",
                "providers",
                json!({"propertyNames": {"pattern": "^[1-9][0-9]{0,18}$"}}),
            ),
            ("ProviderDocument", "channels", channels),
            ("QuietHoursDocument", "start", json!({"pattern": TIME_PATTERN})),
            ("QuietHoursDocument", "end", json!({"pattern": TIME_PATTERN})),
        ]
    }
}

/// What `time` takes: `HH:MM`, the hour on one digit or two.
const TIME_PATTERN: &str = r"^[\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([01]?[0-9]|2[0-3]):[0-5][0-9][\t\n\x0b\x0c\r\x85\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";

fn time(text: &str, field: &str) -> Result<NaiveTime, Invalid> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| Invalid::new(field, "must be a local time HH:MM"))
}

fn channels_off(map: &BTreeMap<String, bool>, path: &str, errors: &mut FieldErrors) -> BTreeSet<Channel> {
    map.iter()
        .filter_map(|(name, on)| match Channel::from_name(name) {
            Some(c) => (!on).then_some(c),
            None => {
                errors.push(Invalid::new(format!("{path}.{name}"), "unknown channel"));
                None
            }
        })
        .collect()
}

impl PreferencesDocument {
    pub fn parse(&self) -> Result<Preferences, FieldErrors> {
        let mut errors = FieldErrors::default();
        let time_zone = errors.keep(self.time_zone.parse::<Tz>().map_err(|_| {
            Invalid::new(
                "time_zone",
                "must be an IANA time zone (Europe/Paris, America/Bogota, UTC)",
            )
        }));
        let quiet_hours = self.quiet_hours.as_ref().and_then(|q| {
            let start = errors.keep(time(&q.start, "quiet_hours.start"));
            let end = errors.keep(time(&q.end, "quiet_hours.end"));
            match (start, end) {
                (Some(s), Some(e)) if s == e => {
                    errors.push(Invalid::new("quiet_hours.end", "must differ from start"));
                    None
                }
                (Some(start), Some(end)) => Some(QuietHours { start, end }),
                _ => None,
            }
        });
        let globally_off = channels_off(&self.channels, "channels", &mut errors);
        let mut providers = BTreeMap::new();
        for (id, doc) in &self.providers {
            let path = format!("providers.{id}");
            let Some(id) = id.parse::<i64>().ok().filter(|n| *n > 0) else {
                errors.push(Invalid::new(path, "must be a provider_id"));
                continue;
            };
            let choice = ProviderChoice {
                muted: doc.muted,
                advertisements: doc.advertisements,
                channels_off: channels_off(&doc.channels, &format!("{path}.channels"), &mut errors),
            };
            providers.insert(id, choice);
        }
        errors.check()?;
        Ok(Preferences {
            time_zone: time_zone.unwrap_or(Tz::UTC),
            quiet_hours,
            channels_off: globally_off,
            providers,
        })
    }
}

impl Preferences {
    /// A stored document. It was parsed before it was stored; one that no longer parses (a time
    /// zone dropped from the database) reads as the defaults rather than stopping delivery.
    pub fn stored(document: &str) -> Self {
        serde_json::from_str::<PreferencesDocument>(document)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or_default()
    }

    pub fn document(&self) -> PreferencesDocument {
        let channels = |off: &BTreeSet<Channel>| off.iter().map(|c| (c.name().to_owned(), false)).collect();
        PreferencesDocument {
            time_zone: self.time_zone.name().to_owned(),
            quiet_hours: self.quiet_hours.map(|q| QuietHoursDocument {
                start: q.start.format("%H:%M").to_string(),
                end: q.end.format("%H:%M").to_string(),
            }),
            channels: channels(&self.channels_off),
            providers: self
                .providers
                .iter()
                .map(|(id, p)| {
                    (
                        id.to_string(),
                        ProviderDocument {
                            muted: p.muted,
                            advertisements: p.advertisements,
                            channels: channels(&p.channels_off),
                        },
                    )
                })
                .collect(),
        }
    }

    fn provider(&self, provider: i64) -> Option<&ProviderChoice> {
        self.providers.get(&provider)
    }

    pub fn muted(&self, provider: i64) -> bool {
        self.provider(provider).is_some_and(|p| p.muted)
    }

    pub fn advertisements(&self, provider: i64) -> bool {
        self.provider(provider).is_some_and(|p| p.advertisements)
    }

    /// Whether the user takes `channel` from `provider`.
    pub fn allows(&self, provider: i64, channel: Channel) -> bool {
        !self.channels_off.contains(&channel)
            && !self
                .provider(provider)
                .is_some_and(|p| p.channels_off.contains(&channel))
    }

    /// When quiet hours end, if `now` (milliseconds since the epoch) falls inside them.
    pub fn quiet_until(&self, now: i64) -> Option<i64> {
        let quiet = self.quiet_hours?;
        let local = Utc.timestamp_millis_opt(now).single()?.with_timezone(&self.time_zone);
        let t = local.time();
        let inside = if quiet.start < quiet.end {
            quiet.start <= t && t < quiet.end
        } else {
            t >= quiet.start || t < quiet.end
        };
        if !inside {
            return None;
        }
        let day = if t < quiet.end {
            local.date_naive()
        } else {
            local.date_naive().checked_add_days(Days::new(1))?
        };
        let end = day.and_time(quiet.end);
        let resolved = match self.time_zone.from_local_datetime(&end) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at,
            // The end falls in a daylight-saving gap: the first instant after it.
            LocalResult::None => self
                .time_zone
                .from_local_datetime(&(end + chrono::Duration::hours(1)))
                .earliest()?,
        };
        Some(resolved.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(value: serde_json::Value) -> Result<Preferences, FieldErrors> {
        serde_json::from_value::<PreferencesDocument>(value).unwrap().parse()
    }

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    #[test]
    fn quiet_hours_follow_the_users_time_zone_across_midnight() {
        let p =
            parsed(json!({"time_zone": "Europe/Paris", "quiet_hours": {"start": "22:00", "end": "07:00"}})).unwrap();
        // 23:30 in Paris (UTC+1 in December): quiet until 07:00 Paris the next morning.
        assert_eq!(
            p.quiet_until(at("2026-12-01T22:30:00Z")),
            Some(at("2026-12-02T06:00:00Z"))
        );
        // 05:00 in Paris: quiet until 07:00 the same day.
        assert_eq!(
            p.quiet_until(at("2026-12-02T04:00:00Z")),
            Some(at("2026-12-02T06:00:00Z"))
        );
        assert_eq!(p.quiet_until(at("2026-12-02T12:00:00Z")), None);
        let bogota =
            parsed(json!({"time_zone": "America/Bogota", "quiet_hours": {"start": "13:00", "end": "14:00"}})).unwrap();
        assert_eq!(
            bogota.quiet_until(at("2026-12-01T18:15:00Z")),
            Some(at("2026-12-01T19:00:00Z"))
        );
    }

    #[test]
    fn channels_and_providers_are_chosen_per_user() {
        let p = parsed(json!({"channels": {"SMS": false}, "providers": {"7": {"muted": false, "advertisements": true, "channels": {"EMAIL": false}}, "8": {"muted": true}}})).unwrap();
        assert!(!p.allows(7, Channel::Sms));
        assert!(!p.allows(7, Channel::Email));
        assert!(p.allows(9, Channel::Email));
        assert!(p.advertisements(7) && !p.advertisements(9));
        assert!(p.muted(8) && !p.muted(7));
        let round = parsed(serde_json::to_value(p.document()).unwrap()).unwrap();
        assert_eq!(round, p);
    }

    #[test]
    fn every_bad_preference_is_named() {
        let errors = parsed(json!({"time_zone": "Mars/Olympus", "quiet_hours": {"start": "25:00", "end": "7"}, "channels": {"PIGEON": false}, "providers": {"abc": {}}})).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "time_zone",
                "quiet_hours.start",
                "quiet_hours.end",
                "channels.PIGEON",
                "providers.abc"
            ]
        );
    }
}
