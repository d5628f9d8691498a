//! When the next attempt is made: the configured schedule with jitter, no sooner than an
//! endpoint's `Retry-After`, and nothing after the last step; and how many attempts an
//! endpoint may have in flight.

use std::time::Duration;

use rand::Rng;

use crate::DeliverySettings;

/// Milliseconds until attempt number `made + 1` (the first is `made == 0`), or `None` once the
/// schedule is spent.
pub fn next_wait(settings: &DeliverySettings, made: usize, retry_after: Option<Duration>) -> Option<i64> {
    let step = settings.schedule.get(made)?.millis();
    let jitter = step * i64::from(settings.jitter_percent) / 100;
    let wait = step
        + if jitter > 0 {
            rand::thread_rng().gen_range(0..=jitter)
        } else {
            0
        };
    let asked = retry_after
        .map(|d| d.min(settings.retry_after_max.0))
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Some(wait.max(asked))
}

/// An endpoint's room after a batch of its attempts, when it changes. One that never answered
/// has room for one attempt (a new endpoint that is dead holds one place, not the start's); after
/// its first answer it has the start; then twice what it had (up to the most) when every attempt
/// succeeded within `fast_answer`, else back to the start. An endpoint that answers fast takes
/// many attempts at once; one that slows down holds few places while it does.
pub fn next_room(settings: &DeliverySettings, room: Option<i32>, all_fast: bool) -> Option<i32> {
    let start = settings.start_in_flight_per_endpoint;
    let next = match room {
        Some(now) if all_fast => (i64::from(now) * 2).min(settings.max_in_flight_per_endpoint),
        _ => start,
    };
    let next = i32::try_from(next).ok()?;
    (Some(next) != room).then_some(next)
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use settings::Span;

    use super::*;

    fn settings(jitter_percent: u32) -> DeliverySettings {
        let span = |s: &str| Span::parse(s).unwrap();
        DeliverySettings {
            timeout: span("15s"),
            schedule: ["0s", "5s", "5m"].map(span).to_vec(),
            jitter_percent,
            retry_after_max: span("1h"),
            disable_after: span("5d"),
            poll_interval: span("1s"),
            lease: span("60s"),
            batch: 10,
            max_in_flight: 10,
            max_in_flight_failing: 2,
            start_in_flight_per_endpoint: 2,
            max_in_flight_per_endpoint: 8,
            fast_answer: span("1s"),
            response_body_bytes: 100,
        }
    }

    #[test]
    fn room_starts_after_a_first_answer_doubles_while_fast_and_falls_back_to_the_start() {
        let s = settings(0);
        assert_eq!(
            next_room(&s, None, true),
            Some(2),
            "one until it answered, then the start"
        );
        assert_eq!(next_room(&s, None, false), Some(2), "a slow or failed answer too");
        assert_eq!(next_room(&s, Some(2), true), Some(4));
        assert_eq!(next_room(&s, Some(4), true), Some(8));
        assert_eq!(next_room(&s, Some(8), true), None, "at the most already");
        assert_eq!(next_room(&s, Some(8), false), Some(2));
        assert_eq!(next_room(&s, Some(2), false), None);
    }

    #[test]
    fn the_schedule_with_jitter_then_nothing() {
        let s = settings(10);
        assert_eq!(next_wait(&s, 0, None), Some(0));
        let second = next_wait(&s, 1, None).unwrap();
        assert!((5_000..=5_500).contains(&second), "{second}");
        assert!(next_wait(&s, 3, None).is_none(), "spent");
        assert_eq!(next_wait(&settings(0), 2, None), Some(300_000));
    }

    #[test]
    fn retry_after_is_honoured_up_to_its_bound() {
        let s = settings(0);
        assert_eq!(next_wait(&s, 1, Some(Duration::from_secs(20))), Some(20_000));
        assert_eq!(
            next_wait(&s, 1, Some(Duration::from_secs(1))),
            Some(5_000),
            "never sooner than the schedule"
        );
        assert_eq!(next_wait(&s, 1, Some(Duration::from_secs(86_400))), Some(3_600_000));
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_after("Tue, 01 Dec 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
