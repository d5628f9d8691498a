//! Sends queued notifications. Due rows are claimed from the database with a lease (so several
//! replicas share the work and a crash only delays it), then each is tried: the user's consent
//! and preferences are read again, quiet hours may postpone it, and its channels are walked in
//! turn, each channel's providers in order (the second is the first's failover), skipping a
//! provider whose breaker is open. A provider's transient failure is retried on the schedule;
//! a refusal fails the notification; an address that is gone falls back to the next channel.
//! Every outcome and its event are written in one transaction, shared by the outcomes that
//! come at the same time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache::GcraPolicy;
use events::catalogue::{NotificationDelivered, NotificationFailed, NotificationSent};
use events::{Outbox, Staged};
use rand::Rng;
use storage::{AnyConnection, StorageError};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::channels::{Address, Outgoing, Provider, SendError, Sent};
use crate::destination::{self, Destination};
use crate::domain::routing::{self, Contacts, Refusal};
use crate::domain::{Channel, Kind, PLATFORM_PROVIDER, qr};
use crate::group_commit::GroupCommit;
use crate::metrics::DispatchMetrics;
use crate::state::Dispatch;
use crate::store::{self, InboxRow, NotificationRow, SendRow, Settled};
use crate::{DispatchSettings, SOURCE};

pub async fn run(state: Arc<Dispatch>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(state.dispatch.max_in_flight));
    let mut tasks = JoinSet::new();
    while !shutdown.is_cancelled() {
        let room = slots
            .available_permits()
            .min(usize::try_from(state.dispatch.batch).unwrap_or(1));
        let claimed = if room > 0 {
            claim(&state, room).await
        } else {
            Vec::new()
        };
        let full = !claimed.is_empty() && claimed.len() == room;
        for (row, context) in with_contexts(&state, claimed).await {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let state = state.clone();
            tasks.spawn(async move {
                attempt(&state, row, context).await;
                drop(permit);
            });
        }
        while tasks.try_join_next().is_some() {}
        if full {
            // More are due: claim again once half a batch of tries has ended, not at the next poll.
            let wanted = u32::try_from((room / 2).max(1)).unwrap_or(1);
            tokio::select! {
                () = shutdown.cancelled() => break,
                freed = slots.acquire_many(wanted) => drop(freed),
            }
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = state.wake.notified() => {}
            () = tokio::time::sleep(state.dispatch.poll_interval.0) => sample_backlog(&state).await,
        }
    }
    // Tries in flight end within their timeouts; their outcomes are written before exit.
    while tasks.join_next().await.is_some() {}
}

async fn claim(state: &Dispatch, room: usize) -> Vec<NotificationRow> {
    let now = storage::now_millis();
    let lease_until = now + state.dispatch.lease.millis();
    let limit = i64::try_from(room).unwrap_or(1);
    state
        .store
        .claim(now, lease_until, limit)
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "due notifications not claimed");
            Vec::new()
        })
}

async fn sample_backlog(state: &Dispatch) {
    if let Ok(due) = state.store.due_count(storage::now_millis()).await {
        state.metrics.backlog.set(due);
    }
}

/// What the try needs to know of the user and the service.
struct Context {
    destination: Destination,
    /// The service's channels; `None` once it was deleted.
    allowed: Option<Vec<Channel>>,
}

/// The claimed notifications with what their tries need, read for them all at once. Should
/// that fail, none is tried: their leases run out and they are claimed again.
async fn with_contexts(state: &Dispatch, claimed: Vec<NotificationRow>) -> Vec<(NotificationRow, Context)> {
    if claimed.is_empty() {
        return Vec::new();
    }
    let ids = claimed.iter().map(|row| row.id.clone()).collect();
    let lines = match state.store.try_contexts(ids).await {
        Ok(lines) => lines,
        Err(error) => {
            tracing::warn!(%error, notifications = claimed.len(), "notification contexts not read");
            return Vec::new();
        }
    };
    let mut by_id: HashMap<String, (Option<String>, Vec<store::DestinationLine>)> = HashMap::new();
    for l in lines {
        let entry = by_id.entry(l.notification_id).or_default();
        entry.0 = l.channels;
        entry.1.push(l.line);
    }
    claimed
        .into_iter()
        .filter_map(|row| {
            let (channels, lines) = by_id.remove(&row.id)?;
            let allowed = if row.provider_id == PLATFORM_PROVIDER {
                Some(vec![Channel::Email])
            } else {
                channels.as_deref().map(Channel::list)
            };
            let destination = destination::from_lines(lines);
            Some((row, Context { destination, allowed }))
        })
        .collect()
}

