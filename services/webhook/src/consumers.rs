//! What the webhook service does on events: keeps its copy of applications and consents
//! (from auth), and turns each public event into the messages the applications allowed to
//! learn of it may receive. Each event is handled once (the inbox), in one transaction with
//! what it changes; the dispatcher is woken after the commit.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::{
    ApplicationDeleted, ApplicationRegistered, ArticleDeleted, ArticlePublished, ArticleUpdated, CommentCreated,
    ConsentGranted, ConsentRevoked, NotificationDelivered, NotificationFailed, NotificationSent, UserDeleted,
    UserUpdated, WebhookEndpointDisabled,
};
use events::{Delivery, Event, EventPayload, Handler, HandlerError};
use storage::{AnyConnection, StorageError};

use crate::domain::event_types;
use crate::domain::fanout::{Fanout, Intake};
use crate::state::Webhooks;
use crate::store;

pub const BINDINGS: [&str; 14] = [
    ApplicationRegistered::TYPE,
    ApplicationDeleted::TYPE,
    ConsentGranted::TYPE,
    ConsentRevoked::TYPE,
    UserUpdated::TYPE,
    UserDeleted::TYPE,
    ArticlePublished::TYPE,
    ArticleUpdated::TYPE,
    ArticleDeleted::TYPE,
    CommentCreated::TYPE,
    WebhookEndpointDisabled::TYPE,
    NotificationSent::TYPE,
    NotificationDelivered::TYPE,
    NotificationFailed::TYPE,
];

pub struct Events(pub Arc<Webhooks>);

fn payload<P: EventPayload>(event: &Event) -> Option<Result<P, StorageError>> {
    event
        .payload::<P>()
        .map(|p| p.map_err(|e| StorageError::Open(format!("{}: {e}", P::TYPE))))
}

/// The projection's change for an event of auth's, if it is one.
fn project(event: &Event, c: &mut AnyConnection) -> Option<Result<(), StorageError>> {
    let result = if let Some(app) = payload::<ApplicationRegistered>(event) {
        app.and_then(|a| {
            Ok(store::upsert_application(
                c,
                &a.client_id,
                &a.owner_id,
                &a.scopes.join(" "),
            )?)
        })
    } else if let Some(app) = payload::<ApplicationDeleted>(event) {
        app.and_then(|a| Ok(store::delete_application(c, &a.client_id)?))
    } else {
        return consents::project(event, c);
    };
    Some(result)
}

/// What an event changes: the projection, or the messages it makes (gathered in `fanout`).
fn take_in(c: &mut AnyConnection, event: &Event, fanout: &mut Fanout) -> Result<(), StorageError> {
    if event_types::find(&event.event_type).is_none() {
        fanout.flush(c)?;
        return project(event, c).unwrap_or(Ok(()));
    }
    let id = event.id.simple().to_string();
    let intake = Intake {
        event_id: &id,
        event_type: &event.event_type,
        time: event.time,
        data: &event.data,
    };
    fanout.add(c, &intake, storage::now_millis())?;
    if let Some(user) = payload::<UserDeleted>(event) {
        fanout.flush(c)?;
        consents::forget_user(c, &user?.user_id)?;
    }
    Ok(())
}

/// Takes in `events` in order, in the caller's transaction.
fn take_in_all(c: &mut AnyConnection, events: &[&Event]) -> Result<(), StorageError> {
    let mut fanout = Fanout::default();
    for event in events {
        take_in(c, event, &mut fanout)?;
    }
    Ok(fanout.write(c)?)
}

#[async_trait]
impl Handler for Events {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let event = delivery.event;
        let taken_in = self
            .0
            .outbox
            .once(crate::NAME, event.id, move |c, _| take_in_all(c, &[&event]))
            .await
            .map_err(HandlerError::new)?;
        // Deliveries may be due now; waking for a projection change costs one empty claim.
        if taken_in {
            self.0.wake.healthy();
        }
        Ok(())
    }

    /// Events waiting together are taken in by one transaction; should it fail, each is taken
    /// in alone, so only the one at fault waits for its retry.
    async fn handle_all(&self, deliveries: Vec<Delivery>) -> Vec<Result<(), HandlerError>> {
        let events: Arc<[Event]> = deliveries.iter().map(|d| d.event.clone()).collect();
        let n = events.len();
        match self
            .0
            .outbox
            .once_each(crate::NAME, events, |c, _, fresh| take_in_all(c, fresh))
            .await
        {
            Ok(taken_in) => {
                if taken_in > 0 {
                    self.0.wake.healthy();
                }
                (0..n).map(|_| Ok(())).collect()
            }
            Err(error) => {
                tracing::warn!(%error, events = n, "events taken together failed; taking each alone");
                let mut results = Vec::with_capacity(n);
                for delivery in deliveries {
                    results.push(self.handle(delivery).await);
                }
                results
            }
        }
    }
}
