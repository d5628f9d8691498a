//! Applications (OAuth2 clients): each change is stored with the events that tell the platform
//! of it, in one transaction. A change that makes its tokens stale revokes every one of them
//! (a client-wide `token.revoked`).

use events::Outbox;
use events::catalogue::{ApplicationDeleted, ApplicationRegistered, ConsentGranted, Revoked, TokenRevoked};
use ids::ClientId;
use settings::Span;
use storage::StorageError;

use crate::state::SOURCE;
use crate::store::{self, ClientRow};

/// The `application.registered` of a stored application.
pub fn registered(row: &ClientRow) -> ApplicationRegistered {
    ApplicationRegistered {
        client_id: row.id.clone(),
        owner_id: row.owner_id.clone(),
        name: row.name.clone(),
        scopes: row.scopes().names(),
    }
}

/// `token.revoked` for every token `client` was issued until `now`.
fn every_token_of(client: &ClientId, now: i64, ttl: Span) -> TokenRevoked {
    TokenRevoked {
        revoked: Revoked::Client(client.clone()),
        exp: now / 1000 + ttl.secs(),
    }
}

/// Stores a new application with its `application.registered`; returns it.
pub async fn create(outbox: &Outbox, row: ClientRow) -> Result<ClientRow, StorageError> {
    let registered = registered(&row);
    outbox
        .write(move |c, events| {
            store::insert_client(c, &row)?;
            events.publish(SOURCE, Some(row.id.to_string()), &registered)?;
            Ok(row.clone())
        })
        .await
}

/// Replaces the networks (stored form) `client` is accepted from, revoking its tokens.
pub async fn set_networks(
    outbox: &Outbox,
    client: ClientId,
    networks: String,
    access_ttl: Span,
) -> Result<(), StorageError> {
    let revoked = every_token_of(&client, storage::now_millis(), access_ttl);
    outbox
        .write(move |c, events| {
            store::set_client_networks(c, &client, &networks)?;
            events.publish(SOURCE, Some(revoked.subject()), &revoked)
        })
        .await
}

/// Deletes `client` and its refresh tokens, revoking its access tokens.
pub async fn delete(outbox: &Outbox, client: ClientId, access_ttl: Span) -> Result<(), StorageError> {
    let now = storage::now_millis();
    let revoked = every_token_of(&client, now, access_ttl);
    outbox
        .write(move |c, events| {
            store::revoke_client_refresh_tokens(c, &client, now)?;
            store::delete_client(c, &client)?;
            events.publish(SOURCE, Some(revoked.subject()), &revoked)?;
            let deleted = ApplicationDeleted {
                client_id: client.clone(),
            };
            events.publish(SOURCE, Some(client.to_string()), &deleted)
        })
        .await
}

/// Publishes an `application.registered` for every application, then a `consent.granted` for
/// every consent (as of when it was given). Returns how many of each.
pub async fn announce_all(outbox: &Outbox) -> Result<(usize, usize), StorageError> {
    outbox
        .write(|c, events| {
            let clients = store::all_clients(c)?;
            for client in &clients {
                events.publish(SOURCE, Some(client.id.to_string()), &registered(client))?;
            }
            let consents = store::all_consents(c)?;
            for (user, client, scope, granted_at) in &consents {
                let granted = ConsentGranted {
                    user_id: user.clone(),
                    client_id: client.clone(),
                    scopes: scope.split_ascii_whitespace().map(str::to_owned).collect(),
                    granted_at: *granted_at,
                };
                events.publish(SOURCE, Some(user.to_string()), &granted)?;
            }
            Ok((clients.len(), consents.len()))
        })
        .await
}