/// How a try ended.
#[derive(Clone)]
enum Outcome {
    /// Taken by a provider (a receipt may follow).
    Sent {
        channel: Channel,
        by: String,
        external_id: Option<String>,
    },
    /// In the user's inbox: the in-app channel, or a sandbox standing in for `channel`.
    Inboxed {
        channel: Channel,
        by: String,
        sandbox: bool,
    },
    Failed {
        channel: Option<Channel>,
        reason: String,
    },
    /// Every provider failed for now.
    Retry {
        channel: Channel,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Not tried: until then.
    Wait {
        until: i64,
        reason: &'static str,
    },
}

async fn attempt(state: &Dispatch, row: NotificationRow, context: Context) {
    let id = row.id.clone();
    let mut log = Vec::new();
    let mut stale = Vec::new();
    let outcome = match plan(&row, &context, storage::now_millis()) {
        Ok(channels) => {
            walk(
                state,
                &row,
                &context.destination.contacts,
                &channels,
                &mut log,
                &mut stale,
            )
            .await
        }
        Err(outcome) => outcome,
    };
    let tried = Tried {
        row,
        outcome,
        log,
        stale,
    };
    if let Err(error) = state.recorder.submit(tried).await {
        tracing::warn!(%error, notification.id = %id, "notification outcome not recorded; it will be tried again");
    }
}

/// The channels to try, or why there is nothing to try now.
fn plan(row: &NotificationRow, context: &Context, now: i64) -> Result<Vec<Channel>, Outcome> {
    let failed = |reason: &str| Outcome::Failed {
        channel: None,
        reason: reason.to_owned(),
    };
    let kind = Kind::from_name(&row.kind).unwrap_or(Kind::Notification);
    let Some(allowed) = &context.allowed else {
        return Err(failed("service_deleted"));
    };
    if row.provider_id == PLATFORM_PROVIDER {
        // The platform's account mail: to the address, whatever the person's channel choices.
        return if context.destination.contacts.reaches(Channel::Email) {
            Ok(vec![Channel::Email])
        } else {
            Err(failed(Refusal::NoContact.code()))
        };
    }
    routing::admits(
        kind,
        context.destination.consent.as_deref(),
        &context.destination.prefs,
        row.provider_id,
    )
    .map_err(|r| failed(r.code()))?;
    if let Some(until) = context.destination.prefs.quiet_until(now).filter(|_| !row.urgent) {
        return Err(Outcome::Wait {
            until,
            reason: "quiet_hours",
        });
    }
    let requested = Channel::from_name(&row.channel).unwrap_or(Channel::Inapp);
    routing::channels(
        requested,
        allowed,
        &context.destination.prefs,
        row.provider_id,
        &context.destination.contacts,
    )
    .map_err(|r: Refusal| failed(r.code()))
}

fn address<'a>(channel: Channel, row: &'a NotificationRow, contacts: &'a Contacts) -> Address<'a> {
    match channel {
        Channel::Sms => Address::Phone(contacts.phone.as_deref().unwrap_or_default()),
        Channel::Email => Address::Email(contacts.email.as_deref().unwrap_or_default()),
        Channel::Fcm => Address::Devices(&contacts.devices),
        Channel::Sat | Channel::Inapp => Address::User(&row.user_id),
    }
}

/// How long until `provider`'s rate limit lets one more send go; `None`: now (a cache that
/// cannot answer lets it go).
async fn rate_wait(state: &Dispatch, provider: &Provider) -> Option<Duration> {
    let rate = provider.rate_limit?;
    let policy = GcraPolicy::per_second(rate);
    let decision = state
        .rates
        .check(&format!("provider:{}", provider.name), &policy)
        .await
        .ok()?;
    (!decision.allowed).then_some(decision.retry_after)
}

/// The channels in turn, each through its providers ([`failover`]); the in-app channel always
/// takes it.
async fn walk(
    state: &Dispatch,
    row: &NotificationRow,
    contacts: &Contacts,
    channels: &[Channel],
    log: &mut Vec<SendRow>,
    stale: &mut Vec<String>,
) -> Outcome {
    let qr_svg = row.qr_code.as_deref().and_then(|data| qr::svg(data).ok());
    let (mut last_gone, mut held) = (None, None);
    for &channel in channels {
        if channel == Channel::Inapp {
            return Outcome::Inboxed {
                channel,
                by: "inbox".to_owned(),
                sandbox: false,
            };
        }
        let out = outgoing(row, channel, contacts, qr_svg.as_deref());
        match failover(state, channel, &out, log, stale).await {
            Channelled::Ended(outcome) => return outcome,
            Channelled::GaveWay { gone, breakers } => {
                last_gone = gone.or(last_gone);
                held = breakers.map(|wait| (channel, wait)).or(held);
            }
        }
    }
    // Providers that failed so often they are skipped a while are not reasons to fail.
    if let Some((channel, wait)) = held {
        return Outcome::Retry {
            channel,
            reason: "breaker_open".to_owned(),
            retry_after: Some(wait),
        };
    }
    Outcome::Failed {
        channel: None,
        reason: last_gone.map_or_else(|| "no_provider".to_owned(), |r| format!("no_contact: {r}")),
    }
}

fn outgoing<'a>(
    row: &'a NotificationRow,
    channel: Channel,
    contacts: &'a Contacts,
    qr_svg: Option<&'a str>,
) -> Outgoing<'a> {
    Outgoing {
        id: &row.id,
        kind: Kind::from_name(&row.kind).unwrap_or(Kind::Notification),
        title: &row.title,
        message: &row.message,
        link: row.link.as_deref(),
        picture: row.picture.as_deref(),
        qr_svg,
        to: address(channel, row, contacts),
    }
}

