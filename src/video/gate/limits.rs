//! The gate's limits and its counters in the [`StateStore`] (`gate:` keys).
//!
//! Every key names a keyed hash (under the gate secret) of the identity and of the client, never
//! the text itself. Counters, for a login (`l`) or a code check (`v`):
//!
//! | key | counts | limit | beyond |
//! |---|---|---|---|
//! | `gate:{l,v}p:{identity}:{client}` | one client's tries for one identity | `max_logins` / `max_verify_attempts` | that client only is refused |
//! | `gate:{l,v}i:{identity}` | all clients' tries for one identity | `max_logins_per_identity` / `max_verify_attempts_per_identity` | every client but the *known* ones is refused |
//! | `gate:lc:{client}` | one client's logins, all identities | `max_logins_per_client` | that client is refused |
//! | `gate:known:{identity}:{client}` | a client that completed a login for the identity | kept `known_client_ttl` | exempt from the per-identity totals |
//! | `gate:decoys` | requests about unknown identities this window | `decoy_budget` | further unknown identities share `decoy_buckets` identity keys (pair counters per bucket and client, no per-identity total) |
//!
//! Without a client (`login`, `verify`), the per-client counters are skipped and the pair
//! counters are per identity: one stranger can then lock a participant out, as before this
//! policy existed. Pass a client key (`login_from`, `verify_from`).

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::store::{Key, StateStore, StateStoreExt};

/// The gate's limits, applied to every identity alike (see the [module docs](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateLimits {
    /// Code checks per identity and client per `attempt_window`. Default 5.
    pub max_verify_attempts: u32,
    /// Code checks per identity, all clients together, per `attempt_window`; known clients are
    /// exempt. Default 15.
    pub max_verify_attempts_per_identity: u32,
    /// Window of the check counters, from the first check. Default 10 minutes.
    pub attempt_window: Duration,
    /// Logins per identity and client per `login_window`. Default 5.
    pub max_logins: u32,
    /// Logins per identity, all clients together, per `login_window`; known clients are exempt.
    /// Default 20.
    pub max_logins_per_identity: u32,
    /// Logins per client, all identities together, per `login_window`. Default 30.
    pub max_logins_per_client: u32,
    /// Window of the login counters, from the first login. Default 1 hour.
    pub login_window: Duration,
    /// How long a client that completed a login stays exempt from the per-identity totals.
    /// Default 30 days.
    pub known_client_ttl: Duration,
    /// Requests about unknown identities given their own counters per `login_window`; beyond,
    /// unknown identities share `decoy_buckets` counters (so the gate's keys for them stay
    /// bounded whatever a flood sends). Default 10 000.
    pub decoy_budget: u32,
    /// Shared counters for unknown identities past the decoy budget (1 to 65 536). Default 4096.
    pub decoy_buckets: u32,
}

impl Default for GateLimits {
    fn default() -> Self {
        GateLimits {
            max_verify_attempts: 5,
            max_verify_attempts_per_identity: 15,
            attempt_window: Duration::from_secs(600),
            max_logins: 5,
            max_logins_per_identity: 20,
            max_logins_per_client: 30,
            login_window: Duration::from_secs(3_600),
            known_client_ttl: Duration::from_secs(30 * 24 * 3_600),
            decoy_budget: 10_000,
            decoy_buckets: 4096,
        }
    }
}

impl GateLimits {
    pub(super) fn validate(&self) -> Result<()> {
        let counts = [
            self.max_verify_attempts,
            self.max_verify_attempts_per_identity,
            self.max_logins,
            self.max_logins_per_identity,
            self.max_logins_per_client,
        ];
        if counts.contains(&0) || !(1..=65_536).contains(&self.decoy_buckets) {
            return Err(crate::Error::config("gate limits must allow at least one"));
        }
        if self.attempt_window < Duration::from_secs(1)
            || self.login_window < Duration::from_secs(1)
        {
            return Err(crate::Error::config(
                "gate windows must be at least one second",
            ));
        }
        Ok(())
    }
}

/// The floors under the gate's answer times: every login and every verify answers no sooner
/// than its floor after it was called, whatever path it took (see the [module docs](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GateTiming {
    /// Earliest answer of a login. Default 20 ms.
    pub login_floor: Duration,
    /// Earliest answer of a verify. Default 20 ms.
    pub verify_floor: Duration,
}

