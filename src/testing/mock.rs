//! Test doubles for a host's own route tests: each function returns a pair, a trait object to
//! wire into the routes and a handle to script its answers and see its calls (tower-test's
//! `mock::pair()` is the model). No network, no store, no clock.
//!
//! Every call is recorded in order, then answered by the oldest scripted answer for that method;
//! a call with no answer scripted fails with [`ErrorKind::Backend`] ("no scripted answer"), so a
//! test that forgot to script one fails instead of passing on a default.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use keyward::OtpProvider;
//! use keyward::otp::{Channel, CheckCode, StartVerification, Verification};
//! use keyward::testing::mock;
//!
//! let (otp, handle) = mock::otp();
//! let otp: Arc<dyn OtpProvider> = Arc::new(otp); // what the routes under test hold
//! handle.start().answer(Ok(Verification::new("VE1", "+15017122661", Channel::Sms)));
//! handle.check().approve_next();
//!
//! // ... the route under test runs:
//! otp.start(StartVerification::new("+15017122661", Channel::Sms)).await?;
//! let outcome = otp.check(CheckCode::to("+15017122661", "123456")).await?;
//!
//! assert!(outcome.approved().is_some());
//! assert_eq!(handle.start().calls()[0].to, "+15017122661");
//! assert_eq!(handle.check().calls()[0].code.expose(), b"123456");
//! // Nothing scripted: a typed error, never a silent default.
//! assert!(otp.fetch(keyward::otp::VerificationRef::Sid("VE1".into())).await.is_err());
//! # Ok::<(), keyward::Error>(()) }).unwrap();
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::keysplit::{
    AuthFactor, ChallengeRequest, ChallengeSession, KeySplitStore, SessionId, StoredBlob,
};
use crate::otp::{
    CheckCode, CheckOutcome, OtpProvider, StartVerification, Verification, VerificationRef,
    VerificationStatus,
};
use crate::secret::Secret;
use crate::video::{AccessToken, FactorProof, VideoTokenIssuer, VideoTokenRequest};
use crate::webauthn::{
    AuthenticationRequest, AuthenticationResponseJson, AuthenticationState, AuthenticatorVerifier,
    CreationOptionsJson, RegisteredCredential, RegistrationRequest, RegistrationResponseJson,
    RegistrationState, RequestOptionsJson, VerifiedAssertion,
};

type Responder<Req, Resp> = Box<dyn FnOnce(&Req) -> Result<Resp> + Send>;

struct Script<Req, Resp> {
    calls: Vec<Req>,
    answers: VecDeque<Responder<Req, Resp>>,
}

/// One method of a mock: the answers still scripted and the calls seen, shared by the mock and
/// its handle.
pub struct Method<Req, Resp> {
    name: &'static str,
    script: Arc<Mutex<Script<Req, Resp>>>,
}

impl<Req, Resp> Clone for Method<Req, Resp> {
    fn clone(&self) -> Self {
        Method {
            name: self.name,
            script: self.script.clone(),
        }
    }
}

impl<Req, Resp> fmt::Debug for Method<Req, Resp> {
    // Calls may hold codes and challenges: show only counts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let script = self.lock();
        f.debug_struct("Method")
            .field("name", &self.name)
            .field("calls", &script.calls.len())
            .field("scripted_answers", &script.answers.len())
            .finish()
    }
}