/// Where a channel's providers left the notification.
enum Channelled {
    Ended(Outcome),
    /// To the next channel; `gone`: why the address is no more, if a provider said so;
    /// `breakers`: how soon one of its providers skipped for its breaker may be tried.
    GaveWay {
        gone: Option<String>,
        breakers: Option<Duration>,
    },
}

/// What one provider's answer means for the walk.
enum Answer {
    Ended(Outcome),
    /// The address is gone: the channel gives way.
    Gone(String),
    /// Failed for now: the next provider is the failover.
    Transient(String, Option<Duration>),
}

/// A channel's providers in order, each the failover of the one before, skipping those whose
/// breaker is open and those at their rate.
async fn failover(
    state: &Dispatch,
    channel: Channel,
    out: &Outgoing<'_>,
    log: &mut Vec<SendRow>,
    stale: &mut Vec<String>,
) -> Channelled {
    let mut transient: Option<(String, Option<Duration>)> = None;
    let mut paced: Option<Duration> = None;
    let (mut gone, mut breakers) = (None, None);
    for provider in state.senders.of_channel(channel) {
        if let Err(wait) = provider.breaker.admit() {
            breakers = Some(breakers.map_or(wait, |b: Duration| b.min(wait)));
            continue;
        }
        if let Some(wait) = rate_wait(state, provider).await {
            paced = Some(paced.map_or(wait, |p| p.min(wait)));
            continue;
        }
        let (result, send) = call(state, provider, out).await;
        log.push(send);
        match answer(channel, provider, result, stale) {
            Answer::Ended(outcome) => return Channelled::Ended(outcome),
            Answer::Gone(reason) => {
                gone = Some(reason);
                break;
            }
            Answer::Transient(reason, retry_after) => transient = Some((reason, retry_after)),
        }
    }
    // Providers that failed for now are tried again later, and one at its rate waits
    // untried; a channel that has none able to try (none configured, breakers open) or
    // whose address is gone gives way.
    if let Some((reason, retry_after)) = transient {
        return Channelled::Ended(Outcome::Retry {
            channel,
            reason,
            retry_after,
        });
    }
    if let Some(wait) = paced {
        let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX).max(1);
        return Channelled::Ended(Outcome::Wait {
            until: storage::now_millis() + wait,
            reason: "rate_limited",
        });
    }
    Channelled::GaveWay { gone, breakers }
}

