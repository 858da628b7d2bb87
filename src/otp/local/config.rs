//! Limits, texts and the builder setters of the self-hosted provider.

use std::time::Duration;

use super::LocalOtpProvider;
use crate::builder::Builder;
use crate::error::{Error, Result};
use crate::otp::template::MessageTemplates;

/// A per-destination send limit: at most `max_sends` codes to one destination per `window`
/// (fixed windows aligned on the Unix epoch), across all its verifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendRateLimit {
    /// Codes allowed per window.
    pub max_sends: u32,
    /// Window length.
    pub window: Duration,
}

impl SendRateLimit {
    /// At most `max_sends` codes per `window`.
    pub fn new(max_sends: u32, window: Duration) -> Self {
        SendRateLimit { max_sends, window }
    }
}

impl Default for SendRateLimit {
    /// 10 codes per destination per hour.
    fn default() -> Self {
        SendRateLimit::new(10, Duration::from_secs(3_600))
    }
}

/// An overall send budget: at most `max_sends` codes per `window` for the whole provider (the
/// app), and at most `max_sends_per_client` per window for one client key
/// ([`StartVerification::client`](crate::otp::StartVerification::client)). Fixed windows aligned on the Unix epoch. It bounds what a
/// flood of different destinations costs, which the per-destination limit cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendBudget {
    /// Codes the whole provider sends per window.
    pub max_sends: u32,
    /// Codes one client key triggers per window.
    pub max_sends_per_client: u32,
    /// Window length.
    pub window: Duration,
}

impl SendBudget {
    /// At most `max_sends` codes per `window`, `max_sends_per_client` of them for one client.
    pub fn new(max_sends: u32, max_sends_per_client: u32, window: Duration) -> Self {
        SendBudget {
            max_sends,
            max_sends_per_client,
            window,
        }
    }
}

impl Default for SendBudget {
    /// 1 000 codes per hour for the provider, 20 per client key.
    fn default() -> Self {
        SendBudget::new(1_000, 20, Duration::from_secs(3_600))
    }
}

/// Limits and texts of a [`LocalOtpProvider`]. Defaults follow Twilio Verify.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalOtpConfig {
    /// Digits in a generated code, 4 to 10. Default 6.
    pub code_length: u8,
    /// How long a code is accepted after the verification starts (re-sends do not extend it).
    /// Default 10 minutes.
    pub code_ttl: Duration,
    /// Checks allowed per verification, right one included. Default 5.
    pub max_check_attempts: u32,
    /// Sends allowed per verification, first one included. Default 5.
    pub max_sends: u32,
    /// Per-destination send limit across verifications; `None` disables it. Default 10 per hour.
    pub send_rate_limit: Option<SendRateLimit>,
    /// Overall and per-client send budget; `None` disables it. Default 1 000 per hour, 20 per
    /// client key.
    pub send_budget: Option<SendBudget>,
    /// How long an ended verification still answers with a specific error (`Expired`,
    /// `TooManyAttempts`) before it is simply `NotFound`. Default 10 minutes.
    pub tombstone_ttl: Duration,
    /// Message texts.
    pub templates: MessageTemplates,
}

impl Default for LocalOtpConfig {
    fn default() -> Self {
        LocalOtpConfig {
            code_length: 6,
            code_ttl: Duration::from_secs(600),
            max_check_attempts: 5,
            max_sends: 5,
            send_rate_limit: Some(SendRateLimit::default()),
            send_budget: Some(SendBudget::default()),
            tombstone_ttl: Duration::from_secs(600),
            templates: MessageTemplates::default(),
        }
    }
}

impl LocalOtpConfig {
    pub(super) fn validate(&self) -> Result<()> {
        if !(4..=10).contains(&self.code_length) {
            return Err(Error::config("code length must be between 4 and 10"));
        }
        if self.code_ttl < Duration::from_secs(1) {
            return Err(Error::config("code lifetime must be at least one second"));
        }
        if self.max_check_attempts == 0 || self.max_sends == 0 {
            return Err(Error::config(
                "check and send limits must allow at least one",
            ));
        }
        if let Some(limit) = self.send_rate_limit
            && (limit.max_sends == 0 || limit.window < Duration::from_secs(1))
        {
            return Err(Error::config(
                "a send rate limit needs at least one send per window of at least one second",
            ));
        }
        if let Some(budget) = self.send_budget
            && (budget.max_sends == 0
                || budget.max_sends_per_client == 0
                || budget.window < Duration::from_secs(1))
        {
            return Err(Error::config(
                "a send budget needs at least one send per window of at least one second",
            ));
        }
        Ok(())
    }
}

/// Builds a [`LocalOtpProvider`]; see [`LocalOtpProvider::builder`]. The clock and random
/// source come from [`Builder::env`], the whole configuration from [`Builder::config`]; the
/// setters below change one field of the [`LocalOtpConfig`].
pub type LocalOtpBuilder = Builder<LocalOtpProvider, LocalOtpConfig>;

impl Builder<LocalOtpProvider, LocalOtpConfig> {
    /// Digits in generated codes (4 to 10).
    pub fn code_length(mut self, digits: u8) -> Self {
        self.config.code_length = digits;
        self
    }

    /// Code lifetime.
    pub fn code_ttl(mut self, ttl: Duration) -> Self {
        self.config.code_ttl = ttl;
        self
    }

    /// Checks allowed per verification.
    pub fn max_check_attempts(mut self, attempts: u32) -> Self {
        self.config.max_check_attempts = attempts;
        self
    }

    /// Sends allowed per verification.
    pub fn max_sends(mut self, sends: u32) -> Self {
        self.config.max_sends = sends;
        self
    }

    /// Per-destination send limit (`None` disables it).
    pub fn send_rate_limit(mut self, limit: Option<SendRateLimit>) -> Self {
        self.config.send_rate_limit = limit;
        self
    }

    /// Overall and per-client send budget (`None` disables it).
    pub fn send_budget(mut self, budget: Option<SendBudget>) -> Self {
        self.config.send_budget = budget;
        self
    }

    /// How long ended verifications keep answering with a specific error.
    pub fn tombstone_ttl(mut self, ttl: Duration) -> Self {
        self.config.tombstone_ttl = ttl;
        self
    }

    /// Message texts.
    pub fn templates(mut self, templates: MessageTemplates) -> Self {
        self.config.templates = templates;
        self
    }
}