impl Default for GateTiming {
    fn default() -> Self {
        GateTiming {
            login_floor: Duration::from_millis(20),
            verify_floor: Duration::from_millis(20),
        }
    }
}

impl GateTiming {
    /// Both floors.
    pub fn new(login_floor: Duration, verify_floor: Duration) -> Self {
        GateTiming {
            login_floor,
            verify_floor,
        }
    }
}

/// What a counter step concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Allowed,
    Refused,
}

/// The counted operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Login,
    Verify,
}

/// Key names for one (identity, client) request, hashed by the gate.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    /// Hex of the identity's keyed hash (or of its decoy bucket).
    pub(super) identity: String,
    /// Hex of the client's keyed hash, if the host passed a client.
    pub(super) client: Option<String>,
    /// An unknown identity past the decoy budget: `identity` is a shared bucket, which has no
    /// per-identity total.
    pub(super) bucketed: bool,
}

impl Keys {
    fn pair(&self, op: Op) -> Key {
        let p = match op {
            Op::Login => "lp",
            Op::Verify => "vp",
        };
        match &self.client {
            Some(c) => gate_key(p).part(&self.identity).part(c),
            // Without a client, the keys of the original per-identity counters.
            None => match op {
                Op::Login => gate_key("logins").part(&self.identity),
                Op::Verify => gate_key("attempts").part(&self.identity),
            },
        }
    }

    fn total(&self, op: Op) -> Key {
        let p = match op {
            Op::Login => "li",
            Op::Verify => "vi",
        };
        gate_key(p).part(&self.identity)
    }

    fn known(&self) -> Option<Key> {
        self.client
            .as_ref()
            .map(|c| gate_key("known").part(&self.identity).part(c))
    }
}

/// Every gate key is ephemeral: counters and markers with a window as TTL.
fn gate_key(kind: &str) -> Key {
    Key::ephemeral("gate").part(kind)
}

/// The counters over the store.
#[derive(Debug, Clone)]
pub(super) struct Counters {
    pub(super) store: Arc<dyn StateStore>,
    pub(super) limits: GateLimits,
}

impl Counters {
    fn window(&self, op: Op) -> Duration {
        match op {
            Op::Login => self.limits.login_window,
            Op::Verify => self.limits.attempt_window,
        }
    }

    async fn over(&self, key: &Key, window: Duration, limit: u32) -> Result<bool> {
        let n = self.store.increment(key, 1, Some(window)).await?;
        Ok(n > u64::from(limit))
    }

    /// Whether an unknown identity may still get its own counters this window (counts one).
    pub(super) async fn decoy_budget_left(&self) -> Result<bool> {
        let n = self
            .store
            .increment(&gate_key("decoys"), 1, Some(self.limits.login_window))
            .await?;
        Ok(n <= u64::from(self.limits.decoy_budget))
    }

    /// Counts one `op` for `keys` and decides. Every counter is incremented whatever the
    /// outcome, in the same order for every identity.
    pub(super) async fn count(&self, op: Op, keys: &Keys) -> Result<Verdict> {
        let window = self.window(op);
        let (pair_limit, total_limit) = match op {
            Op::Login => (self.limits.max_logins, self.limits.max_logins_per_identity),
            Op::Verify => (
                self.limits.max_verify_attempts,
                self.limits.max_verify_attempts_per_identity,
            ),
        };
        let mut refused = false;
        if let (Op::Login, Some(client)) = (op, &keys.client) {
            refused |= self
                .over(
                    &gate_key("lc").part(client),
                    window,
                    self.limits.max_logins_per_client,
                )
                .await?;
        }
        refused |= self.over(&keys.pair(op), window, pair_limit).await?;
        if keys.client.is_some() && !keys.bucketed {
            let over_total = self.over(&keys.total(op), window, total_limit).await?;
            let known = match keys.known() {
                Some(k) => self.store.get(&k).await?.is_some(),
                None => false,
            };
            refused |= over_total && !known;
        }
        Ok(if refused {
            Verdict::Refused
        } else {
            Verdict::Allowed
        })
    }

    /// After an approved code: the client's check counter restarts and the client is known.
    pub(super) async fn succeeded(&self, keys: &Keys) -> Result<()> {
        self.store.delete(&keys.pair(Op::Verify)).await?;
        if let Some(known) = keys.known() {
            self.store
                .put(&known, b"1".to_vec(), Some(self.limits.known_client_ttl))
                .await?;
        }
        Ok(())
    }
}