fn answer(channel: Channel, provider: &Provider, result: Result<Sent, SendError>, stale: &mut Vec<String>) -> Answer {
    match result {
        Ok(Sent::Accepted {
            external_id,
            stale_devices,
        }) => {
            stale.extend(stale_devices);
            Answer::Ended(Outcome::Sent {
                channel,
                by: provider.name.clone(),
                external_id,
            })
        }
        Ok(Sent::Recorded) => Answer::Ended(Outcome::Inboxed {
            channel,
            by: provider.name.clone(),
            sandbox: true,
        }),
        Err(SendError::Rejected { reason }) => Answer::Ended(Outcome::Failed {
            channel: Some(channel),
            reason: format!("rejected: {reason}"),
        }),
        Err(SendError::Unreachable { reason, stale_devices }) => {
            stale.extend(stale_devices);
            Answer::Gone(reason)
        }
        Err(SendError::Transient { reason, retry_after }) => {
            Answer::Transient(format!("{}: {reason}", provider.name), retry_after)
        }
    }
}

/// One provider call, timed and bounded, with its line for the log.
async fn call(state: &Dispatch, provider: &Provider, out: &Outgoing<'_>) -> (Result<Sent, SendError>, SendRow) {
    let started = Instant::now();
    let attempted_at = storage::now_millis();
    let result = match tokio::time::timeout(state.dispatch.send_timeout.0, provider.sender.send(out)).await {
        Ok(result) => result,
        Err(_) => Err(SendError::transient("timed out")),
    };
    let elapsed = started.elapsed();
    state
        .metrics
        .provider_seconds
        .with_label_values(&[provider.name.as_str()])
        .observe(elapsed.as_secs_f64());
    let (outcome, error) = match &result {
        Ok(Sent::Accepted { .. }) => ("sent", None),
        Ok(Sent::Recorded) => ("recorded", None),
        Err(e @ SendError::Transient { .. }) => ("failed", Some(e.to_string())),
        Err(e @ SendError::Rejected { .. }) => ("rejected", Some(e.to_string())),
        Err(e @ SendError::Unreachable { .. }) => ("unreachable", Some(e.to_string())),
    };
    match &result {
        Err(SendError::Transient { .. }) => provider.breaker.failed(),
        _ => provider.breaker.succeeded(),
    }
    state
        .metrics
        .sends
        .with_label_values(&[provider.channel.name(), provider.name.as_str(), outcome])
        .inc();
    let send = SendRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        notification_id: out.id.to_owned(),
        channel: provider.channel.name().to_owned(),
        provider: provider.name.clone(),
        attempted_at,
        duration_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
        outcome: outcome.to_owned(),
        error,
    };
    (result, send)
}

/// The wait before try number `tries + 1`, with jitter; `None` once the schedule is spent.
fn next_wait(settings: &DispatchSettings, tries: usize, retry_after: Option<Duration>) -> Option<i64> {
    let base = settings.schedule.get(tries)?.millis();
    let jitter = base * i64::from(settings.jitter_percent) / 100;
    let wait = base
        + if jitter > 0 {
            rand::thread_rng().gen_range(0..=jitter)
        } else {
            0
        };
    let asked = retry_after.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Some(wait.max(asked))
}

fn inbox_row(row: &NotificationRow, channel: Channel, sandbox: bool, now: i64) -> InboxRow {
    InboxRow {
        id: format!("inb_{}", uuid::Uuid::now_v7().simple()),
        user_id: row.user_id.clone(),
        notification_id: row.id.clone(),
        provider_id: row.provider_id,
        kind: row.kind.clone(),
        channel: channel.name().to_owned(),
        title: row.title.clone(),
        message: row.message.clone(),
        link: row.link.clone(),
        picture: row.picture.clone(),
        qr_code: row.qr_code.clone(),
        sandbox,
        created_at: now,
        read_at: None,
    }
}

