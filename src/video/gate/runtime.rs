//! What the gate needs from the async runtime: running a send in the background and sleeping
//! (to answer every login and verify no sooner than a fixed floor, see [`GateTiming`]).
//!
//! [`GateTiming`]: super::GateTiming

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future the gate hands to its runtime.
pub type GateTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The async runtime the gate runs on.
///
/// [`TokioRuntime`] (features `twilio` or `ssks`, which bring tokio) is the default; implement
/// it for another runtime and pass it to
/// [`RoomGateBuilder::runtime`](super::RoomGateBuilder::runtime).
pub trait GateRuntime: Send + Sync + fmt::Debug {
    /// Runs `task` to completion in the background (the code delivery of a real login).
    fn spawn(&self, task: GateTask);

    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> GateTask;
}

/// [`GateRuntime`] on the current tokio runtime (`tokio::spawn`, `tokio::time::sleep`). The
/// runtime must have its timer enabled (`#[tokio::main]`, `#[tokio::test]` and
/// `Builder::enable_all` do).
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

#[cfg(feature = "http")]
impl GateRuntime for TokioRuntime {
    fn spawn(&self, task: GateTask) {
        drop(tokio::spawn(task));
    }

    fn sleep(&self, duration: Duration) -> GateTask {
        Box::pin(tokio::time::sleep(duration))
    }
}
