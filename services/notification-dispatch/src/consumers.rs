//! What the notification service does on events: keeps its copy of applications, consents and
//! users' contact points (auth, user-profile), and queues each accepted notification. Each
//! event is handled once (the inbox), in one transaction with what it changes.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::{
    ApplicationDeleted, ApplicationRegistered, ConsentGranted, ConsentRevoked, NotificationFailed,
    NotificationRequested, UserDeleted, UserRegistered, UserUpdated,
};
use events::{Delivery, Event, EventPayload, Handler, HandlerError, Staged};
use storage::{AnyConnection, StorageError};

use crate::state::Dispatch;
use crate::{SOURCE, store};

pub const BINDINGS: [&str; 8] = [
    ApplicationRegistered::TYPE,
    ApplicationDeleted::TYPE,
    ConsentGranted::TYPE,
    ConsentRevoked::TYPE,
    UserRegistered::TYPE,
    UserUpdated::TYPE,
    UserDeleted::TYPE,
    NotificationRequested::TYPE,
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

/// The change an event makes; `true` when a notification was queued.
fn apply(event: &Event, c: &mut AnyConnection, staged: &mut Staged) -> Result<bool, StorageError> {
    if let Some(app) = payload::<ApplicationRegistered>(event) {
        let app = app?;
        store::upsert_application(c, &app.client_id, &app.owner_id)?;
    } else if let Some(app) = payload::<ApplicationDeleted>(event) {
        store::delete_application(c, &app?.client_id)?;
    } else if let Some(consent) = payload::<ConsentGranted>(event) {
        let g = consent?;
        store::set_consent(c, &g.user_id, &g.client_id, &g.scopes.join(" "), g.granted_at)?;
    } else if let Some(consent) = payload::<ConsentRevoked>(event) {
        let r = consent?;
        store::set_consent(c, &r.user_id, &r.client_id, "", r.revoked_at)?;
    } else if let Some(user) = payload::<UserRegistered>(event) {
        let u = user?;
        store::register_recipient(c, &u.user_id, &u.email)?;
    } else if let Some(user) = payload::<UserUpdated>(event) {
        let u = user?;
        store::set_phone(c, &u.user_id, u.phone.as_deref())?;
    } else if let Some(user) = payload::<UserDeleted>(event) {
        forget(c, staged, &user?.user_id)?;
    } else if let Some(requested) = payload::<NotificationRequested>(event) {
        return Ok(store::queue(c, &requested?.notification_id, storage::now_millis())?);
    }
    Ok(false)
}

#[async_trait]
impl Handler for Events {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let event = delivery.event;
        let queued = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = queued.clone();
        self.0
            .outbox
            .once(crate::NAME, event.id, move |c, staged| {
                flag.store(apply(&event, c, staged)?, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            })
            .await
            .map_err(HandlerError::new)?;
        if queued.load(std::sync::atomic::Ordering::Relaxed) {
            self.0.wake.notify_one();
        }
        Ok(())
    }
}