fn sent_event(row: &NotificationRow, channel: Channel, by: &str, now: i64) -> NotificationSent {
    NotificationSent {
        notification_id: row.id.clone(),
        provider_id: row.provider_id,
        service_id: row.service_id,
        client_id: row.client_id.clone(),
        user_id: row.user_id.clone(),
        channel: channel.name().to_owned(),
        sent_by: by.to_owned(),
        sent_at: now,
    }
}

pub(crate) fn delivered_event(row: &NotificationRow, channel: &str, now: i64) -> NotificationDelivered {
    NotificationDelivered {
        notification_id: row.id.clone(),
        provider_id: row.provider_id,
        service_id: row.service_id,
        client_id: row.client_id.clone(),
        user_id: row.user_id.clone(),
        channel: channel.to_owned(),
        delivered_at: now,
    }
}

pub(crate) fn failed_event(
    row: &NotificationRow,
    channel: Option<Channel>,
    reason: &str,
    now: i64,
) -> NotificationFailed {
    NotificationFailed {
        notification_id: row.id.clone(),
        provider_id: row.provider_id,
        service_id: row.service_id,
        client_id: row.client_id.clone(),
        user_id: row.user_id.clone(),
        channel: channel.map(|c| c.name().to_owned()),
        reason: reason.to_owned(),
        failed_at: now,
    }
}

/// A final outcome, by status and the reason's code, counted once its transaction committed.
struct Final {
    status: &'static str,
    reason: String,
}

/// A try to record: the notification as claimed, what became of it, every provider call made
/// and the device tokens found stale.
#[derive(Clone)]
pub struct Tried {
    row: NotificationRow,
    outcome: Outcome,
    log: Vec<SendRow>,
    stale: Vec<String>,
}

/// Tries recorded at the same time at most share a transaction.
const SETTLE_BATCH: usize = 64;

/// Records tries' outcomes, those ending together in one transaction, and counts the final
/// ones once committed.
pub fn recorder(outbox: Outbox, settings: DispatchSettings, metrics: DispatchMetrics) -> GroupCommit<Tried> {
    GroupCommit::start(SETTLE_BATCH, move |tried: Vec<Tried>| {
        let (outbox, settings, metrics) = (outbox.clone(), settings.clone(), metrics.clone());
        async move {
            let now = storage::now_millis();
            let finals = outbox
                .write(move |c, staged| write_tried(&settings, c, staged, &tried, now))
                .await?;
            for Final { status, reason } in finals {
                metrics.outcomes.with_label_values(&[status, &reason]).inc();
            }
            Ok(())
        }
    })
}

/// What the tries change, gathered to be written in a statement per table.
#[derive(Default)]
struct Changes {
    settled: Vec<Settled>,
    inbox: Vec<InboxRow>,
}

fn write_tried(
    settings: &DispatchSettings,
    c: &mut AnyConnection,
    staged: &mut Staged,
    tried: &[Tried],
    now: i64,
) -> Result<Vec<Final>, StorageError> {
    let log: Vec<SendRow> = tried.iter().flat_map(|t| t.log.iter().cloned()).collect();
    store::insert_sends(c, &log)?;
    let stale: Vec<String> = tried.iter().flat_map(|t| t.stale.iter().cloned()).collect();
    if !stale.is_empty() {
        store::delete_tokens(c, &stale)?;
    }
    let mut changes = Changes::default();
    let mut finals = Vec::new();
    for t in tried {
        if let Some(done) = record(settings, c, staged, &mut changes, &t.row, &t.outcome, now)? {
            finals.push(done);
        }
    }
    store::insert_inbox(c, &changes.inbox)?;
    store::settle_all(c, &changes.settled, now)?;
    Ok(finals)
}

