//! An application's usage over the last 7 or 30 days: requests and errors per day drawn as an
//! SVG bar chart (with the same figures in a table), p95 latency per day, and per API.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use events::catalogue::USAGE_LATENCY_BOUNDS_MS;
use maud::{Markup, html};

use super::{Section, page};
use crate::api::Application;
use crate::sessions::Session;
use crate::store::UsageRow;

pub fn day_string(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0).map_or_else(String::new, |d| d.format("%Y-%m-%d").to_string())
}

/// Totals of some rows: requests, errors and the latency histogram.
#[derive(Default, Clone)]
pub struct Totals {
    pub requests: i64,
    pub client_errors: i64,
    pub server_errors: i64,
    pub buckets: [i64; 10],
}

impl Totals {
    fn add(&mut self, row: &UsageRow) {
        self.requests += row.requests;
        self.client_errors += row.client_errors;
        self.server_errors += row.server_errors;
        for (slot, n) in self.buckets.iter_mut().zip(row.buckets.split(' ')) {
            *slot += n.trim().parse::<i64>().unwrap_or(0);
        }
    }

    /// The 95th percentile, as the bucket it falls in: "≤ 50 ms", "> 2500 ms".
    pub fn p95(&self) -> String {
        let total: i64 = self.buckets.iter().sum();
        if total == 0 {
            return "–".to_owned();
        }
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen * 100 >= total * 95 {
                return USAGE_LATENCY_BOUNDS_MS
                    .get(i)
                    .map_or_else(|| "> 2500 ms".to_owned(), |b| format!("≤ {b} ms"));
            }
        }
        "> 2500 ms".to_owned()
    }
}

pub struct Summary {
    pub days: Vec<(String, Totals)>,
    pub apis: BTreeMap<String, Totals>,
    pub total: Totals,
}

/// Every day of the window (empty ones too), and the totals per API.
pub fn summarize(rows: &[UsageRow], today: i64, window: i64) -> Summary {
    let mut by_day: BTreeMap<String, Totals> = (0..window)
        .map(|i| (day_string(today - window + 1 + i), Totals::default()))
        .collect();
    let mut apis: BTreeMap<String, Totals> = BTreeMap::new();
    let mut total = Totals::default();
    for row in rows {
        if let Some(day) = by_day.get_mut(&row.day) {
            day.add(row);
            apis.entry(row.api.clone()).or_default().add(row);
            total.add(row);
        }
    }
    Summary {
        days: by_day.into_iter().collect(),
        apis,
        total,
    }
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;

fn chart(days: &[(String, Totals)]) -> Markup {
    let max = days.iter().map(|(_, t)| t.requests).max().unwrap_or(0).max(1);
    let slot = WIDTH / days.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let scale = |n: i64| n as f64 / max as f64 * (HEIGHT - 20.0);
    let errors: i64 = days.iter().map(|(_, t)| t.client_errors + t.server_errors).sum();
    let label = format!(
        "Requests per day, at most {max} on one day; {errors} errors in all. The table below has every figure."
    );
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {}", HEIGHT + 24.0)) role="img" aria-label=(label) preserveAspectRatio="none" {
            title { (label) }
            line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) stroke="#8a94a6" {}
            @for (i, (day, t)) in days.iter().enumerate() {
                @let x = i as f64 * slot + (slot - bar) / 2.0;
                @let h = scale(t.requests);
                @let e = scale(t.client_errors + t.server_errors);
                rect x=(format!("{x:.1}")) y=(format!("{:.1}", HEIGHT - h)) width=(format!("{bar:.1}")) height=(format!("{h:.1}")) fill="#2456d3" {
                    title { (day) ": " (t.requests) " requests" }
                }
                rect x=(format!("{x:.1}")) y=(format!("{:.1}", HEIGHT - e)) width=(format!("{bar:.1}")) height=(format!("{e:.1}")) fill="#b42318" {}
                @if days.len() <= 7 || i % 5 == 0 {
                    text x=(format!("{:.1}", x + bar / 2.0)) y=(HEIGHT + 16.0) text-anchor="middle" font-size="11" fill="#4a5468" { (&day[5..]) }
                }
            }
        }
        p.legend { span.swatch.blue {} "requests " span.swatch.red {} "errors (4xx and 5xx)" }
    }
}

