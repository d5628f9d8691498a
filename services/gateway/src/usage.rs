//! Usage per application, counted on the hot path in memory (a short lock, an allocation only
//! the first time a client, route or day is seen) and reported on the bus as `gateway.usage`
//! every `[usage] report_interval`; the portal adds the reports up. A report that cannot be
//! published is kept and sent with the next; what a replica counted since its last report is
//! lost if it crashes (usage figures, not billing).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use events::catalogue::{USAGE_LATENCY_BOUNDS_MS, UsageReported};
use events::{Bus, Event};
use ids::ClientId;
use tokio_util::sync::CancellationToken;

const BUCKETS: usize = USAGE_LATENCY_BOUNDS_MS.len() + 1;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub requests: i64,
    pub client_errors: i64,
    pub server_errors: i64,
    pub buckets: [i64; BUCKETS],
}

impl Counts {
    fn add(&mut self, other: &Self) {
        self.requests += other.requests;
        self.client_errors += other.client_errors;
        self.server_errors += other.server_errors;
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
    }
}

/// client → route prefix → UTC day (days since the epoch) → counts.
type Table = HashMap<ClientId, HashMap<String, HashMap<i64, Counts>>>;

#[derive(Default)]
pub struct Usage {
    table: Mutex<Table>,
}

fn bucket(latency: Duration) -> usize {
    let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    USAGE_LATENCY_BOUNDS_MS
        .iter()
        .position(|bound| ms <= *bound)
        .unwrap_or(BUCKETS - 1)
}

fn today() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(86_400)
}

impl Usage {
    pub fn record(&self, client: &str, api: &str, status: u16, latency: Duration) {
        self.record_on(today(), client, api, status, latency);
    }

    fn record_on(&self, day: i64, client: &str, api: &str, status: u16, latency: Duration) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if !table.contains_key(client) {
            // Answers name clients auth registered, whose ids always parse.
            let Ok(id) = ClientId::parse(client) else { return };
            table.insert(id, HashMap::new());
        }
        let Some(apis) = table.get_mut(client) else { return };
        if !apis.contains_key(api) {
            apis.insert(api.to_owned(), HashMap::new());
        }
        let Some(days) = apis.get_mut(api) else { return };
        let counts = days.entry(day).or_default();
        counts.requests += 1;
        counts.client_errors += i64::from((400..500).contains(&status));
        counts.server_errors += i64::from(status >= 500);
        counts.buckets[bucket(latency)] += 1;
    }

    /// Everything counted since the last call, emptied.
    fn take(&self) -> Vec<UsageReported> {
        let table = std::mem::take(&mut *self.table.lock().unwrap_or_else(PoisonError::into_inner));
        let mut reports = Vec::new();
        for (client, apis) in table {
            for (api, days) in apis {
                for (day, counts) in days {
                    reports.push(report(&client, &api, day, &counts));
                }
            }
        }
        reports
    }

    /// Puts reports that could not be published back, to go with the next ones.
    fn restore(&self, reports: &[UsageReported]) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        for r in reports {
            let day = chrono::NaiveDate::parse_from_str(&r.day, "%Y-%m-%d").map_or_else(
                |_| today(),
                |d| {
                    d.and_hms_opt(0, 0, 0)
                        .map_or_else(today, |t| t.and_utc().timestamp().div_euclid(86_400))
                },
            );
            let mut counts = Counts {
                requests: r.requests,
                client_errors: r.client_errors,
                server_errors: r.server_errors,
                ..Counts::default()
            };
            for (slot, n) in counts.buckets.iter_mut().zip(&r.latency_buckets) {
                *slot = *n;
            }
            table
                .entry(r.client_id.clone())
                .or_default()
                .entry(r.api.clone())
                .or_default()
                .entry(day)
                .or_default()
                .add(&counts);
        }
    }

    async fn report_to(&self, bus: &dyn Bus, source: &str) {
        let reports = self.take();
        if reports.is_empty() {
            return;
        }
        let events: Result<Vec<Event>, _> = reports
            .iter()
            .map(|r| Event::new(source, Some(r.client_id.to_string()), r))
            .collect();
        let published = match events {
            Ok(events) => bus.publish(&events).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = published {
            tracing::warn!(%error, reports = reports.len(), "usage not reported; kept for the next report");
            self.restore(&reports);
        }
    }
}

fn report(client: &ClientId, api: &str, day: i64, counts: &Counts) -> UsageReported {
    let date = chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string());
    UsageReported {
        client_id: client.clone(),
        api: api.to_owned(),
        day: date,
        requests: counts.requests,
        client_errors: counts.client_errors,
        server_errors: counts.server_errors,
        latency_buckets: counts.buckets.to_vec(),
    }
}

/// Reports every `interval`, and once more at shutdown so a clean stop loses nothing.
pub fn reporter(
    usage: Arc<Usage>,
    bus: Arc<dyn Bus>,
    interval: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => usage.report_to(bus.as_ref(), crate::SOURCE).await,
            }
        }
        usage.report_to(bus.as_ref(), crate::SOURCE).await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_per_client_api_and_day_with_their_latency_bucket() {
        let usage = Usage::default();
        usage.record_on(20_000, "app", "/blog", 200, Duration::from_millis(3));
        usage.record_on(20_000, "app", "/blog", 404, Duration::from_millis(30));
        usage.record_on(20_000, "app", "/blog", 503, Duration::from_secs(9));
        usage.record_on(20_001, "app", "/blog", 200, Duration::from_millis(7));
        usage.record_on(20_000, "other", "/users", 200, Duration::from_millis(7));
        let mut reports = usage.take();
        reports.sort_by(|a, b| (&a.client_id, &a.day).cmp(&(&b.client_id, &b.day)));
        assert_eq!(reports.len(), 3);
        let first = &reports[0];
        assert_eq!(
            (first.client_id.as_str(), first.api.as_str(), first.day.as_str()),
            ("app", "/blog", "2024-10-04")
        );
        assert_eq!((first.requests, first.client_errors, first.server_errors), (3, 1, 1));
        assert_eq!(first.latency_buckets, vec![1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
        assert!(usage.take().is_empty(), "a report empties the counts");
    }

    #[test]
    fn reports_not_published_are_kept_for_the_next() {
        let usage = Usage::default();
        usage.record_on(20_000, "app", "/blog", 200, Duration::from_millis(3));
        let reports = usage.take();
        usage.record_on(20_000, "app", "/blog", 500, Duration::from_millis(3));
        usage.restore(&reports);
        let merged = usage.take();
        assert_eq!(merged.len(), 1);
        assert_eq!((merged[0].requests, merged[0].server_errors), (2, 1));
        assert_eq!(merged[0].latency_buckets[0], 2);
    }
}
