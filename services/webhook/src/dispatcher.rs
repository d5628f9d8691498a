//! The dispatcher: claims due deliveries from the database (so scheduled attempts survive
//! restarts and replicas share the work), makes each attempt on its own task, and a recorder
//! writes the outcomes, many in one transaction, each with the next attempt's time. One
//! endpoint's slowness holds only its own deliveries: in-flight attempts are bounded per
//! endpoint by the claim, and in all by a semaphore, never by a queue shared with others.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache::GcraPolicy;
use events::Outbox;
use events::catalogue::WebhookEndpointDisabled;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::DeliverySettings;
use crate::domain::event_types;
use crate::domain::sealing::{SealError, Sealer};
use crate::domain::{new_id, schedule, signing};
use crate::state::Webhooks;
use crate::store::{self, AttemptRow, DeliveryRow, EndpointRow, Lane, MessageRow};

/// An attempt made, on its way to the recorder.
struct Made {
    delivery: DeliveryRow,
    message: MessageRow,
    endpoint: EndpointRow,
    /// The endpoint's room when the attempt was claimed (`None`: it never answered, room for one).
    room: Option<i32>,
    outcome: Outcome,
}

/// Wakes the dispatcher's lanes when deliveries may have become due.
#[derive(Default)]
pub struct Wake {
    healthy: Notify,
    failing: Notify,
}

impl Wake {
    /// New deliveries, or room given back by answers: the healthy lane looks at once. A failing
    /// endpoint's new deliveries wait for its one place or its next retry anyway; its lane looks
    /// when one of its attempts is recorded, or at its next poll.
    pub fn healthy(&self) {
        self.healthy.notify_one();
    }

    /// Deliveries of any endpoint made due (a resend, a recovery) or given room (an outcome).
    pub fn both(&self) {
        self.healthy.notify_one();
        self.failing.notify_one();
    }

    fn of(&self, lane: Lane) -> &Notify {
        match lane {
            Lane::Healthy => &self.healthy,
            Lane::Failing => &self.failing,
        }
    }
}

/// Two lanes claim and attempt side by side, one for the endpoints that answer and one for
/// those failing, each with its own places in flight: dead endpoints' claims and timeouts never
/// hold the others' turn. One recorder writes both lanes' outcomes.
pub async fn run(state: Arc<Webhooks>, shutdown: CancellationToken) {
    let (made, outcomes) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_all(state.clone(), outcomes));
    let (healthy, failing) = (state.delivery.max_in_flight, state.delivery.max_in_flight_failing);
    tokio::join!(
        lane(&state, Lane::Healthy, healthy, made.clone(), &shutdown),
        lane(&state, Lane::Failing, failing, made, &shutdown),
    );
    let _ = recorder.await;
}

async fn lane(
    state: &Arc<Webhooks>,
    lane: Lane,
    in_flight: usize,
    made: mpsc::UnboundedSender<Made>,
    shutdown: &CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(in_flight));
    let mut tasks = JoinSet::new();
    loop {
        let free = i64::try_from(permits.available_permits())
            .unwrap_or(0)
            .min(state.delivery.batch);
        let claimed = if free > 0 {
            claim(state, lane, free).await
        } else {
            Vec::new()
        };
        let full = i64::try_from(claimed.len()).unwrap_or(0) == free && free > 0;
        for job in claimed {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            tasks.spawn(attempt(state.clone(), job, permit, made.clone()));
        }
        while tasks.try_join_next().is_some() {}
        if full {
            continue;
        }
        // An endpoint's room comes back when the recorder settles its attempts (and wakes
        // this loop); a finished attempt matters only when every place in flight was taken.
        let starved = permits.available_permits() == 0;
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = state.wake.of(lane).notified() => {}
            () = tokio::time::sleep(state.delivery.poll_interval.0) => {}
            Some(_) = tasks.join_next(), if starved => {}
        }
    }
    // Attempts in flight finish (each is bounded by the timeout) and are recorded; their leases
    // would otherwise hold their deliveries until they expire.
    while tasks.join_next().await.is_some() {}
}

/// A claimed delivery, what its attempt needs, and whether it may still go.
struct Job {
    delivery: DeliveryRow,
    message: MessageRow,
    endpoint: EndpointRow,
    /// The endpoint's secrets, opened: `v1` (one, or two in an overlap) and `v1a` keys (none,
    /// one or two); an error when they could not be opened.
    signing: Result<Signing, SealError>,
    room: Option<i32>,
    authorized: bool,
}

