//! [`CutProxy`]: a TCP proxy on loopback in front of one server (Redis, PostgreSQL) that can be
//! told to lose one answer: the request is forwarded, the server executes it and answers, and the
//! proxy closes the client's connection instead of passing the answer on. This is what a network
//! fault between the server and the client looks like after a write landed, and what a client
//! library that re-sends "on connection loss" turns into a second execution.
//!
//! Everything else is forwarded byte for byte in both directions. The proxy runs on the tokio
//! runtime it is started from; it stops accepting when dropped.
//!
//! Include with `#[path = "support/proxy.rs"] mod proxy;`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// When the server's answer to the armed request is complete (so the request was executed) and
/// the connection is to be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// RESP: the first bytes of an answer that is not an error reply (`-…`). An error reply
    /// (`-NOSCRIPT` before a script is loaded, `-MOVED`) is passed on and the proxy stays armed,
    /// so the cut lands on the request the server actually applied.
    Redis,
    /// PostgreSQL: the answer up to `ReadyForQuery` with status idle (`Z`, length 5, `I`), sent
    /// after the implicit transaction of the statement committed.
    Postgres,
}

const READY_FOR_QUERY_IDLE: &[u8] = b"Z\x00\x00\x00\x05I";

#[derive(Debug)]
struct Shared {
    target: AtomicU16,
    answer: Answer,
    /// The byte string that marks the request to cut (a unique key), while armed.
    armed: Mutex<Option<Vec<u8>>>,
    cuts: AtomicU32,
    matched: AtomicU32,
}

/// A proxy `127.0.0.1:<port()>` → `127.0.0.1:<target>`.
#[derive(Debug)]
pub struct CutProxy {
    port: u16,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    /// Listens on a free loopback port and forwards every connection to `127.0.0.1:<target>`
    /// (connected when the client connects; target 0 refuses every connection until
    /// [`set_target`](Self::set_target)). Must be called inside a tokio runtime.
    pub fn start(target: u16, answer: Answer) -> CutProxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let listener = TcpListener::from_std(std_listener).unwrap();
        let shared = Arc::new(Shared {
            target: AtomicU16::new(target),
            answer,
            armed: Mutex::new(None),
            cuts: AtomicU32::new(0),
            matched: AtomicU32::new(0),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let target = shared.target.load(Ordering::SeqCst);
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await {
                            pump(client, server, &shared).await;
                        }
                    });
                }
            })
        };
        CutProxy {
            port,
            shared,
            accept,
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Forwards the connections accepted from now on to `127.0.0.1:<target>`.
    pub fn set_target(&self, target: u16) {
        self.shared.target.store(target, Ordering::SeqCst);
    }

    /// Arms the proxy: the next request whose bytes contain `marker` is forwarded, and once the
    /// server's answer to it is complete (see [`Answer`]) the client's connection is closed
    /// without that answer. Later requests (a re-send included) pass untouched. The answer is
    /// taken to be what the server sends next on that connection, so the test keeps no other
    /// command in flight on it meanwhile (one operation at a time).
    pub fn cut_answer_to(&self, marker: &[u8]) {
        *self.shared.armed.lock().unwrap() = Some(marker.to_vec());
    }

    /// Disarms the proxy if the cut has not happened.
    pub fn disarm(&self) {
        *self.shared.armed.lock().unwrap() = None;
    }

    /// How many answers were withheld (connections cut) so far.
    pub fn cuts(&self) -> u32 {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// How many forwarded requests contained the armed marker so far (counted while armed and
    /// not yet cut, error answers included).
    pub fn matched(&self) -> u32 {
        self.shared.matched.load(Ordering::SeqCst)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Forwards both directions until either side closes or the armed answer is cut.
async fn pump(mut client: TcpStream, mut server: TcpStream, shared: &Shared) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let mut up = vec![0u8; 64 * 1024];
    let mut down = vec![0u8; 64 * 1024];
    // The client's last bytes, so a marker split over two reads is still found.
    let mut tail: Vec<u8> = Vec::new();
    // Set once the marked request went to the server: its answer is being collected.
    let mut awaiting: Option<Vec<u8>> = None;
    loop {
        tokio::select! {
            read = client.read(&mut up) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                let chunk = &up[..n];
                if awaiting.is_none() {
                    let armed = shared.armed.lock().unwrap().clone();
                    if let Some(marker) = armed {
                        let mut window = std::mem::take(&mut tail);
                        window.extend_from_slice(chunk);
                        if contains(&window, &marker) {
                            shared.matched.fetch_add(1, Ordering::SeqCst);
                            awaiting = Some(Vec::new());
                            window.clear();
                        }
                        let keep = window.len().min(marker.len());
                        tail = window[window.len() - keep..].to_vec();
                    }
                }
                if server.write_all(chunk).await.is_err() {
                    return;
                }
            }
            read = server.read(&mut down) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                let chunk = &down[..n];
                if let Some(mut held) = awaiting.take() {
                    held.extend_from_slice(chunk);
                    let applied = match shared.answer {
                        // An error reply (`-NOSCRIPT`, `-MOVED`) means not applied: pass it on
                        // and wait for the next marked request.
                        Answer::Redis => held.first() != Some(&b'-'),
                        Answer::Postgres => {
                            if !contains(&held, READY_FOR_QUERY_IDLE) {
                                // Held back until complete: none of it reaches the client.
                                awaiting = Some(held);
                                continue;
                            }
                            true
                        }
                    };
                    if applied && shared.armed.lock().unwrap().take().is_some() {
                        shared.cuts.fetch_add(1, Ordering::SeqCst);
                        // Both sockets close: the client sees its connection drop with the
                        // request sent and no answer; the server sees a client leave.
                        return;
                    }
                    if client.write_all(&held).await.is_err() {
                        return;
                    }
                    continue;
                }
                if client.write_all(chunk).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
