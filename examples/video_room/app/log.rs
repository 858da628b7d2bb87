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

/// Logs one step of a flow. Callers pass only non-secret facts (masked numbers, ids, outcomes),
/// but those facts include what users typed (a username): every control character is escaped
/// first (see [`escape`]), so input can never start a line of its own or rewrite one.
pub(crate) fn step(message: &str) {
    let line = escape(message);
    eprintln!("[video_room] {line}");
    if let Some(sink) = LOG_SINK.get() {
        sink(&line);
    }
}

/// `message` with every control character (C0, DEL, C1), the Unicode line and paragraph
/// separators and the bidirectional overrides written as `\u{..}`, and `\` as `\\` (so an
/// escape in the log always means an escaped character).
pub(crate) fn escape(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        let unsafe_char = c.is_control()
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            );
        if c == '\\' {
            out.push_str("\\\\");
        } else if unsafe_char {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}