/// The row's new state and the events it publishes, for an outcome; what it came to, if final.
fn record(
    settings: &DispatchSettings,
    c: &mut AnyConnection,
    staged: &mut Staged,
    changes: &mut Changes,
    row: &NotificationRow,
    outcome: &Outcome,
    now: i64,
) -> Result<Option<Final>, StorageError> {
    let settled = match outcome {
        Outcome::Wait { until, reason } => {
            store::postpone(c, &row.id, *until, reason, now)?;
            return Ok(None);
        }
        Outcome::Sent {
            channel,
            by,
            external_id,
        } => sent(staged, row, (*channel, by, external_id.clone()), now)?,
        Outcome::Inboxed { channel, by, sandbox } => {
            changes.inbox.push(inbox_row(row, *channel, *sandbox, now));
            inboxed(staged, row, (*channel, by), now)?
        }
        Outcome::Retry {
            channel,
            reason,
            retry_after,
        } => retried(settings, staged, row, (*channel, reason, *retry_after), now)?,
        Outcome::Failed { channel, reason } => Settled {
            channel_used: channel.map(Channel::name),
            ..failed(staged, row, *channel, reason.clone(), now)?
        },
    };
    let done = final_outcome(&settled);
    changes.settled.push(settled);
    Ok(done)
}

/// A try as recorded before what it came to: failed, nothing learnt, at its old due time.
fn tried(row: &NotificationRow) -> Settled {
    Settled {
        id: row.id.clone(),
        status: store::FAILED,
        reason: None,
        channel_used: None,
        sent_by: None,
        external_id: None,
        attempts: row.attempts + 1,
        due_at: row.due_at,
    }
}

/// Taken by provider `by` (known there as `external_id`, if it said).
fn sent(
    staged: &mut Staged,
    row: &NotificationRow,
    (channel, by, external_id): (Channel, &str, Option<String>),
    now: i64,
) -> Result<Settled, StorageError> {
    staged.publish(SOURCE, Some(row.id.clone()), &sent_event(row, channel, by, now))?;
    Ok(Settled {
        status: store::SENT,
        channel_used: Some(channel.name()),
        sent_by: Some(by.to_owned()),
        external_id,
        ..tried(row)
    })
}

/// Every provider of `channel` failed for now: queued again after the schedule's next wait,
/// or failed once it is spent.
fn retried(
    settings: &DispatchSettings,
    staged: &mut Staged,
    row: &NotificationRow,
    (channel, reason, retry_after): (Channel, &str, Option<Duration>),
    now: i64,
) -> Result<Settled, StorageError> {
    let tries = usize::try_from(row.attempts + 1).unwrap_or(usize::MAX);
    match next_wait(settings, tries, retry_after) {
        Some(wait) => Ok(Settled {
            status: store::QUEUED,
            reason: Some(reason.to_owned()),
            due_at: now + wait,
            ..tried(row)
        }),
        None => failed(staged, row, Some(channel), format!("retries_exhausted: {reason}"), now),
    }
}

/// In the user's inbox (`by` the inbox, or a sandbox standing in for `channel`): sent and
/// delivered at once.
fn inboxed(
    staged: &mut Staged,
    row: &NotificationRow,
    (channel, by): (Channel, &str),
    now: i64,
) -> Result<Settled, StorageError> {
    let subject = Some(row.id.clone());
    staged.publish(SOURCE, subject.clone(), &sent_event(row, channel, by, now))?;
    staged.publish(SOURCE, subject, &delivered_event(row, channel.name(), now))?;
    Ok(Settled {
        status: store::DELIVERED,
        channel_used: Some(channel.name()),
        sent_by: Some(by.to_owned()),
        ..tried(row)
    })
}

/// Failed for `reason`, with its event (naming `channel`, the one that failed, if any).
fn failed(
    staged: &mut Staged,
    row: &NotificationRow,
    channel: Option<Channel>,
    reason: String,
    now: i64,
) -> Result<Settled, StorageError> {
    staged.publish(SOURCE, Some(row.id.clone()), &failed_event(row, channel, &reason, now))?;
    Ok(Settled {
        reason: Some(reason),
        ..tried(row)
    })
}

fn final_outcome(settled: &Settled) -> Option<Final> {
    let status = [store::DELIVERED, store::FAILED]
        .into_iter()
        .find(|s| *s == settled.status)?;
    let reason = settled
        .reason
        .as_deref()
        .map_or("", |r| r.split(':').next().unwrap_or(r));
    Some(Final {
        status,
        reason: reason.to_owned(),
    })
}
