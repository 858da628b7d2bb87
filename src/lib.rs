//! # keyward
//!
//! Second-factor building blocks for Rust services, behind four small traits with pluggable
//! backends:
//!
//! | trait | what it does | built-in backends |
//! |---|---|---|
//! | [`OtpProvider`] | one-time passcodes by SMS, call, email, WhatsApp | Twilio Verify (`twilio`), self-hosted (always) |
//! | [`VideoTokenIssuer`] | signed video-room access tokens | Twilio Video access tokens (`twilio`), LiveKit access tokens (`livekit`) |
//! | [`AuthenticatorVerifier`] | WebAuthn / passkey ceremonies | relying party with ES256, ES384, ES512, EdDSA, RS256, PS256 (`webauthn`), ML-DSA-44 / 65 (`ml-dsa`) |
//! | [`TotpProvider`] | authenticator-app codes (RFC 6238 TOTP) | self-hosted (always); see [`totp`] |
//! | [`KeySplitStore`] | the SSKS side of the 2-man rule | local store (always), Seald SSKS over HTTP (`ssks`), local HTTP server (`ssks-server`) |
//!
//! Every piece of mutable state (pending codes, attempt counters, ceremony challenges,
//! credentials, 2-man-rule keys, sessions) goes through a [`StateStore`](store::StateStore);
//! [`MemoryStore`](store::MemoryStore) is always compiled. Time and randomness are injected
//! ([`Clock`], [`SecureRandom`]), secrets are [`Secret`]s, and every failure is an [`Error`] with a
//! matchable [`ErrorKind`].
//!
//! ## Cargo features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `twilio` | yes | Twilio Verify OTP backend, SMS sender, Video access tokens (reqwest + rustls) |
//! | `webauthn` | yes | the WebAuthn relying party (coset, p256, p384, p521, ring) |
//! | `mds` | no | `webauthn::attestation::MetadataService`: the FIDO MDS3 BLOB downloaded, cached in the store and refreshed in the background (reqwest) |
//! | `ml-dsa` | no | ML-DSA-44 / ML-DSA-65 credentials (RustCrypto `ml-dsa`, not independently audited) |
//! | `ssks` | yes | the SSKS HTTP client and the 2-man-rule blob format (scrypt, AES-CBC) |
//! | `livekit` | no | LiveKit access tokens and their verifier (no extra dependencies) |
//! | `qr` | yes | QR codes (SVG) of TOTP enrolment URIs (`qrcode`, no dependencies of its own) |
//! | `ssks-server` | no | a local SSKS-compatible HTTP server (axum) |
//! | `axum` | no | `IntoResponse` for [`Error`] (status of [`Error::http_status`], JSON body) and for the `/.well-known/webauthn` document |
//! | `fast-p256` | no | [`p256v`]: verification-only ECDSA P-256 with per-key precomputed tables; the WebAuthn ES256 default |
//! | `tracing` | yes | a [`tracing`](https://docs.rs/tracing) span per operation with masked fields, an event per refusal (see `docs/architecture.md`) |
//! | `testing` | no | test utilities: a deterministic random source, a software authenticator |
//!
//! ## Holding backends as trait objects
//!
//! A host wires the backends it chose once and passes them around as `Arc<dyn _>`, so swapping
//! Twilio for the self-hosted provider (or a test double for either) touches one line:
//!
//! ```
//! use std::sync::Arc;
//! use keyward::{AuthenticatorVerifier, KeySplitStore, OtpProvider, VideoTokenIssuer};
//! use keyward::store::{MemoryStore, StateStore};
//!
//! /// Everything the login routes of a host service need.
//! #[derive(Debug, Clone)]
//! struct SecondFactor {
//!     otp: Arc<dyn OtpProvider>,
//!     video: Arc<dyn VideoTokenIssuer>,
//!     webauthn: Arc<dyn AuthenticatorVerifier>,
//!     key_split: Arc<dyn KeySplitStore>,
//!     state: Arc<dyn StateStore>,
//! }
//!
//! let state: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
//! # let _ = state;
//! ```
//!
//! ## State store atomicity
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use keyward::{Env, ManualClock};
//! use keyward::store::{Key, MemoryStore, StateStore};
//!
//! let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
//! let store = MemoryStore::new().env(Env::system().with_clock(clock.clone()));
//! let ve1 = Key::ephemeral("otp").part("ve1");
//! store.put(&ve1, b"pending".to_vec(), Some(Duration::from_secs(600))).await?;
//! assert_eq!(store.take(&ve1).await?, Some(b"pending".to_vec())); // single use
//! assert_eq!(store.take(&ve1).await?, None);
//!
//! let ve2 = Key::ephemeral("otp").part("ve2");
//! store.put(&ve2, b"pending".to_vec(), Some(Duration::from_secs(600))).await?;
//! clock.advance(Duration::from_secs(600));
//! assert!(store.get(&ve2).await?.is_none()); // expired at the injected clock's time
//! # Ok::<(), keyward::Error>(()) }).unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
mod axum_response;
mod builder;
mod clock;
mod decimal;
mod env;
mod error;
mod hex;
mod rng;
mod secret;
mod trace;

pub mod backend;
#[cfg(feature = "http")]
pub mod http;
pub mod keysplit;
#[cfg(feature = "livekit")]
pub mod livekit;
pub mod normalize;
pub mod otp;
#[cfg(feature = "fast-p256")]
pub mod p256v;
pub mod store;
pub mod totp;
#[cfg(feature = "twilio")]
pub mod twilio;
pub mod video;
pub mod webauthn;

pub use builder::Builder;
pub use clock::{Clock, ManualClock, SystemClock, unix_seconds};
pub use env::Env;
pub use error::{Error, ErrorKind, RemoteError, Result};
pub use keysplit::KeySplitStore;
pub use otp::OtpProvider;
pub use rng::{SecureRandom, SystemRandom, random_array, random_string, uniform_below};
pub use secret::Secret;
pub use totp::TotpProvider;
pub use video::VideoTokenIssuer;
pub use webauthn::{AuthenticatorVerifier, WebAuthnFailure};

#[cfg(any(test, feature = "testing"))]
pub mod testing;
