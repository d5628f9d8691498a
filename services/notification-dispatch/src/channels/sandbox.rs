//! The sandbox provider: sends nothing, and the notification is recorded in the user's inbox
//! labelled with the channel it would have taken, so a newcomer sees the whole flow without an
//! SMSC, FCM project or mail server.

use async_trait::async_trait;

use super::{Outgoing, SendError, Sender, Sent};

pub struct Sandbox;

#[async_trait]
impl Sender for Sandbox {
    async fn send(&self, _: &Outgoing<'_>) -> Result<Sent, SendError> {
        Ok(Sent::Recorded)
    }

    async fn check(&self) -> Result<(), String> {
        Ok(())
    }

    fn sandbox(&self) -> bool {
        true
    }
}
