//! Send limits: the overall budget (per provider, per client key) and the per-destination
//! rate limit, each an atomic counter of its own key and window.

use std::time::Duration;

use ring::hmac;

use super::LocalOtpProvider;
use crate::error::{Error, ErrorKind, Result};
use crate::store::Key;

impl LocalOtpProvider {
    /// Counts one send against the overall budget: the provider's, then `client`'s.
    pub(super) async fn count_budget(&self, client: Option<&str>) -> Result<()> {
        let Some(budget) = self.config.send_budget else {
            return Ok(());
        };
        let window_ms = u64::try_from(budget.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let now_ms = self.now_ms();
        let index = now_ms / window_ms;
        let window_end = index.saturating_add(1).saturating_mul(window_ms);
        let spent = |what: &'static str| {
            Error::new(
                ErrorKind::RateLimited {
                    retry_after: Some(Duration::from_millis(window_end.saturating_sub(now_ms))),
                },
                what,
            )
        };
        let key = Key::ephemeral("otp")
            .part("budget")
            .part("app")
            .part(&index.to_string());
        let sent = self.store.increment(&key, 1, Some(budget.window)).await?;
        if sent > u64::from(budget.max_sends) {
            return Err(spent(
                "the provider's send budget is spent; try again later",
            ));
        }
        if let Some(client) = client {
            let mut ctx = hmac::Context::with_key(&self.key);
            ctx.update(b"keyward-otp-client-v1");
            ctx.update(client.as_bytes());
            let tag = ctx.sign();
            let key = Key::ephemeral("otp")
                .part("budget")
                .part("client")
                .bytes(tag.as_ref().get(..16).unwrap_or_default())
                .part(&index.to_string());
            let sent = self.store.increment(&key, 1, Some(budget.window)).await?;
            if sent > u64::from(budget.max_sends_per_client) {
                return Err(spent(
                    "too many codes requested by this client; try again later",
                ));
            }
        }
        Ok(())
    }

    /// Counts one send to a destination against the budget and the per-destination limit.
    pub(super) async fn count_send(
        &self,
        destination: &[u8; 16],
        client: Option<&str>,
    ) -> Result<()> {
        self.count_budget(client).await?;
        let Some(limit) = self.config.send_rate_limit else {
            return Ok(());
        };
        let window_ms = u64::try_from(limit.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let now_ms = self.now_ms();
        let index = now_ms / window_ms;
        let key = Key::ephemeral("otp")
            .part("rate")
            .bytes(destination)
            .part(&index.to_string());
        let sent = self.store.increment(&key, 1, Some(limit.window)).await?;
        if sent > u64::from(limit.max_sends) {
            let window_end = index.saturating_add(1).saturating_mul(window_ms);
            let retry_after = Duration::from_millis(window_end.saturating_sub(now_ms));
            return Err(Error::new(
                ErrorKind::RateLimited {
                    retry_after: Some(retry_after),
                },
                "too many codes sent to this destination; try again later",
            ));
        }
        Ok(())
    }
}
