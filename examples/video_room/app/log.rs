//! The demo's step log: one line per step of a flow on standard error (and to a sink the
//! end-to-end test installs).

use std::sync::OnceLock;

/// Where log lines also go, besides standard error (the end-to-end test checks them for
/// secrets).
pub(crate) type LogSink = Box<dyn Fn(&str) + Send + Sync>;

static LOG_SINK: OnceLock<LogSink> = OnceLock::new();

/// Copies every log line to `sink` as well (once per process).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn set_log_sink(sink: LogSink) -> bool {
    LOG_SINK.set(sink).is_ok()
}

/// Logs one step of a flow. Callers pass only non-secret facts (masked numbers, ids, outcomes).
pub(crate) fn step(message: &str) {
    eprintln!("[video_room] {message}");
    if let Some(sink) = LOG_SINK.get() {
        sink(message);
    }
}
