//! What the portal does on events: adds up the gateways' usage reports.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::UsageReported;
use events::{Delivery, Handler, HandlerError};

use crate::state::Portal;
use crate::{NAME, store};

pub const BINDINGS: [&str; 1] = [<UsageReported as events::EventPayload>::TYPE];

pub struct UsageReports(pub Arc<Portal>);

#[async_trait]
impl Handler for UsageReports {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let Some(report) = delivery.event.payload::<UsageReported>() else {
            return Ok(());
        };
        let report = report.map_err(HandlerError::new)?;
        let id = delivery.event.id;
        // Counted once even if the broker delivers it again.
        self.0
            .db
            .transaction(move |c| {
                if events::inbox::first_time(c, NAME, &id)? {
                    store::add_usage(c, &report)?;
                }
                Ok(())
            })
            .await
            .map_err(HandlerError::new)
    }
}