async fn claim(state: &Webhooks, lane: Lane, limit: i64) -> Vec<Job> {
    let now = storage::now_millis();
    let lease_until = now + state.delivery.lease.millis();
    let claimed = match state
        .store
        .claim(lane, now, lease_until, limit, event_types::consent_scope)
        .await
    {
        Ok(claimed) => claimed,
        Err(error) => {
            tracing::warn!(%error, "due deliveries not claimed");
            return Vec::new();
        }
    };
    claimed
        .into_iter()
        .map(|claimed| Job {
            signing: opened(&state.sealer, &claimed.endpoint, claimed.v1a.as_ref(), now),
            room: claimed.room,
            authorized: claimed.authorized,
            delivery: claimed.delivery,
            message: claimed.message,
            endpoint: claimed.endpoint,
        })
        .collect()
}

/// The due backlog and the disabled endpoints, for the metrics.
pub async fn sample(state: &Webhooks) {
    let now = storage::now_millis();
    if let Ok((due, disabled)) = state.store.backlog(now).await {
        state.metrics.backlog.set(due);
        state.metrics.disabled_endpoints.set(disabled);
    }
}

/// What one attempt came to.
struct Outcome {
    status: Option<u16>,
    error_kind: Option<&'static str>,
    body: String,
    duration_ms: i64,
    retry_after: Option<Duration>,
}

impl Outcome {
    fn failed(kind: &'static str, detail: String, started: Instant) -> Self {
        Self {
            status: None,
            error_kind: Some(kind),
            body: detail,
            duration_ms: elapsed_ms(started),
            retry_after: None,
        }
    }

    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

async fn attempt(state: Arc<Webhooks>, job: Job, _permit: OwnedSemaphorePermit, made: mpsc::UnboundedSender<Made>) {
    let Job {
        delivery,
        message,
        endpoint,
        signing,
        room,
        authorized,
    } = job;
    if !authorized {
        return cancel(&state, delivery).await;
    }
    if let Some(wait) = rate_limited(&state, &endpoint).await {
        let at = storage::now_millis() + wait;
        if let Err(error) = state.store.postpone(delivery.id, at).await {
            tracing::warn!(%error, "rate-limited delivery not postponed");
        }
        return;
    }
    let outcome = match signing {
        Ok(signing) => send(&state, &endpoint, &signing, &message).await,
        Err(error) => Outcome::failed("secret", error.to_string(), Instant::now()),
    };
    // The recorder is gone only at shutdown; the lease then brings the delivery back.
    let _ = made.send(Made {
        delivery,
        message,
        endpoint,
        room,
        outcome,
    });
}

async fn cancel(state: &Webhooks, delivery: DeliveryRow) {
    if let Err(error) = state
        .store
        .cancel(delivery.id, delivery.attempts, storage::now_millis())
        .await
    {
        tracing::warn!(%error, "delivery not cancelled");
    }
    state.metrics.attempts.with_label_values(&["cancelled"]).inc();
}

/// Milliseconds to wait when the endpoint's rate limit is spent (a cache that cannot answer
/// lets the attempt go).
async fn rate_limited(state: &Webhooks, endpoint: &EndpointRow) -> Option<i64> {
    let rate = endpoint.rate_limit?;
    let policy = GcraPolicy::per_second(f64::from(rate));
    let decision = state
        .rates
        .check(&format!("endpoint:{}", endpoint.id), &policy)
        .await
        .ok()?;
    (!decision.allowed).then(|| i64::try_from(decision.retry_after.as_millis()).unwrap_or(1000).max(1))
}

/// An endpoint's secrets, opened for its attempts.
struct Signing {
    v1: Vec<String>,
    v1a: Vec<String>,
}

/// The secrets signing `endpoint`'s attempts at `now`, opened.
fn opened(sealer: &Sealer, endpoint: &EndpointRow, v1a: Option<&Vec<String>>, now: i64) -> Result<Signing, SealError> {
    let open = |sealed: &str| sealer.open(sealed, &endpoint.id);
    Ok(Signing {
        v1: endpoint
            .signing_secrets(now)
            .into_iter()
            .map(open)
            .collect::<Result<_, _>>()?,
        v1a: v1a.into_iter().flatten().map(|k| open(k)).collect::<Result<_, _>>()?,
    })
}

async fn send(state: &Webhooks, endpoint: &EndpointRow, signing: &Signing, message: &MessageRow) -> Outcome {
    let started = Instant::now();
    let url = match url::Url::parse(&endpoint.url) {
        Ok(url) => url,
        Err(e) => return Outcome::failed("blocked", e.to_string(), started),
    };
    if let Err(refusal) = state.guard.check_url(&url) {
        return Outcome::failed("blocked", refusal.to_string(), started);
    }
    let client = if url.scheme() == "https" {
        &state.https
    } else {
        &state.plain
    };
    let now = storage::now_millis();
    let timestamp = now / 1000;
    let v1: Vec<&str> = signing.v1.iter().map(String::as_str).collect();
    let mut signature = signing::header(&v1, &message.id, timestamp, &message.body);
    for key in &signing.v1a {
        signature.push(' ');
        signature.push_str(&signing::sign_v1a(key, &message.id, timestamp, &message.body));
    }
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &message.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(message.body.clone());
    for (name, value) in &endpoint.extra_headers() {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => answered(state, response, started).await,
        Err(error) => Outcome::failed(kind_of(&error), error_text(&error), started),
    }
}

async fn answered(state: &Webhooks, mut response: reqwest::Response, started: Instant) -> Outcome {
    let status = response.status().as_u16();
    let retry_after = matches!(status, 429 | 503)
        .then(|| response.headers().get("retry-after")?.to_str().ok().map(str::to_owned))
        .flatten()
        .and_then(|v| schedule::retry_after(&v, chrono::Utc::now()));
    let limit = state.delivery.response_body_bytes;
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]),
            _ => break,
        }
    }
    let error_kind = match status {
        200..=299 => None,
        300..=399 => Some("redirect"),
        _ => Some("status"),
    };
    Outcome {
        status: Some(status),
        error_kind,
        body: String::from_utf8_lossy(&body).into_owned(),
        duration_ms: elapsed_ms(started),
        retry_after,
    }
}

