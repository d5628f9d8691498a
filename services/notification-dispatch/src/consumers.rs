//! What the notification service does on events: keeps its copy of applications, consents and
//! users' contact points (auth, user-profile), and fails what a deleted user was still to
//! receive. Each event is handled once (the inbox), in one transaction with what it changes.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::{
    ApplicationDeleted, ApplicationRegistered, NotificationFailed, UserDeleted, UserRegistered, UserUpdated,
};
use events::{Delivery, Event, EventPayload, Handler, HandlerError, Staged};
use storage::{AnyConnection, StorageError};

use crate::state::Dispatch;
use crate::{SOURCE, store};

pub const BINDINGS: [&str; 7] = [
    ApplicationRegistered::TYPE,
    ApplicationDeleted::TYPE,
    consents::EVENT_TYPES[0],
    consents::EVENT_TYPES[1],
    UserRegistered::TYPE,
    UserUpdated::TYPE,
    UserDeleted::TYPE,
];

pub struct Events(pub Arc<Dispatch>);

fn payload<P: EventPayload>(event: &Event) -> Option<Result<P, StorageError>> {
    event
        .payload::<P>()
        .map(|p| p.map_err(|e| StorageError::Open(format!("{}: {e}", P::TYPE))))
}

/// A deleted user's notifications not yet sent fail, and their providers hear of it.
fn forget(c: &mut AnyConnection, staged: &mut Staged, user: &str) -> Result<(), StorageError> {
    let now = storage::now_millis();
    for row in store::forget_user(c, user, now)? {
        let failed = NotificationFailed {
            notification_id: row.id.clone(),
            provider_id: row.provider_id,
            service_id: row.service_id,
            client_id: row.client_id.clone(),
            user_id: row.user_id.clone(),
            channel: None,
            reason: "user_deleted".to_owned(),
            failed_at: now,
        };
        staged.publish(SOURCE, Some(row.id), &failed)?;
    }
    Ok(())
}

/// The change an event makes.
fn apply(event: &Event, c: &mut AnyConnection, staged: &mut Staged) -> Result<(), StorageError> {
    if let Some(app) = payload::<ApplicationRegistered>(event) {
        let app = app?;
        store::upsert_application(c, &app.client_id, &app.owner_id)?;
    } else if let Some(app) = payload::<ApplicationDeleted>(event) {
        store::delete_application(c, &app?.client_id)?;
    } else if let Some(changed) = consents::project(event, c) {
        changed?;
    } else if let Some(user) = payload::<UserRegistered>(event) {
        let u = user?;
        store::register_recipient(c, &u.user_id, &u.email)?;
    } else if let Some(user) = payload::<UserUpdated>(event) {
        let u = user?;
        store::set_phone(c, &u.user_id, u.phone.as_deref())?;
    } else if let Some(user) = payload::<UserDeleted>(event) {
        forget(c, staged, &user?.user_id)?;
    }
    Ok(())
}

#[async_trait]
impl Handler for Events {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let event = delivery.event;
        self.0
            .outbox
            .once(crate::NAME, event.id, move |c, staged| apply(&event, c, staged))
            .await
            .map_err(HandlerError::new)?;
        Ok(())
    }
}
