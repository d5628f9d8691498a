//! The public catalogue of event types: no token needed, so partners plan an integration
//! before they register.

use http_kit::Envelope;

use crate::domain::event_types;
use crate::views::EventTypeView;

/// Every event type an endpoint may receive, with the scope it needs, its schema and an example.
#[utoipa::path(get, path = "/webhooks/event-types", operation_id = "listEventTypes", tag = "webhooks", security(()),
    responses((status = 200, body = Envelope<Vec<EventTypeView>>)))]
pub async fn list() -> Envelope<Vec<EventTypeView>> {
    Envelope::ok(event_types::all().iter().map(EventTypeView::from).collect())
}
