//! What the notification service does on events: keeps its copy of applications, consents and
//! users' contact points (auth, user-profile), and fails what a deleted user was still to
//! receive, or what an application a user stopped authorizing was still to send them (held by
//! quiet hours, say: it fails now, not when the hours end). Each event is handled once (the
//! inbox), in one transaction with what it changes.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::{
    ApplicationDeleted, ApplicationRegistered, ConsentRevoked, NotificationFailed, UserDeleted, UserRegistered,
    UserUpdated, VerificationRequested,
};
use events::{Delivery, Event, EventPayload, Handler, HandlerError, Staged};
use storage::{AnyConnection, StorageError};

use crate::state::Dispatch;
use crate::{SOURCE, store};

pub const BINDINGS: [&str; 8] = [
    ApplicationRegistered::TYPE,
    ApplicationDeleted::TYPE,
    consents::EVENT_TYPES[0],
    consents::EVENT_TYPES[1],
    UserRegistered::TYPE,
    UserUpdated::TYPE,
    UserDeleted::TYPE,
    VerificationRequested::TYPE,
];

pub struct Events(pub Arc<Dispatch>);

fn payload<P: EventPayload>(event: &Event) -> Option<Result<P, StorageError>> {
    event
        .payload::<P>()
        .map(|p| p.map_err(|e| StorageError::Open(format!("{}: {e}", P::TYPE))))
}

/// Notifications that will not be sent, told to their providers.
fn announce_failed(staged: &mut Staged, failed: Vec<store::NotificationRow>, reason: &str) -> Result<(), StorageError> {
    let now = storage::now_millis();
    for row in failed {
        let failed = NotificationFailed {
            notification_id: row.id.clone(),
            provider_id: row.provider_id,
            service_id: row.service_id,
            client_id: row.client_id.clone(),
            user_id: row.user_id.clone(),
            channel: None,
            reason: reason.to_owned(),
            failed_at: now,
        };
        staged.publish(SOURCE, Some(row.id), &failed)?;
    }
    Ok(())
}

/// After a withdrawal (unless a later grant overtook it), what the application still had to
/// send the user fails, with the reason the dispatcher would give at send time.
fn withdrawn(c: &mut AnyConnection, staged: &mut Staged, revoked: &ConsentRevoked) -> Result<(), StorageError> {
    if consents::scopes(c, &revoked.user_id, &revoked.client_id)?.is_some_and(|s| !s.is_empty()) {
        return Ok(());
    }
    let reason = crate::domain::routing::Refusal::NoConsent.code();
    let failed = store::fail_queued(
        c,
        &revoked.user_id,
        Some(&revoked.client_id),
        reason,
        storage::now_millis(),
    )?;
    announce_failed(staged, failed, reason)
}

/// The e-mail with the link, queued for the dispatcher as the platform's own message.
fn verification_email(request: &VerificationRequested, event: uuid::Uuid) -> store::NotificationRow {
    let now = storage::now_millis();
    store::NotificationRow {
        id: crate::domain::new_notification_id(),
        client_id: crate::domain::platform_client(),
        provider_id: crate::domain::PLATFORM_PROVIDER,
        service_id: 0,
        user_id: request.user_id.clone(),
        kind: crate::domain::Kind::Notification.name().to_owned(),
        title: "Confirm your e-mail address".to_owned(),
        message: "Open this link to confirm your address; it works once, within a day.".to_owned(),
        link: Some(request.verify_url.clone()),
        picture: None,
        qr_code: None,
        channel: crate::domain::Channel::Email.name().to_owned(),
        urgent: true,
        reference: Some(format!("verification:{event}")),
        fingerprint: event.to_string(),
        status: store::QUEUED.to_owned(),
        reason: None,
        channel_used: None,
        sent_by: None,
        external_id: None,
        attempts: 0,
        due_at: now,
        lease_until: 0,
        created_at: now,
        updated_at: now,
    }
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
        if let Some(revoked) = payload::<ConsentRevoked>(event) {
            withdrawn(c, staged, &revoked?)?;
        }
    } else if let Some(user) = payload::<UserRegistered>(event) {
        let u = user?;
        store::register_recipient(c, &u.user_id, &u.email)?;
    } else if let Some(user) = payload::<UserUpdated>(event) {
        let u = user?;
        store::set_phone(c, &u.user_id, u.phone.as_deref())?;
    } else if let Some(user) = payload::<UserDeleted>(event) {
        let failed = store::forget_user(c, &user?.user_id, storage::now_millis())?;
        announce_failed(staged, failed, "user_deleted")?;
    } else if let Some(request) = payload::<VerificationRequested>(event) {
        let request = request?;
        // The address to confirm is the one to write to.
        store::register_recipient(c, &request.user_id, &request.email)?;
        store::insert_notification(c, &verification_email(&request, event.id))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatcher decides to wait for quiet hours while a withdrawn consent fails the
    /// notification: its postponement must not overwrite the failure's reason.
    #[tokio::test]
    async fn a_notification_failed_while_the_dispatcher_decided_keeps_its_reason() {
        let file = test_support::TestSqlite::create();
        let db = storage::Database::connect(&file.url, &storage::PoolSettings::default()).unwrap();
        db.migrate(&crate::MIGRATION_SETS).await.unwrap();
        let request = VerificationRequested {
            user_id: "ana".parse().unwrap(),
            email: "ana@example.com".into(),
            verify_url: "http://127.0.0.1/verify".into(),
            expires_at: 0,
        };
        let row = verification_email(&request, uuid::Uuid::now_v7());
        let stored = db
            .transaction(move |c| {
                let now = row.created_at;
                store::insert_notification(c, &row)?;
                store::fail_queued(c, "ana", None, "no_consent", now)?;
                store::postpone(c, &row.id, now + 60_000, "quiet_hours", now)?;
                Ok(store::notification(c, &row.id)?)
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.status.as_str(), stored.reason.as_deref()),
            ("failed", Some("no_consent"))
        );
    }
}
