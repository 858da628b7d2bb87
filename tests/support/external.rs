//! Tests that need an external program or server (Chromium, redis-server, PostgreSQL).
//!
//! Such a test asks [`available_or_skip`] first. When the program is absent it prints one line
//! naming what to install and the test returns early (it passes), so a plain `cargo test` passes
//! on a machine with only Rust. CI sets `KEYWARD_REQUIRE_EXTERNAL=1`, which makes every such test
//! mandatory: an absent program is then a failure.
//!
//! Include it with `#[path = "support/external.rs"] mod external;` (or `support::external`).
#![allow(dead_code, unreachable_pub, clippy::panic)]

/// The variable CI sets to make every test that needs an external program mandatory.
pub const REQUIRE_VAR: &str = "KEYWARD_REQUIRE_EXTERNAL";

/// Whether tests needing external programs must run (`KEYWARD_REQUIRE_EXTERNAL` is set to
/// something other than `0` or the empty string).
pub fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Returns `available`. When it is false: panics if [`required`], otherwise prints one line
/// (`skipped: <test> needs <what>: <hint>`) so the caller can return early.
pub fn available_or_skip(test: &str, what: &str, hint: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if required() {
        panic!("{test} needs {what} ({REQUIRE_VAR} is set): {hint}");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of a passing test, and the
    // notice must show on a plain `cargo test`.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "skipped: {test} needs {what}: {hint}");
    false
}

/// Whether an executable exists at `path` or, for a bare name, on `PATH`.
pub fn program_exists(name: &str) -> bool {
    let path = std::path::Path::new(name);
    if path.components().count() > 1 {
        return path.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// The first of `names` found on `PATH` (or `override_var`'s value when that variable is set
/// and names an existing file).
///
/// Tests look programs up on `PATH` rather than at a fixed location, so a machine (or a run with
/// a reduced `PATH`) without the program skips the test.
pub fn find_program(override_var: &str, names: &[&str]) -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os(override_var) {
        let path = std::path::PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Whether a TCP server answers on `addr` (for instance `127.0.0.1:6379`) within one second.
pub fn tcp_answers(addr: &str) -> bool {
    use std::net::ToSocketAddrs;
    let Ok(mut addrs) = addr.to_socket_addrs() else {
        return false;
    };
    addrs.any(|a| {
        std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(1)).is_ok()
    })
}