fn kind_of(error: &reqwest::Error) -> &'static str {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
        {
            return "blocked";
        }
        source = e.source();
    }
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "refused"
    } else {
        "network"
    }
}

fn error_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// What happens to the delivery and its endpoint after `outcome`.
enum Next {
    Delivered,
    RetryIn(i64),
    Spent,
    Disable(&'static str),
}

fn decide(state: &Webhooks, delivery: &DeliveryRow, endpoint: &EndpointRow, outcome: &Outcome, now: i64) -> Next {
    if outcome.succeeded() {
        return Next::Delivered;
    }
    if outcome.status == Some(410) {
        return Next::Disable("gone");
    }
    let failing_since = endpoint.failing_since.unwrap_or(now);
    if now - failing_since >= state.delivery.disable_after.millis() {
        return Next::Disable("failing");
    }
    let made = usize::try_from(delivery.attempts + 1).unwrap_or(usize::MAX);
    match schedule::next_wait(&state.delivery, made, outcome.retry_after) {
        Some(wait) => Next::RetryIn(wait),
        None => Next::Spent,
    }
}

/// Writes outcomes as they come, those waiting together in one transaction, and wakes the
/// dispatcher: a settled delivery makes room for its endpoint's next one.
async fn record_all(state: Arc<Webhooks>, mut outcomes: mpsc::UnboundedReceiver<Made>) {
    while let Some(first) = outcomes.recv().await {
        let mut batch = vec![first];
        while batch.len() < 500 {
            match outcomes.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let now = storage::now_millis();
        let decided: Vec<(Made, Next)> = batch
            .into_iter()
            .map(|made| {
                let next = decide(&state, &made.delivery, &made.endpoint, &made.outcome, now);
                observe(&state, &made, &next, now);
                (made, next)
            })
            .collect();
        // A failing endpoint's attempt, or a failed one, changes what the failing lane may claim.
        let failing = decided
            .iter()
            .any(|(made, next)| made.endpoint.failing_since.is_some() || !matches!(next, Next::Delivered));
        if let Err(error) = record(&state.outbox, state.delivery.clone(), decided, now).await {
            tracing::warn!(%error, "attempt outcomes not recorded; their deliveries are tried again when their leases end");
        }
        if failing {
            state.wake.both();
        } else {
            state.wake.healthy();
        }
    }
}

fn observe(state: &Webhooks, made: &Made, next: &Next, now: i64) {
    let label = match next {
        Next::Delivered => "succeeded",
        Next::RetryIn(_) => "retrying",
        Next::Spent => "failed",
        Next::Disable(_) => "disabled",
    };
    state.metrics.attempts.with_label_values(&[label]).inc();
    state
        .metrics
        .attempt_seconds
        .observe(made.outcome.duration_ms as f64 / 1000.0);
    if matches!(next, Next::Delivered) {
        let event_time = made.message.created_at;
        state
            .metrics
            .event_to_delivery_seconds
            .observe((now - event_time).max(0) as f64 / 1000.0);
    }
}

/// Records a batch of outcomes in one transaction, with the events of the endpoints it
/// disables.
async fn record(
    outbox: &Outbox,
    settings: DeliverySettings,
    mut decided: Vec<(Made, Next)>,
    now: i64,
) -> Result<(), storage::StorageError> {
    // Made before the transaction, which may run twice: an attempt keeps its id.
    let attempts: Vec<AttemptRow> = decided
        .iter_mut()
        .map(|(made, next)| attempt_row(made, next, now))
        .collect();
    outbox
        .write(move |c, events| write(c, events, &settings, &attempts, &decided, now))
        .await
}

/// Records a batch of outcomes: their attempts and deliveries in a statement each, then what
/// they change of their endpoints.
fn write(
    c: &mut storage::AnyConnection,
    events: &mut events::Staged,
    settings: &DeliverySettings,
    attempts: &[AttemptRow],
    decided: &[(Made, Next)],
    now: i64,
) -> Result<(), storage::StorageError> {
    store::insert_attempts(c, attempts)?;
    let settled: Vec<store::Settled<'_>> = decided
        .iter()
        .map(|(made, next)| store::Settled {
            id: &made.delivery.id,
            status: match next {
                Next::Delivered => store::SUCCEEDED,
                Next::RetryIn(_) => store::PENDING,
                Next::Spent | Next::Disable(_) => store::FAILED,
            },
            attempts: made.delivery.attempts + 1,
            next_at: match next {
                Next::RetryIn(wait) => now + wait,
                _ => now,
            },
        })
        .collect();
    store::settle_all(c, &settled, now)?;
    // An endpoint is failing from its first failure after a success; the last outcome of the
    // batch decides.
    let mut failing: HashMap<&str, Option<i64>> = HashMap::new();
    for (made, next) in decided {
        let endpoint = &made.endpoint;
        match next {
            Next::Delivered if endpoint.failing_since.is_some() => failing.insert(&endpoint.id, None),
            Next::RetryIn(_) if endpoint.failing_since.is_none() => failing.insert(&endpoint.id, Some(now)),
            _ => None,
        };
    }
    for (endpoint, since) in failing {
        store::set_failing_since(c, endpoint, since)?;
    }
    for (endpoint, room) in rooms(settings, decided) {
        store::set_room(c, endpoint, room)?;
    }
    for (made, next) in decided {
        if let Next::Disable(reason) = next {
            disable(c, events, &made.endpoint, reason, now)?;
        }
    }
    Ok(())
}

/// The endpoints whose room the batch changes, and their new room.
fn rooms<'a>(settings: &DeliverySettings, decided: &'a [(Made, Next)]) -> Vec<(&'a str, i32)> {
    let fast = settings.fast_answer.millis();
    let mut all_fast: HashMap<&str, (Option<i32>, bool)> = HashMap::new();
    for (made, next) in decided {
        let quick = matches!(next, Next::Delivered) && made.outcome.duration_ms < fast;
        all_fast
            .entry(&made.endpoint.id)
            .and_modify(|(_, yes)| *yes &= quick)
            .or_insert((made.room, quick));
    }
    all_fast
        .into_iter()
        .filter_map(|(endpoint, (room, quick))| Some((endpoint, schedule::next_room(settings, room, quick)?)))
        .collect()
}

fn attempt_row(made: &mut Made, next: &Next, now: i64) -> AttemptRow {
    let outcome = &mut made.outcome;
    AttemptRow {
        id: new_id(),
        delivery_id: made.delivery.id.clone(),
        message_id: made.message.id.clone(),
        endpoint_id: made.endpoint.id.clone(),
        event_type: made.message.event_type.clone(),
        attempted_at: now - outcome.duration_ms,
        duration_ms: outcome.duration_ms,
        status_code: outcome.status.map(i32::from),
        error_kind: outcome.error_kind.map(str::to_owned),
        response_body: std::mem::take(&mut outcome.body),
        succeeded: matches!(next, Next::Delivered),
    }
}

fn disable(
    c: &mut storage::AnyConnection,
    events: &mut events::Staged,
    endpoint: &EndpointRow,
    reason: &'static str,
    now: i64,
) -> Result<(), storage::StorageError> {
    if store::disable(c, &endpoint.id, reason)? {
        let disabled = WebhookEndpointDisabled {
            endpoint_id: endpoint.id.clone(),
            client_id: endpoint.client_id.clone(),
            url: endpoint.url.clone(),
            reason: reason.to_owned(),
            disabled_at: now,
        };
        events.publish(crate::SOURCE, Some(endpoint.id.clone()), &disabled)?;
        tracing::warn!(endpoint.id = %endpoint.id, reason, "webhook endpoint disabled");
    }
    Ok(())
}