pub fn usage(session: &Session, app: &Application, window: i64, summary: &Summary) -> HttpResponse {
    let base = format!("/portal/applications/{}/usage", app.client_id);
    let body = html! {
        p { a href=(format!("/portal/applications/{}", app.client_id)) { "← " (app.name) } }
        h1 { "Usage of " (app.name) }
        nav.tabs aria-label="Period" {
            @for (days, label) in [(7, "Last 7 days"), (30, "Last 30 days")] {
                @if days == window { a href=(format!("{base}?days={days}")) aria-current="page" { (label) } }
                @else { a href=(format!("{base}?days={days}")) { (label) } }
            }
        }
        section.card aria-labelledby="totals" {
            h2 #totals { (summary.total.requests) " requests" }
            p { (summary.total.client_errors) " client errors (4xx) · " (summary.total.server_errors) " server errors (5xx) · p95 latency " (summary.total.p95()) }
            (chart(&summary.days))
        }
        section.card aria-labelledby="per-day" {
            h2 #per-day { "Per day" }
            div.scroll tabindex="0" role="region" aria-labelledby="per-day" {
                table {
                    thead { tr { th scope="col" { "Day (UTC)" } th scope="col" { "Requests" } th scope="col" { "4xx" } th scope="col" { "5xx" } th scope="col" { "p95" } } }
                    tbody {
                        @for (day, t) in summary.days.iter().rev() {
                            tr { th scope="row" { (day) } td { (t.requests) } td { (t.client_errors) } td { (t.server_errors) } td { (t.p95()) } }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="per-api" {
            h2 #per-api { "Per API" }
            @if summary.apis.is_empty() {
                p.empty { "No request in this period." }
            } @else {
                div.scroll tabindex="0" role="region" aria-labelledby="per-api" {
                    table {
                        thead { tr { th scope="col" { "API" } th scope="col" { "Requests" } th scope="col" { "4xx" } th scope="col" { "5xx" } th scope="col" { "p95" } } }
                        tbody {
                            @for (api, t) in &summary.apis {
                                tr { th scope="row" { code { (api) } } td { (t.requests) } td { (t.client_errors) } td { (t.server_errors) } td { (t.p95()) } }
                            }
                        }
                    }
                }
            }
        }
        p.hint { "Counted by the gateway for requests with this application's tokens; figures arrive within about 10 seconds." }
    };
    page(StatusCode::OK, session, Section::Applications, "Usage", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(day: &str, api: &str, requests: i64, buckets: &str) -> UsageRow {
        UsageRow {
            api: api.to_owned(),
            day: day.to_owned(),
            requests,
            client_errors: 1,
            server_errors: 0,
            buckets: buckets.to_owned(),
        }
    }

    #[test]
    fn the_window_has_every_day_and_p95_is_the_bucket_it_falls_in() {
        let today = 20_000; // 2024-10-04
        let rows = [
            row("2024-10-04", "/blog", 100, "90 4 0 0 0 0 6 0 0 0"),
            row("2024-10-01", "/users", 10, "10 0 0 0 0 0 0 0 0 0"),
            row("2024-09-01", "/users", 10, "0 0 0 0 0 0 0 0 0 10"),
        ];
        let summary = summarize(&rows, today, 7);
        assert_eq!(summary.days.len(), 7);
        assert_eq!(summary.days[0].0, "2024-09-28");
        assert_eq!(summary.days[6].1.requests, 100);
        assert_eq!(summary.total.requests, 110, "a day outside the window is left out");
        assert_eq!(summary.apis["/blog"].p95(), "≤ 500 ms");
        assert_eq!(summary.apis["/users"].p95(), "≤ 5 ms");
        assert_eq!(Totals::default().p95(), "–");
    }
}
