//! What the portal does on events: adds up the gateways' usage reports.

use std::sync::Arc;

use async_trait::async_trait;
use events::catalogue::UsageReported;
use events::{Delivery, Handler, HandlerError};

use crate::state::Portal;

pub const BINDINGS: [&str; 1] = [<UsageReported as events::EventPayload>::TYPE];

pub struct UsageReports(pub Arc<Portal>);

#[async_trait]
impl Handler for UsageReports {
    async fn handle(&self, delivery: Delivery) -> Result<(), HandlerError> {
        let Some(report) = delivery.event.payload::<UsageReported>() else {
            return Ok(());
        };
        let report = report.map_err(HandlerError::new)?;
        self.0
            .store
            .add_usage_once(delivery.event, report)
            .await
            .map_err(HandlerError::new)
    }
}
