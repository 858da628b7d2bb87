//! Delivery of codes and challenges: the [`CodeSender`] trait, a console sender for local
//! development and an in-memory outbox for tests. (The Twilio SMS sender lives with the Twilio
//! backend.)

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::Channel;
use crate::error::Result;
use crate::normalize;
use crate::secret::Secret;

/// A message carrying a one-time code or challenge, ready to deliver.
///
/// The body contains the code, so it is a [`Secret`]; `Debug` masks the destination.
#[derive(Clone)]
#[non_exhaustive]
pub struct OutgoingMessage {
    /// The channel to deliver over.
    pub channel: Channel,
    /// Normalized destination (E.164 or email).
    pub to: String,
    /// Subject line, for email.
    pub subject: Option<String>,
    /// The rendered message, code included.
    pub body: Secret,
    /// The code alone (for senders that use provider-side templates, and for test outboxes).
    pub code: Secret,
}

impl OutgoingMessage {
    /// A message to `to` over `channel`.
    pub fn new(channel: Channel, to: impl Into<String>, body: Secret, code: Secret) -> Self {
        OutgoingMessage {
            channel,
            to: to.into(),
            subject: None,
            body,
            code,
        }
    }

    /// Sets the subject line.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

impl fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("channel", &self.channel)
            .field("to", &normalize::mask(&self.to))
            .field("subject", &self.subject)
            .field("body", &self.body)
            .field("code", &self.code)
            .finish()
    }
}

/// Delivers one-time codes and challenges.
///
/// # Contract
/// `send` returns once the message is accepted for delivery; failures are
/// [`Transport`](crate::ErrorKind::Transport) / [`Backend`](crate::ErrorKind::Backend) errors
/// and leave the caller free to retry. Implementations must not log the body or the code except
/// where that is their purpose ([`ConsoleSender`], for local development).
#[async_trait]
pub trait CodeSender: Send + Sync + fmt::Debug {
    /// Delivers one message.
    async fn send(&self, message: &OutgoingMessage) -> Result<()>;
}

/// Prints every message, code included, to standard error. **Development only**: it exists so a
/// newcomer can run the flows without an SMS account.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsoleSender;

#[async_trait]
impl CodeSender for ConsoleSender {
    async fn send(&self, message: &OutgoingMessage) -> Result<()> {
        eprintln!(
            "[keyward console sender] {} to {}: {}",
            message.channel,
            normalize::mask(&message.to),
            message.body.expose_str().unwrap_or("<binary>")
        );
        Ok(())
    }
}

/// Keeps sent messages in memory so tests (and demos) can read the code a user would receive.
/// Holds at most `capacity` messages, dropping the oldest.
#[derive(Debug, Clone)]
pub struct Outbox {
    messages: Arc<Mutex<VecDeque<OutgoingMessage>>>,
    capacity: usize,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new()
    }
}

impl Outbox {
    /// An outbox holding up to 1,000 messages.
    pub fn new() -> Self {
        Outbox::with_capacity(1_000)
    }

    /// An outbox holding up to `capacity` messages.
    pub fn with_capacity(capacity: usize) -> Self {
        Outbox {
            messages: Arc::new(Mutex::new(VecDeque::new())),
            capacity: capacity.max(1),
        }
    }

    /// All messages still held, oldest first.
    pub fn messages(&self) -> Vec<OutgoingMessage> {
        self.lock().iter().cloned().collect()
    }

    /// The most recent message sent to `to` (normalized form), if any.
    pub fn last_to(&self, to: &str) -> Option<OutgoingMessage> {
        self.lock().iter().rev().find(|m| m.to == to).cloned()
    }

    /// The code of the most recent message sent to `to`.
    pub fn last_code_to(&self, to: &str) -> Option<Secret> {
        // Only the code is copied, not the whole message.
        self.lock()
            .iter()
            .rev()
            .find(|m| m.to == to)
            .map(|m| m.code.clone())
    }

    /// Number of messages held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<OutgoingMessage>> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl CodeSender for Outbox {
    async fn send(&self, message: &OutgoingMessage) -> Result<()> {
        let mut messages = self.lock();
        if messages.len() == self.capacity {
            messages.pop_front();
        }
        messages.push_back(message.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outbox_keeps_last_code_per_destination_and_is_bounded() {
        let outbox = Outbox::with_capacity(2);
        for (to, code) in [
            ("+15550000001", "111111"),
            ("+15550000002", "222222"),
            ("+15550000001", "333333"),
        ] {
            let msg = OutgoingMessage::new(
                Channel::Sms,
                to,
                Secret::from(format!("Your code is {code}")),
                Secret::from(code),
            );
            outbox.send(&msg).await.unwrap();
        }
        assert_eq!(outbox.len(), 2);
        assert_eq!(
            outbox.last_code_to("+15550000001").unwrap().expose_str(),
            Some("333333")
        );
        assert!(outbox.last_to("+15550000003").is_none());
        let shown = format!("{:?}", outbox.messages());
        assert!(
            !shown.contains("333333") && !shown.contains("5550000001"),
            "{shown}"
        );
    }
}
