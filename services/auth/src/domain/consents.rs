//! What users authorized applications for. A consent only grows by a grant (the consent page,
//! or the password grant, where the user hands the application their credentials) and ends
//! when the user withdraws it; each change publishes its event, so the services that push data
//! out (webhooks, notifications) stop at once.

use events::catalogue::{ConsentGranted, ConsentRevoked, Revoked, TokenRevoked};
use ids::{ClientId, UserId};
use settings::Span;
use storage::{AnyConnection, StorageError};

use crate::domain::Scopes;
use crate::state::{AppState, SOURCE};
use crate::store;

/// Records that `user` authorized `client` for `scopes` (beside what it already had); writes
/// and publishes only when that widens the consent, so a repeated sign-in costs one read.
pub async fn grant(state: &AppState, user: UserId, client: ClientId, scopes: Scopes) -> Result<(), StorageError> {
    state
        .outbox
        .write(move |c, events| {
            let had = store::consent(c, &user, &client)?
                .and_then(|s| Scopes::parse(&s).ok())
                .unwrap_or_default();
            if scopes.is_subset(&had) {
                return Ok(());
            }
            let all = had.union(&scopes);
            let now = storage::now_millis();
            store::save_consent(c, &user, &client, &all.to_string(), now)?;
            let granted = ConsentGranted {
                user_id: user.clone(),
                client_id: client.clone(),
                scopes: all.names(),
                granted_at: now,
            };
            events.publish(SOURCE, Some(user.to_string()), &granted)
        })
        .await
}

/// Ends `user`'s consent to `client` and every token it holds for them (refresh tokens here,
/// access tokens everywhere through `token.revoked` for the pair); false when there was none.
pub async fn withdraw(state: &AppState, user: UserId, client: ClientId) -> Result<bool, StorageError> {
    let ttl = state.oauth.access_token_ttl;
    state
        .outbox
        .write(move |c, events| withdraw_in(c, events, &user, &client, ttl))
        .await
}

fn withdraw_in(
    c: &mut AnyConnection,
    events: &mut events::Staged,
    user: &UserId,
    client: &ClientId,
    access_ttl: Span,
) -> Result<bool, StorageError> {
    let now = storage::now_millis();
    if !store::delete_consent(c, user, client)? {
        return Ok(false);
    }
    store::revoke_user_refresh_tokens_at(c, user, client, now)?;
    let tokens = TokenRevoked {
        revoked: Revoked::Grant {
            client_id: client.clone(),
            user: user.clone(),
        },
        exp: now / 1000 + access_ttl.secs(),
    };
    events.publish(SOURCE, Some(tokens.subject()), &tokens)?;
    let revoked = ConsentRevoked {
        user_id: user.clone(),
        client_id: client.clone(),
        revoked_at: now,
    };
    events.publish(SOURCE, Some(user.to_string()), &revoked)?;
    Ok(true)
}