impl<Req, Resp> Method<Req, Resp> {
    fn new(name: &'static str) -> Self {
        Method {
            name,
            script: Arc::new(Mutex::new(Script {
                calls: Vec::new(),
                answers: VecDeque::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Script<Req, Resp>> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `answer` for the next unanswered call.
    pub fn answer(&self, answer: Result<Resp>) -> &Self
    where
        Resp: Send + 'static,
    {
        self.answer_with(move |_| answer)
    }

    /// Queues an answer computed from the call's request.
    pub fn answer_with(&self, f: impl FnOnce(&Req) -> Result<Resp> + Send + 'static) -> &Self {
        self.lock().answers.push_back(Box::new(f));
        self
    }

    /// The requests seen so far, oldest first.
    pub fn calls(&self) -> Vec<Req>
    where
        Req: Clone,
    {
        self.lock().calls.clone()
    }

    /// How many calls were seen.
    pub fn call_count(&self) -> usize {
        self.lock().calls.len()
    }

    /// How many scripted answers are still unused.
    pub fn pending_answers(&self) -> usize {
        self.lock().answers.len()
    }

    fn call(&self, request: Req) -> Result<Resp> {
        let mut script = self.lock();
        let answer = script.answers.pop_front();
        let result = match answer {
            Some(f) => f(&request),
            None => Err(Error::new(
                ErrorKind::Backend,
                format!("mock {}: no scripted answer", self.name),
            )),
        };
        script.calls.push(request);
        result
    }
}

impl Method<CheckCode, CheckOutcome> {
    /// Queues an approval of the next check: the verification is reported `approved` towards
    /// the destination (or with the SID) the check named.
    pub fn approve_next(&self) -> &Self {
        self.answer_with(|check| {
            let (sid, to) = match &check.target {
                VerificationRef::To(to) => ("VEmock".to_owned(), to.clone()),
                VerificationRef::Sid(sid) => (sid.clone(), String::new()),
            };
            let mut verification = Verification::new(sid, to, crate::otp::Channel::Sms);
            verification.status = VerificationStatus::Approved;
            verification.valid = true;
            crate::backend::approved(verification).map(CheckOutcome::Approved)
        })
    }

    /// Queues a rejection of the next check (a wrong code; the verification stays `pending`).
    pub fn reject_next(&self) -> &Self {
        self.answer_with(|check| {
            let (sid, to) = match &check.target {
                VerificationRef::To(to) => ("VEmock".to_owned(), to.clone()),
                VerificationRef::Sid(sid) => (sid.clone(), String::new()),
            };
            Ok(CheckOutcome::Rejected(Verification::new(
                sid,
                to,
                crate::otp::Channel::Sms,
            )))
        })
    }
}

/// A scripted [`OtpProvider`]; see [`otp`].
#[derive(Debug, Clone)]
pub struct MockOtp {
    handle: OtpHandle,
}

/// Scripts a [`MockOtp`] and sees its calls.
#[derive(Debug, Clone)]
pub struct OtpHandle {
    start: Method<StartVerification, Verification>,
    check: Method<CheckCode, CheckOutcome>,
    fetch: Method<VerificationRef, Verification>,
    cancel: Method<VerificationRef, Verification>,
}

impl OtpHandle {
    /// [`OtpProvider::start`].
    pub fn start(&self) -> &Method<StartVerification, Verification> {
        &self.start
    }
    /// [`OtpProvider::check`].
    pub fn check(&self) -> &Method<CheckCode, CheckOutcome> {
        &self.check
    }
    /// [`OtpProvider::fetch`].
    pub fn fetch(&self) -> &Method<VerificationRef, Verification> {
        &self.fetch
    }
    /// [`OtpProvider::cancel`].
    pub fn cancel(&self) -> &Method<VerificationRef, Verification> {
        &self.cancel
    }
}

/// A scripted [`OtpProvider`] and the handle that scripts it.
pub fn otp() -> (MockOtp, OtpHandle) {
    let handle = OtpHandle {
        start: Method::new("otp.start"),
        check: Method::new("otp.check"),
        fetch: Method::new("otp.fetch"),
        cancel: Method::new("otp.cancel"),
    };
    (
        MockOtp {
            handle: handle.clone(),
        },
        handle,
    )
}

#[async_trait]
impl OtpProvider for MockOtp {
    async fn start(&self, request: StartVerification) -> Result<Verification> {
        self.handle.start.call(request)
    }
    async fn check(&self, request: CheckCode) -> Result<CheckOutcome> {
        self.handle.check.call(request)
    }
    async fn fetch(&self, target: VerificationRef) -> Result<Verification> {
        self.handle.fetch.call(target)
    }
    async fn cancel(&self, target: VerificationRef) -> Result<Verification> {
        self.handle.cancel.call(target)
    }
}

/// A scripted [`VideoTokenIssuer`]; see [`video`].
#[derive(Debug, Clone)]
pub struct MockVideoIssuer {
    handle: VideoHandle,
}

/// Scripts a [`MockVideoIssuer`] and sees its calls.
#[derive(Debug, Clone)]
pub struct VideoHandle {
    issue: Method<(FactorProof, VideoTokenRequest), AccessToken>,
}

impl VideoHandle {
    /// [`VideoTokenIssuer::issue`]: (proof, request).
    pub fn issue(&self) -> &Method<(FactorProof, VideoTokenRequest), AccessToken> {
        &self.issue
    }
}

/// A scripted [`VideoTokenIssuer`] and the handle that scripts it.
pub fn video() -> (MockVideoIssuer, VideoHandle) {
    let handle = VideoHandle {
        issue: Method::new("video.issue"),
    };
    (
        MockVideoIssuer {
            handle: handle.clone(),
        },
        handle,
    )
}

#[async_trait]
impl VideoTokenIssuer for MockVideoIssuer {
    async fn issue(&self, proof: FactorProof, request: VideoTokenRequest) -> Result<AccessToken> {
        self.handle.issue.call((proof, request))
    }
}

/// A scripted [`AuthenticatorVerifier`]; see [`webauthn`].
#[derive(Debug, Clone)]
pub struct MockAuthenticator {
    handle: WebAuthnHandle,
}

/// Scripts a [`MockAuthenticator`] and sees its calls.
#[derive(Debug, Clone)]
pub struct WebAuthnHandle {
    start_registration: Method<RegistrationRequest, (CreationOptionsJson, RegistrationState)>,
    finish_registration:
        Method<(RegistrationState, RegistrationResponseJson), RegisteredCredential>,
    start_authentication: Method<AuthenticationRequest, (RequestOptionsJson, AuthenticationState)>,
    finish_authentication:
        Method<(AuthenticationState, AuthenticationResponseJson), VerifiedAssertion>,
}

impl WebAuthnHandle {
    /// [`AuthenticatorVerifier::start_registration`].
    pub fn start_registration(
        &self,
    ) -> &Method<RegistrationRequest, (CreationOptionsJson, RegistrationState)> {
        &self.start_registration
    }
    /// [`AuthenticatorVerifier::finish_registration`].
    pub fn finish_registration(
        &self,
    ) -> &Method<(RegistrationState, RegistrationResponseJson), RegisteredCredential> {
        &self.finish_registration
    }
    /// [`AuthenticatorVerifier::start_authentication`].
    pub fn start_authentication(
        &self,
    ) -> &Method<AuthenticationRequest, (RequestOptionsJson, AuthenticationState)> {
        &self.start_authentication
    }
    /// [`AuthenticatorVerifier::finish_authentication`].
    pub fn finish_authentication(
        &self,
    ) -> &Method<(AuthenticationState, AuthenticationResponseJson), VerifiedAssertion> {
        &self.finish_authentication
    }
}

/// A scripted [`AuthenticatorVerifier`] and the handle that scripts it. Build the proofs it
/// answers with [`backend::verified_assertion`](crate::backend::verified_assertion).
pub fn webauthn() -> (MockAuthenticator, WebAuthnHandle) {
    let handle = WebAuthnHandle {
        start_registration: Method::new("webauthn.start_registration"),
        finish_registration: Method::new("webauthn.finish_registration"),
        start_authentication: Method::new("webauthn.start_authentication"),
        finish_authentication: Method::new("webauthn.finish_authentication"),
    };
    (
        MockAuthenticator {
            handle: handle.clone(),
        },
        handle,
    )
}

#[async_trait]
impl AuthenticatorVerifier for MockAuthenticator {
    async fn start_registration(
        &self,
        request: RegistrationRequest,
    ) -> Result<(CreationOptionsJson, RegistrationState)> {
        self.handle.start_registration.call(request)
    }
    async fn finish_registration(
        &self,
        state: RegistrationState,
        response: &RegistrationResponseJson,
    ) -> Result<RegisteredCredential> {
        self.handle
            .finish_registration
            .call((state, response.clone()))
    }
    async fn start_authentication(
        &self,
        request: AuthenticationRequest,
    ) -> Result<(RequestOptionsJson, AuthenticationState)> {
        self.handle.start_authentication.call(request)
    }
    async fn finish_authentication(
        &self,
        state: AuthenticationState,
        response: &AuthenticationResponseJson,
    ) -> Result<VerifiedAssertion> {
        self.handle
            .finish_authentication
            .call((state, response.clone()))
    }
}

/// A scripted [`KeySplitStore`]; see [`keysplit`].
#[derive(Debug, Clone)]
pub struct MockKeySplit {
    handle: KeySplitHandle,
}

/// Scripts a [`MockKeySplit`] and sees its calls.
#[derive(Debug, Clone)]
pub struct KeySplitHandle {
    open_session: Method<ChallengeRequest, ChallengeSession>,
    validate_challenge: Method<(SessionId, Secret, AuthFactor), SessionId>,
    push: Method<(SessionId, AuthFactor, String), String>,
    search: Method<SessionId, StoredBlob>,
}

impl KeySplitHandle {
    /// [`KeySplitStore::open_session`].
    pub fn open_session(&self) -> &Method<ChallengeRequest, ChallengeSession> {
        &self.open_session
    }
    /// [`KeySplitStore::validate_challenge`]: (session, challenge, factor).
    pub fn validate_challenge(&self) -> &Method<(SessionId, Secret, AuthFactor), SessionId> {
        &self.validate_challenge
    }
    /// [`KeySplitStore::push`]: (session, factor, blob).
    pub fn push(&self) -> &Method<(SessionId, AuthFactor, String), String> {
        &self.push
    }
    /// [`KeySplitStore::search`].
    pub fn search(&self) -> &Method<SessionId, StoredBlob> {
        &self.search
    }
}

/// A scripted [`KeySplitStore`] and the handle that scripts it.
pub fn keysplit() -> (MockKeySplit, KeySplitHandle) {
    let handle = KeySplitHandle {
        open_session: Method::new("keysplit.open_session"),
        validate_challenge: Method::new("keysplit.validate_challenge"),
        push: Method::new("keysplit.push"),
        search: Method::new("keysplit.search"),
    };
    (
        MockKeySplit {
            handle: handle.clone(),
        },
        handle,
    )
}

#[async_trait]
impl KeySplitStore for MockKeySplit {
    async fn open_session(&self, request: ChallengeRequest) -> Result<ChallengeSession> {
        self.handle.open_session.call(request)
    }
    async fn validate_challenge(
        &self,
        session: &SessionId,
        challenge: &Secret,
        auth_factor: &AuthFactor,
    ) -> Result<SessionId> {
        self.handle.validate_challenge.call((
            session.clone(),
            challenge.clone(),
            auth_factor.clone(),
        ))
    }
    async fn push(
        &self,
        session: &SessionId,
        auth_factor: &AuthFactor,
        data_b64: &str,
    ) -> Result<String> {
        self.handle
            .push
            .call((session.clone(), auth_factor.clone(), data_b64.to_owned()))
    }
    async fn search(&self, session: &SessionId) -> Result<StoredBlob> {
        self.handle.search.call(session.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::Channel;

    #[tokio::test]
    async fn answers_in_order_records_calls_and_refuses_when_unscripted() {
        let (otp, handle) = otp();
        handle
            .start()
            .answer(Ok(Verification::new("VE1", "+1555", Channel::Sms)))
            .answer(Err(Error::new(ErrorKind::TooManySends, "slow down")));
        let first = otp
            .start(StartVerification::new("+1555", Channel::Sms))
            .await
            .unwrap();
        assert_eq!(first.sid, "VE1");
        let second = otp
            .start(StartVerification::new("+1666", Channel::Sms))
            .await
            .unwrap_err();
        assert_eq!(second.kind(), &ErrorKind::TooManySends);
        let third = otp
            .start(StartVerification::new("+1777", Channel::Sms))
            .await
            .unwrap_err();
        assert_eq!(third.kind(), &ErrorKind::Backend);
        let seen: Vec<String> = handle.start().calls().into_iter().map(|c| c.to).collect();
        assert_eq!(seen, ["+1555", "+1666", "+1777"]);
        assert_eq!(handle.start().pending_answers(), 0);

        handle.check().reject_next().approve_next();
        let rejected = otp.check(CheckCode::to("+1555", "000000")).await.unwrap();
        assert!(rejected.approved().is_none());
        let approved = otp.check(CheckCode::to("+1555", "123456")).await.unwrap();
        assert_eq!(approved.approved().unwrap().to(), "+1555");
    }

    #[test]
    fn debug_shows_counts_not_calls() {
        let (otp, handle) = otp();
        handle.check().approve_next();
        let shown = format!("{otp:?}");
        assert!(shown.contains("scripted_answers: 1"), "{shown}");
    }
}
