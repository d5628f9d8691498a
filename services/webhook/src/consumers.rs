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

use crate::domain::fanout::{self, Intake};
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

#[async_trait]
impl Handler for Events {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let event = delivery.event;
        let taken_in = self
            .0
            .outbox
            .once(crate::NAME, event.id, move |c, _| {
                if let Some(changed) = project(&event, c) {
                    return changed;
                }
                let id = event.id.simple().to_string();
                let intake = Intake {
                    event_id: &id,
                    event_type: &event.event_type,
                    time: event.time,
                    data: &event.data,
                };
                fanout::fan_out(c, &intake, storage::now_millis())?;
                if let Some(user) = payload::<UserDeleted>(&event) {
                    consents::forget_user(c, &user?.user_id)?;
                }
                Ok(())
            })
            .await
            .map_err(HandlerError::new)?;
        // Deliveries may be due now; waking for a projection change costs one empty claim.
        if taken_in {
            self.0.wake.notify_one();
        }
        Ok(())
    }
}
