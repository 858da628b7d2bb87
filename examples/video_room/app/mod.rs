//! The `video_room` demo app: routes, state and the three flows, independent of how the backends
//! are wired (see `main.rs` for the embedded defaults, `e2e/tests/e2e_video_room.rs` for the
//! end-to-end test that starts this router in-process).
//!
//! One module per flow, plus sessions:
//!
//! | module | what |
//! | --- | --- |
//! | [`sessions`] | the session cookie, what a session remembers, sign-in under a fresh id, logout |
//! | [`participants`] | the seed's participants (phone for codes, email for SSKS challenges) and passkey owners |
//! | [`pages`] | the static pages, `/api/config`, `/api/me` |
//! | [`otp`] | **OTP → video token** (seed 000): a participant's username → a one-time code to the participant's phone → the code → a Twilio Video access token for the room, through keyward's `RoomGate` (unknown names get decoy answers) |
//! | [`passkeys`] | **Passkeys** (seed 001): once signed in, "add a passkey" (WebAuthn registration); "sign in with passkey" (usernameless) also opens the room |
//! | [`two_man_rule`] | **2-man rule** (seed 003, `/tmr`): this server is the backend (each participant's `rawTwoManRuleKey`); keyward's local SSKS runs beside it on its own port; the page is the client and does the crypto in the browser |
//! | [`errors`], [`log`] | the JSON error answer; the step log (control characters escaped) |
//!
//! Everything the server remembers (sessions, user handles) lives in a [`StateStore`]; the
//! session cookie is random and only its SHA-256 is used as a storage key. Each step is logged
//! to standard error without codes, tokens or full phone numbers.

pub(crate) mod errors;
pub(crate) mod log;
pub(crate) mod otp;
pub(crate) mod pages;
pub(crate) mod participants;
pub(crate) mod passkeys;
pub(crate) mod sessions;
pub(crate) mod two_man_rule;

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::routing::post;

use keyward::keysplit::TwoManRuleBackend;
use keyward::store::StateStore;
use keyward::video::gate::{Contact, MemoryDirectory, RoomGate};
use keyward::{AuthenticatorVerifier, Env, OtpProvider, SecureRandom, VideoTokenIssuer};

// Used by the end-to-end test, which includes this module (main.rs does not need them).
#[cfg_attr(not(test), allow(unused_imports))]
pub(crate) use log::set_log_sink;
use participants::{DemoDirectory, PARTICIPANTS};
#[cfg_attr(not(test), allow(unused_imports))]
pub(crate) use two_man_rule::SSKS_APP_ID;
pub(crate) use two_man_rule::local_two_man_rule;

/// Everything the routes need. Build it with [`AppState::new`] and the `with_*` methods; a flow
/// whose backend is not wired answers 503 and its page section says so.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) rng: Arc<dyn SecureRandom>,
    pub(crate) room: String,
    pub(crate) gate: Option<Arc<RoomGate>>,
    pub(crate) otp_backend: &'static str,
    pub(crate) video: Option<Arc<dyn VideoTokenIssuer>>,
    pub(crate) webauthn: Option<Arc<dyn AuthenticatorVerifier>>,
    pub(crate) tmr: Option<TwoManRule>,
}

/// The backend role of the 2-man rule and where the browser reaches SSKS.
#[derive(Debug, Clone)]
pub(crate) struct TwoManRule {
    pub(crate) backend: Arc<TwoManRuleBackend>,
    pub(crate) ssks_url: String,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("room", &self.room)
            .field("otp", &self.otp_backend)
            .field("gate", &self.gate)
            .field("webauthn", &self.webauthn.is_some())
            .field("tmr", &self.tmr)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// A state keeping sessions in `store`, for the room `My Room`.
    pub(crate) fn new(store: Arc<dyn StateStore>, rng: Arc<dyn SecureRandom>) -> Self {
        AppState {
            store,
            rng,
            room: "My Room".to_owned(),
            gate: None,
            otp_backend: "none",
            video: None,
            webauthn: None,
            tmr: None,
        }
    }

    /// Wires seed 000: keyward's [`RoomGate`] over the seed's participants, the one-time-code
    /// provider `otp` (`backend` names it on the page: `self-hosted`, `twilio`) and the token
    /// issuer `video` (also used after a passkey sign-in).
    pub(crate) fn with_room_gate(
        mut self,
        otp: Arc<dyn OtpProvider>,
        backend: &'static str,
        video: Arc<dyn VideoTokenIssuer>,
    ) -> keyward::Result<Self> {
        let members = PARTICIPANTS
            .iter()
            .fold(MemoryDirectory::new(), |d, (name, phone, _)| {
                d.with(*name, Contact::phone(*phone))
            });
        let directory = DemoDirectory {
            members,
            store: self.store.clone(),
        };
        let gate = RoomGate::builder(Arc::new(directory), otp, video.clone(), self.store.clone())
            .room(self.room.clone())
            .env(Env::system().with_random(self.rng.clone()))
            .build()?;
        self.gate = Some(Arc::new(gate));
        self.otp_backend = backend;
        self.video = Some(video);
        Ok(self)
    }

    /// Wires seed 003: `backend` opens SSKS sessions for signed-in participants; the browser
    /// talks to the SSKS at `ssks_url` itself (see [`two_man_rule::ssks_router`]).
    pub(crate) fn with_two_man_rule(
        mut self,
        backend: TwoManRuleBackend,
        ssks_url: impl Into<String>,
    ) -> Self {
        self.tmr = Some(TwoManRule {
            backend: Arc::new(backend),
            ssks_url: ssks_url.into(),
        });
        self
    }

    /// Wires the WebAuthn relying party.
    pub(crate) fn with_webauthn(mut self, webauthn: Arc<dyn AuthenticatorVerifier>) -> Self {
        self.webauthn = Some(webauthn);
        self
    }
}

/// Serves the demo on `listener` with each connection's peer address, which the room gate's
/// client key needs (see [`otp::client_key`]).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}

/// The demo's routes.
pub(crate) fn router(state: AppState) -> Router {
    pages::routes()
        .route("/api/tmr/session", post(two_man_rule::tmr_session))
        .route("/api/login", post(otp::login))
        .route("/api/verify", post(otp::verify))
        .route("/api/logout", post(sessions::logout))
        .route(
            "/api/passkey/register/start",
            post(passkeys::register_start),
        )
        .route(
            "/api/passkey/register/finish",
            post(passkeys::register_finish),
        )
        .route(
            "/api/passkey/login/start",
            post(passkeys::passkey_login_start),
        )
        .route(
            "/api/passkey/login/finish",
            post(passkeys::passkey_login_finish),
        )
        .with_state(state)
}
