//! Every public trait implemented from outside the crate, with the public API only (proofs built
//! through `keyward::backend`), then driven by keyward's own consumers: the room gate over an
//! outside `OtpProvider`, `VideoTokenIssuer` and `StateStore`; the 2-man-rule client over an
//! outside `KeySplitStore`; a software authenticator against an outside `AuthenticatorVerifier`.
//! If a seam needed something only the crate can reach, this file would not compile.
#![expect(
    clippy::unwrap_used,
    reason = "test backends: a poisoned lock is a failed test"
)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use keyward::keysplit::{
    AuthFactor, ChallengeRequest, ChallengeSession, KeySplitStore, SessionId, StoredBlob,
};
use keyward::otp::{
    CheckCode, CheckOutcome, OtpProvider, StartVerification, Verification, VerificationRef,
    VerificationStatus,
};
use keyward::store::{
    CasOutcome, Entry, Key, StateStore, Ttl, Version, Write, check_ttl, check_write,
};
use keyward::video::{AccessToken, FactorProof, VideoTokenIssuer, VideoTokenRequest};
use keyward::{Clock, Error, ErrorKind, ManualClock, Result, Secret, backend};

// ---------------------------------------------------------------------------------------------
// StateStore: a mutex around a map, with versions and expiry on an injected clock, and a size
// limit of its own.

const MAX_VALUE: usize = 1 << 20;

/// A stored value: bytes, version, expiry.
type Slot = (Vec<u8>, u64, Option<SystemTime>);

#[derive(Debug)]
struct OutsideStore {
    clock: Arc<dyn Clock>,
    inner: Mutex<(HashMap<String, Slot>, u64)>,
}

impl OutsideStore {
    fn new(clock: Arc<dyn Clock>) -> Self {
        OutsideStore {
            clock,
            inner: Mutex::new((HashMap::new(), 0)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Slot>, &mut u64, SystemTime) -> T) -> T {
        let now = self.clock.now();
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, version) = &mut *guard;
        map.retain(|_, slot| slot.2.is_none_or(|t| t > now));
        f(map, version, now)
    }
}

fn checked(value: &[u8], ttl: Option<Duration>) -> Result<()> {
    check_ttl(ttl)?;
    if value.len() > MAX_VALUE {
        return Err(Error::storage("value too large"));
    }
    Ok(())
}

#[async_trait]
impl StateStore for OutsideStore {
    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        Ok(self.with(|map, _, _| {
            map.get(key.as_str()).map(|(value, version, _)| Entry {
                value: value.clone(),
                version: Version::from_raw(*version),
            })
        }))
    }

    async fn insert(
        &self,
        key: &Key,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>> {
        checked(&value, ttl)?;
        Ok(self.with(|map, version, now| {
            if map.contains_key(key.as_str()) {
                return None;
            }
            *version += 1;
            map.insert(
                key.as_str().to_owned(),
                (value, *version, ttl.map(|d| now + d)),
            );
            Some(Version::from_raw(*version))
        }))
    }

    async fn put(&self, key: &Key, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version> {
        checked(&value, ttl)?;
        Ok(self.with(|map, version, now| {
            *version += 1;
            map.insert(
                key.as_str().to_owned(),
                (value, *version, ttl.map(|d| now + d)),
            );
            Version::from_raw(*version)
        }))
    }

    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Version,
        write: Write,
    ) -> Result<CasOutcome> {
        check_write(&write)?;
        if let Write::Set { value, .. } = &write {
            checked(value, None)?;
        }
        Ok(self.with(|map, version, now| {
            let Some(current) = map
                .get(key.as_str())
                .filter(|slot| slot.1 == expected.raw())
                .cloned()
            else {
                return CasOutcome::Conflict;
            };
            match write {
                Write::Delete => {
                    map.remove(key.as_str());
                    CasOutcome::Swapped { version: None }
                }
                Write::Set { value, ttl } => {
                    *version += 1;
                    let expires_at = match ttl {
                        Ttl::Keep => current.2,
                        Ttl::Never => None,
                        Ttl::After(d) => Some(now + d),
                    };
                    map.insert(key.as_str().to_owned(), (value, *version, expires_at));
                    CasOutcome::Swapped {
                        version: Some(Version::from_raw(*version)),
                    }
                }
            }
        }))
    }

    async fn take(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        Ok(self.with(|map, _, _| map.remove(key.as_str()).map(|slot| slot.0)))
    }

    async fn increment(&self, key: &Key, delta: u64, ttl: Option<Duration>) -> Result<u64> {
        check_ttl(ttl)?;
        self.with(|map, version, now| {
            let (current, expires_at) = match map.get(key.as_str()) {
                Some((value, _, expires_at)) => (
                    std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| Error::storage("not a counter"))?,
                    *expires_at,
                ),
                None => (0, ttl.map(|d| now + d)),
            };
            let next = current
                .checked_add(delta)
                .ok_or_else(|| Error::storage("counter overflow"))?;
            *version += 1;
            map.insert(
                key.as_str().to_owned(),
                (next.to_string().into_bytes(), *version, expires_at),
            );
            Ok(next)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// OtpProvider: codes kept hashed-by-equality in a map; "delivered" into a list the test reads.

#[derive(Default)]
struct OutsideOtp {
    pending: Mutex<HashMap<String, (Secret, u32)>>,
    delivered: Mutex<Vec<(String, Secret)>>,
    next: Mutex<u32>,
}

impl fmt::Debug for OutsideOtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutsideOtp").finish_non_exhaustive()
    }
}

impl OutsideOtp {
    fn last_code_to(&self, to: &str) -> Option<String> {
        let delivered = self.delivered.lock().unwrap();
        delivered
            .iter()
            .rev()
            .find(|(t, _)| t == to)
            .and_then(|(_, c)| c.expose_str().map(str::to_owned))
    }

    fn verification(to: &str, status: VerificationStatus) -> Verification {
        let mut v = Verification::new(
            format!("VEoutside{}", to.len()),
            to,
            keyward::otp::Channel::Sms,
        );
        v.valid = status == VerificationStatus::Approved;
        v.status = status;
        v
    }

    fn target(target: &VerificationRef) -> Result<String> {
        match target {
            VerificationRef::To(to) => Ok(to.clone()),
            _ => Err(Error::new(
                ErrorKind::Unsupported,
                "look-up by destination only",
            )),
        }
    }
}

#[async_trait]
impl OtpProvider for OutsideOtp {
    async fn start(&self, request: StartVerification) -> Result<Verification> {
        let to = request.channel.normalize_destination(&request.to)?;
        let code = {
            let mut next = self.next.lock().unwrap();
            *next += 1;
            Secret::from(format!("{:06}", 271_828 + *next))
        };
        self.pending
            .lock()
            .unwrap()
            .insert(to.clone(), (code.clone(), 0));
        self.delivered.lock().unwrap().push((to.clone(), code));
        Ok(Self::verification(&to, VerificationStatus::Pending))
    }

    async fn check(&self, request: CheckCode) -> Result<CheckOutcome> {
        let to = Self::target(&request.target)?;
        let mut pending = self.pending.lock().unwrap();
        let Some((code, attempts)) = pending.get_mut(&to) else {
            return Err(Error::new(ErrorKind::NotFound, "no pending verification"));
        };
        *attempts += 1;
        // Secret's equality is constant time.
        if *code == request.code {
            pending.remove(&to);
            let approved = Self::verification(&to, VerificationStatus::Approved);
            return Ok(CheckOutcome::Approved(backend::approved(approved)?));
        }
        if *attempts >= 5 {
            pending.remove(&to);
            return Err(Error::new(ErrorKind::TooManyAttempts, "too many checks"));
        }
        Ok(CheckOutcome::Rejected(Self::verification(
            &to,
            VerificationStatus::Pending,
        )))
    }

    async fn fetch(&self, target: VerificationRef) -> Result<Verification> {
        let to = Self::target(&target)?;
        match self.pending.lock().unwrap().contains_key(&to) {
            true => Ok(Self::verification(&to, VerificationStatus::Pending)),
            false => Err(Error::new(ErrorKind::NotFound, "no pending verification")),
        }
    }

    async fn cancel(&self, target: VerificationRef) -> Result<Verification> {
        let to = Self::target(&target)?;
        match self.pending.lock().unwrap().remove(&to) {
            Some(_) => Ok(Self::verification(&to, VerificationStatus::Canceled)),
            None => Err(Error::new(ErrorKind::NotFound, "no pending verification")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// VideoTokenIssuer: an HMAC-signed opaque token of another vendor.

#[derive(Debug)]
struct OutsideIssuer {
    clock: Arc<dyn Clock>,
    factors: Mutex<Vec<&'static str>>,
    issued: Mutex<Vec<String>>,
}

#[async_trait]
impl VideoTokenIssuer for OutsideIssuer {
    async fn issue(&self, proof: FactorProof, request: VideoTokenRequest) -> Result<AccessToken> {
        // This vendor records which factor admitted the participant.
        self.factors.lock().unwrap().push(proof.factor());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"outside-vendor-key");
        let issued_at = self.clock.now();
        let body = format!(
            "{}|{}",
            request.identity,
            request.room.as_deref().unwrap_or("*")
        );
        let tag = ring::hmac::sign(&key, body.as_bytes());
        let jwt = format!("{body}|{}", tag.as_ref().len());
        self.issued.lock().unwrap().push(request.identity.clone());
        Ok(AccessToken::new(
            jwt,
            request.identity,
            request.room,
            issued_at,
            issued_at + request.ttl,
        ))
    }
}

#[tokio::test]
async fn the_room_gate_runs_on_an_outside_otp_provider_issuer_and_store() {
    use keyward::video::gate::{Contact, MemoryDirectory, RoomGate};

    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let store: Arc<dyn StateStore> = Arc::new(OutsideStore::new(clock.clone()));
    let otp = Arc::new(OutsideOtp::default());
    let issuer = Arc::new(OutsideIssuer {
        clock: clock.clone(),
        factors: Mutex::new(Vec::new()),
        issued: Mutex::new(Vec::new()),
    });
    let directory = MemoryDirectory::new().with("mabel", Contact::phone("+18005554321"));
    let gate = RoomGate::builder(Arc::new(directory), otp.clone(), issuer.clone(), store)
        .room("My Room")
        .build()
        .unwrap();

    gate.login("mabel").await.unwrap();
    let code = otp.last_code_to("+18005554321").unwrap();
    let wrong = gate.verify("mabel", "000000").await.unwrap_err();
    assert_eq!(wrong.kind(), &ErrorKind::Rejected);
    let token = gate.verify("mabel", &code).await.unwrap();
    assert_eq!(token.identity, "mabel");
    assert_eq!(token.room.as_deref(), Some("My Room"));
    assert!(token.jwt().starts_with("mabel|My Room|"));
    assert_eq!(*issuer.issued.lock().unwrap(), ["mabel"]);
    assert_eq!(*issuer.factors.lock().unwrap(), ["otp"]);
    // The code was single use at the outside provider.
    let again = gate.verify("mabel", &code).await.unwrap_err();
    assert_eq!(again.kind(), &ErrorKind::Rejected);
    // An unknown identity gets nothing, whatever it types.
    gate.login("mallory").await.unwrap();
    assert!(gate.verify("mallory", &code).await.is_err());
    assert_eq!(issuer.issued.lock().unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// TotpProvider: a vendor's authenticator-app service, its proof built through `backend`.

#[derive(Debug, Default)]
struct OutsideTotp {
    /// identity -> (factor sid, the one code this fake vendor accepts, used?)
    factors: Mutex<HashMap<String, (String, String, bool)>>,
}

#[async_trait]
impl keyward::totp::TotpProvider for OutsideTotp {
    async fn enroll(
        &self,
        request: keyward::totp::EnrollTotp,
    ) -> Result<keyward::totp::TotpEnrollment> {
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("enrol {} in the vendor's console", request.identity),
        ))
    }

    async fn confirm(
        &self,
        request: keyward::totp::CheckTotp,
    ) -> Result<keyward::totp::TotpOutcome> {
        self.check(request).await
    }

    async fn check(&self, request: keyward::totp::CheckTotp) -> Result<keyward::totp::TotpOutcome> {
        let mut factors = self.factors.lock().unwrap();
        let Some((sid, code, used)) = factors.get_mut(&request.identity) else {
            return Err(Error::new(ErrorKind::NotFound, "no such factor"));
        };
        if *sid != request.factor_sid || *used || request.code.expose() != code.as_bytes() {
            return Ok(keyward::totp::TotpOutcome::Rejected);
        }
        *used = true;
        Ok(keyward::totp::TotpOutcome::Approved(
            backend::totp_approved(request.identity, request.factor_sid),
        ))
    }

    async fn remove(&self, identity: &str, _factor_sid: &str) -> Result<()> {
        self.factors.lock().unwrap().remove(identity);
        Ok(())
    }
}

#[tokio::test]
async fn the_room_gate_admits_on_an_outside_totp_provider() {
    use keyward::video::gate::{GateTiming, MemoryDirectory, RoomGate, TotpFactor};

    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let store: Arc<dyn StateStore> = Arc::new(OutsideStore::new(clock.clone()));
    let totp = Arc::new(OutsideTotp::default());
    totp.factors
        .lock()
        .unwrap()
        .insert("u-mabel".into(), ("YF1".into(), "246810".into(), false));
    let issuer = Arc::new(OutsideIssuer {
        clock: clock.clone(),
        factors: Mutex::new(Vec::new()),
        issued: Mutex::new(Vec::new()),
    });
    let directory = MemoryDirectory::new().with_totp("mabel", TotpFactor::new("u-mabel", "YF1"));
    let gate = RoomGate::builder(
        Arc::new(directory),
        Arc::new(OutsideOtp::default()),
        issuer.clone(),
        store,
    )
    .timing(GateTiming::new(Duration::ZERO, Duration::ZERO))
    .totp(totp)
    .build()
    .unwrap();
    let wrong = gate.verify_totp("mabel", "135791").await.unwrap_err();
    assert_eq!(wrong.kind(), &ErrorKind::Rejected);
    let token = gate.verify_totp("mabel", "246810").await.unwrap();
    assert_eq!(token.identity, "mabel");
    assert_eq!(*issuer.factors.lock().unwrap(), ["totp"]);
    let again = gate.verify_totp("mabel", "246810").await.unwrap_err();
    assert_eq!(again.kind(), &ErrorKind::Rejected);
    let stranger = gate.verify_totp("mallory", "246810").await.unwrap_err();
    assert_eq!(stranger.kind(), &ErrorKind::Rejected);
}

#[tokio::test]
async fn an_outside_otp_provider_builds_its_proof_through_backend() {
    let otp: Arc<dyn OtpProvider> = Arc::new(OutsideOtp::default());
    let v = otp
        .start(StartVerification::new(
            "+1 800 555 1234",
            keyward::otp::Channel::Sms,
        ))
        .await
        .unwrap();
    assert_eq!(v.to, "+18005551234");
    let rejected = otp
        .check(CheckCode::to("+18005551234", "999999"))
        .await
        .unwrap();
    assert!(rejected.approved().is_none());
    assert!(
        otp.fetch(VerificationRef::To("+18005551234".into()))
            .await
            .is_ok()
    );
    let canceled = otp
        .cancel(VerificationRef::To("+18005551234".into()))
        .await
        .unwrap();
    assert_eq!(canceled.status, VerificationStatus::Canceled);
    let gone = otp
        .check(CheckCode::to("+18005551234", "271829"))
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), &ErrorKind::NotFound);
    // The proof cannot be had for a verification that is not approved.
    let pending = Verification::new("VE1", "+18005551234", keyward::otp::Channel::Sms);
    assert!(backend::approved(pending).is_err());
}

#[cfg(feature = "testing")]
#[tokio::test]
async fn an_outside_state_store_passes_the_conformance_suite() {
    use keyward::testing::conformance::{self, StoreCapabilities};
    let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
    let store = OutsideStore::new(clock.clone());
    conformance::state_store(&store, &StoreCapabilities::manual_clock(clock)).await;
}

// ---------------------------------------------------------------------------------------------
// KeySplitStore: the SSKS rules (a challenge once something is stored; search only for a session
// that passed one), in memory.

/// A session: the user, the challenge sent (if any), whether it passed one.
type Session = (String, Option<Secret>, bool);

#[derive(Default)]
struct OutsideSsks {
    sessions: Mutex<HashMap<String, Session>>,
    blobs: Mutex<HashMap<String, (String, bool)>>, // user -> (blob, authenticated)
    challenges: Mutex<Vec<Secret>>,
    counter: Mutex<u64>,
}

impl fmt::Debug for OutsideSsks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutsideSsks").finish_non_exhaustive()
    }
}

impl OutsideSsks {
    fn fresh_id(&self, prefix: &str) -> String {
        let mut counter = self.counter.lock().unwrap();
        *counter += 1;
        format!("{prefix}-{}", *counter)
    }

    fn session(&self, id: &SessionId) -> Result<Session> {
        let id = id.expose().to_owned();
        self.sessions
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "unknown session"))
    }
}

#[async_trait]
impl KeySplitStore for OutsideSsks {
    async fn open_session(&self, request: ChallengeRequest) -> Result<ChallengeSession> {
        let stored = self.blobs.lock().unwrap().contains_key(&request.user_id);
        let challenge = stored.then(|| Secret::from(self.fresh_id("challenge")));
        if let Some(c) = &challenge {
            self.challenges.lock().unwrap().push(c.clone());
        }
        let id = self.fresh_id("session");
        self.sessions
            .lock()
            .unwrap()
            .insert(id.clone(), (request.user_id.clone(), challenge, false));
        Ok(ChallengeSession {
            session_id: SessionId::new(id),
            must_authenticate: stored,
        })
    }

    async fn validate_challenge(
        &self,
        session: &SessionId,
        challenge: &Secret,
        _auth_factor: &AuthFactor,
    ) -> Result<SessionId> {
        let (user, expected, _) = self.session(session)?;
        self.sessions.lock().unwrap().remove(session.expose());
        if expected.as_ref() != Some(challenge) {
            return Err(Error::new(ErrorKind::Rejected, "wrong challenge"));
        }
        let id = self.fresh_id("authenticated");
        self.sessions
            .lock()
            .unwrap()
            .insert(id.clone(), (user, None, true));
        Ok(SessionId::new(id))
    }

    async fn push(
        &self,
        session: &SessionId,
        _auth_factor: &AuthFactor,
        data_b64: &str,
    ) -> Result<String> {
        let (user, _, authenticated) = self.session(session)?;
        let mut blobs = self.blobs.lock().unwrap();
        if !authenticated && blobs.contains_key(&user) {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "an unchallenged session pushes only the first blob",
            ));
        }
        blobs.insert(user.clone(), (data_b64.to_owned(), authenticated));
        Ok(user)
    }

    async fn search(&self, session: &SessionId) -> Result<StoredBlob> {
        let (user, _, authenticated) = self.session(session)?;
        if !authenticated {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "search needs a challenged session",
            ));
        }
        let (data_b64, authenticated) = self
            .blobs
            .lock()
            .unwrap()
            .get(&user)
            .cloned()
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "nothing stored"))?;
        Ok(StoredBlob {
            data_b64,
            authenticated,
        })
    }
}

#[tokio::test]
async fn an_outside_key_split_store_challenges_once_something_is_stored() {
    let ssks: Arc<dyn KeySplitStore> = Arc::new(OutsideSsks::default());
    let factor = AuthFactor::email("bob@example.com").unwrap();
    let request = ChallengeRequest::new("bob", factor.clone(), "code: $$CHALLENGE$$");
    let first = ssks.open_session(request.clone()).await.unwrap();
    assert!(!first.must_authenticate);
    ssks.push(&first.session_id, &factor, "aGVsbG8=")
        .await
        .unwrap();
    let refused = ssks.search(&first.session_id).await.unwrap_err();
    assert_eq!(refused.kind(), &ErrorKind::Forbidden);
    let second = ssks.open_session(request).await.unwrap();
    assert!(second.must_authenticate);
    let wrong = ssks
        .validate_challenge(&second.session_id, &Secret::from("nope"), &factor)
        .await
        .unwrap_err();
    assert_eq!(wrong.kind(), &ErrorKind::Rejected);
}

#[cfg(feature = "ssks")]
#[tokio::test]
async fn the_two_man_rule_client_runs_on_an_outside_key_split_store() {
    use keyward::SystemRandom;
    use keyward::keysplit::{KeyKind, SsksSession, TwoManRuleClient, TwoManRuleKey};

    let ssks = Arc::new(OutsideSsks::default());
    let client = TwoManRuleClient::new(ssks.clone(), "app");
    let factor = AuthFactor::email("alice@example.com").unwrap();
    let key = TwoManRuleKey::generate(KeyKind::Raw, &SystemRandom::new()).unwrap();
    let open = |opened: ChallengeSession| SsksSession {
        session_id: opened.session_id,
        must_authenticate: opened.must_authenticate,
        two_man_rule_key: key.clone(),
        user_id: "alice".into(),
        auth_factor: factor.clone(),
    };
    let request = ChallengeRequest::new("alice", factor.clone(), "code: $$CHALLENGE$$");

    let first = open(ssks.open_session(request.clone()).await.unwrap());
    assert!(!first.must_authenticate);
    client
        .save_identity(&first, None, b"identity-private-key")
        .await
        .unwrap();

    let second = open(ssks.open_session(request).await.unwrap());
    assert!(second.must_authenticate);
    let challenge = ssks.challenges.lock().unwrap().last().cloned().unwrap();
    let retrieved = client
        .retrieve_identity(&second, Some(&challenge))
        .await
        .unwrap();
    assert_eq!(retrieved.identity.expose(), b"identity-private-key");
    // The first blob was pushed unchallenged: the client re-encrypted it through the challenged
    // session (the same identity, so not renewed).
    assert!(retrieved.reencrypted && !retrieved.renewed);
    assert!(ssks.blobs.lock().unwrap().get("alice").unwrap().1);
}

// ---------------------------------------------------------------------------------------------
// AuthenticatorVerifier: a small relying party of its own (ES256, `none` attestation), using
// keyward's public parsers and signature check, its own single-use challenge map, and the
// `backend` constructors for its states and proofs.

#[cfg(all(feature = "webauthn", feature = "testing"))]
mod outside_verifier {
    use super::*;
    use keyward::SystemRandom;
    use keyward::webauthn::json::{
        CredentialDescriptorJson, PubKeyCredParamJson, PublicKeyType, RpEntityJson, UserEntityJson,
    };
    use keyward::webauthn::{
        AttestationConveyance, AttestationObject, AuthenticationRequest,
        AuthenticationResponseJson, AuthenticationState, AuthenticatorData, AuthenticatorVerifier,
        Base64UrlBytes, ClientData, CreationOptionsJson, CredentialPublicKey, RegisteredCredential,
        RegistrationRequest, RegistrationResponseJson, RegistrationState, RequestOptionsJson,
        SignatureBackend, UserVerification, VerifiedAssertion, WebAuthnFailure, alg,
    };

    const ORIGIN: &str = "https://outside.example";
    const RP_ID: &str = "outside.example";
    const MAX: usize = 64 * 1024;

    #[derive(Debug, Default)]
    pub(super) struct OutsideVerifier {
        challenges: Mutex<HashMap<String, Vec<u8>>>,
        credentials: Mutex<HashMap<Vec<u8>, RegisteredCredential>>,
        counter: Mutex<u64>,
    }

    fn fail(reason: WebAuthnFailure) -> Error {
        Error::webauthn(reason)
    }

    impl OutsideVerifier {
        fn open(&self) -> Result<(String, Vec<u8>)> {
            let challenge = keyward::random_array::<32>(&SystemRandom::new())?.to_vec();
            let mut counter = self.counter.lock().unwrap();
            *counter += 1;
            let id = format!("ceremony-{}", *counter);
            self.challenges
                .lock()
                .unwrap()
                .insert(id.clone(), challenge.clone());
            Ok((id, challenge))
        }

        /// Single use: the recorded challenge leaves the map before any check.
        fn consume(&self, ceremony_id: &str, challenge: &[u8]) -> Result<()> {
            match self.challenges.lock().unwrap().remove(ceremony_id) {
                Some(c) if c == challenge => Ok(()),
                _ => Err(fail(WebAuthnFailure::StateConsumed)),
            }
        }

        fn client_data(&self, bytes: &[u8], kind: &str, challenge: &[u8]) -> Result<()> {
            let client = ClientData::parse(bytes, MAX)?;
            if client.kind() != kind {
                return Err(fail(WebAuthnFailure::TypeMismatch));
            }
            if client.origin() != ORIGIN {
                return Err(fail(WebAuthnFailure::OriginNotAllowed(
                    client.origin().to_owned(),
                )));
            }
            if !client.challenge_matches(challenge) {
                return Err(fail(WebAuthnFailure::ChallengeMismatch));
            }
            Ok(())
        }

        fn auth_data_checks(data: &AuthenticatorData<'_>) -> Result<()> {
            let hash = ring::digest::digest(&ring::digest::SHA256, RP_ID.as_bytes());
            if data.rp_id_hash() != hash.as_ref() {
                return Err(fail(WebAuthnFailure::RpIdHashMismatch));
            }
            if !data.user_present() {
                return Err(fail(WebAuthnFailure::UserNotPresent));
            }
            Ok(())
        }
    }

    #[async_trait]
    impl AuthenticatorVerifier for OutsideVerifier {
        async fn start_registration(
            &self,
            request: RegistrationRequest,
        ) -> Result<(CreationOptionsJson, RegistrationState)> {
            let (id, challenge) = self.open()?;
            let options = CreationOptionsJson {
                rp: RpEntityJson {
                    id: Some(RP_ID.into()),
                    name: "Outside".into(),
                },
                user: UserEntityJson {
                    id: Base64UrlBytes(request.user.id.clone()),
                    name: request.user.name.clone(),
                    display_name: request.user.display_name.clone(),
                },
                challenge: Base64UrlBytes(challenge.clone()),
                pub_key_cred_params: vec![PubKeyCredParamJson {
                    kind: PublicKeyType::PublicKey,
                    alg: alg::ES256,
                }],
                timeout: None,
                exclude_credentials: Vec::new(),
                authenticator_selection: None,
                hints: Vec::new(),
                attestation: Some(AttestationConveyance::None),
                attestation_formats: Vec::new(),
                extensions: None,
            };
            let mut parts = backend::RegistrationStateParts::new(id, challenge, request.user, 0);
            parts.algorithms = vec![alg::ES256];
            Ok((options, backend::registration_state(parts)))
        }

        async fn finish_registration(
            &self,
            state: RegistrationState,
            response: &RegistrationResponseJson,
        ) -> Result<RegisteredCredential> {
            let parts = backend::registration_state_parts(state);
            self.consume(&parts.ceremony_id, &parts.challenge)?;
            self.client_data(
                response.response.client_data_json.as_slice(),
                "webauthn.create",
                &parts.challenge,
            )?;
            let object =
                AttestationObject::parse(response.response.attestation_object.as_slice(), MAX)?;
            if object.format() != "none" {
                return Err(fail(WebAuthnFailure::UnsupportedAttestationFormat));
            }
            let data = object.authenticator_data(MAX)?;
            Self::auth_data_checks(&data)?;
            let attested = data
                .attested_credential()
                .ok_or_else(|| fail(WebAuthnFailure::MissingCredentialData))?;
            let key = CredentialPublicKey::from_cose(attested.public_key_cose())?;
            if !parts.algorithms.contains(&key.algorithm()) {
                return Err(fail(WebAuthnFailure::AlgorithmNotRequested));
            }
            let mut credential = RegisteredCredential::imported(
                attested.credential_id(),
                parts.user.id.clone(),
                attested.public_key_cose(),
                data.sign_count(),
            )?;
            credential.aaguid = attested.aaguid();
            credential.user_verified = data.user_verified();
            credential.backup_eligible = data.backup_eligible();
            credential.backed_up = data.backed_up();
            self.credentials
                .lock()
                .unwrap()
                .insert(credential.credential_id.clone(), credential.clone());
            Ok(credential)
        }

        async fn start_authentication(
            &self,
            request: AuthenticationRequest,
        ) -> Result<(RequestOptionsJson, AuthenticationState)> {
            let (id, challenge) = self.open()?;
            let allowed: Vec<Vec<u8>> = match &request.user_id {
                Some(user) => self
                    .credentials
                    .lock()
                    .unwrap()
                    .values()
                    .filter(|c| &c.user_id == user)
                    .map(|c| c.credential_id.clone())
                    .collect(),
                None => Vec::new(),
            };
            let options = RequestOptionsJson {
                challenge: Base64UrlBytes(challenge.clone()),
                timeout: None,
                rp_id: Some(RP_ID.into()),
                allow_credentials: allowed
                    .iter()
                    .map(|id| CredentialDescriptorJson {
                        kind: PublicKeyType::PublicKey,
                        id: Base64UrlBytes(id.clone()),
                        transports: Vec::new(),
                    })
                    .collect(),
                user_verification: Some(UserVerification::Preferred),
                hints: Vec::new(),
                extensions: None,
            };
            let mut parts =
                backend::AuthenticationStateParts::new(id, challenge, request.user_id, 0);
            parts.allowed_credentials = allowed;
            Ok((options, backend::authentication_state(parts)))
        }

        async fn finish_authentication(
            &self,
            state: AuthenticationState,
            response: &AuthenticationResponseJson,
        ) -> Result<VerifiedAssertion> {
            let parts = backend::authentication_state_parts(state);
            self.consume(&parts.ceremony_id, &parts.challenge)?;
            let client_bytes = response.response.client_data_json.as_slice();
            self.client_data(client_bytes, "webauthn.get", &parts.challenge)?;
            let credential_id = response.raw_id.as_slice().to_vec();
            if !parts.allowed_credentials.is_empty()
                && !parts.allowed_credentials.contains(&credential_id)
            {
                return Err(fail(WebAuthnFailure::CredentialNotAllowed));
            }
            let mut credentials = self.credentials.lock().unwrap();
            let stored = credentials
                .get_mut(&credential_id)
                .ok_or_else(|| fail(WebAuthnFailure::UnknownCredential))?;
            let auth_bytes = response.response.authenticator_data.as_slice();
            let data = AuthenticatorData::parse(auth_bytes, MAX)?;
            Self::auth_data_checks(&data)?;
            let mut message = auth_bytes.to_vec();
            message.extend_from_slice(
                ring::digest::digest(&ring::digest::SHA256, client_bytes).as_ref(),
            );
            CredentialPublicKey::from_cose(&stored.public_key_cose)?.verify(
                SignatureBackend::Ring,
                &message,
                response.response.signature.as_slice(),
            )?;
            let regressed = data.sign_count() != 0 && data.sign_count() <= stored.sign_count;
            if regressed {
                return Err(fail(WebAuthnFailure::CounterRegression));
            }
            stored.sign_count = data.sign_count();
            let mut proof = backend::AssertionParts::new(
                credential_id,
                stored.user_id.clone(),
                data.sign_count(),
            );
            proof.user_verified = data.user_verified();
            proof.backup_eligible = data.backup_eligible();
            proof.backed_up = data.backed_up();
            Ok(backend::verified_assertion(proof))
        }
    }

    #[tokio::test]
    async fn a_software_authenticator_registers_and_signs_in_at_an_outside_verifier() {
        use keyward::testing::SoftAuthenticator;
        use keyward::webauthn::UserEntity;

        let verifier: Arc<dyn AuthenticatorVerifier> = Arc::new(OutsideVerifier::default());
        let authenticator = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
        let user = UserEntity::new(b"user-1".to_vec(), "alice", "Alice").unwrap();

        let (options, state) = verifier
            .start_registration(RegistrationRequest::new(user))
            .await
            .unwrap();
        let response = authenticator.register(&options).unwrap();
        let credential = verifier
            .finish_registration(state.clone(), &response)
            .await
            .unwrap();
        assert_eq!(credential.algorithm, alg::ES256);
        // The registration state is single use.
        let again = verifier
            .finish_registration(state, &response)
            .await
            .unwrap_err();
        assert_eq!(
            again.webauthn_failure(),
            Some(&WebAuthnFailure::StateConsumed)
        );

        let (options, state) = verifier
            .start_authentication(AuthenticationRequest::for_user(b"user-1".to_vec()))
            .await
            .unwrap();
        let assertion = authenticator.authenticate(&options).unwrap();
        let proof = verifier
            .finish_authentication(state.clone(), &assertion)
            .await
            .unwrap();
        assert_eq!(proof.user_id(), b"user-1");
        assert_eq!(proof.credential_id(), credential.credential_id.as_slice());
        let replay = verifier
            .finish_authentication(state, &assertion)
            .await
            .unwrap_err();
        assert_eq!(
            replay.webauthn_failure(),
            Some(&WebAuthnFailure::StateConsumed)
        );

        // A response signed for another ceremony's challenge is refused.
        let (_, state) = verifier
            .start_authentication(AuthenticationRequest::discoverable())
            .await
            .unwrap();
        let wrong = verifier
            .finish_authentication(state, &assertion)
            .await
            .unwrap_err();
        assert_eq!(
            wrong.webauthn_failure(),
            Some(&WebAuthnFailure::ChallengeMismatch)
        );
    }

    #[tokio::test]
    async fn the_room_gate_admits_a_passkey_sign_in_bound_to_a_participant() {
        use keyward::testing::SoftAuthenticator;
        use keyward::video::gate::{Contact, MemoryDirectory, RoomGate};
        use keyward::webauthn::UserEntity;

        let clock = Arc::new(ManualClock::at_unix(1_700_000_000));
        let verifier = OutsideVerifier::default();
        let authenticator = SoftAuthenticator::new(alg::ES256, ORIGIN).unwrap();
        for handle in [b"mabel-handle".to_vec(), b"stranger-handle".to_vec()] {
            let user = UserEntity::new(handle, "someone", "Someone").unwrap();
            let (options, state) = verifier
                .start_registration(RegistrationRequest::new(user))
                .await
                .unwrap();
            let response = authenticator.register(&options).unwrap();
            verifier
                .finish_registration(state, &response)
                .await
                .unwrap();
        }
        let sign_in = |handle: &'static [u8]| {
            let verifier = &verifier;
            let authenticator = &authenticator;
            async move {
                let (options, state) = verifier
                    .start_authentication(AuthenticationRequest::for_user(handle.to_vec()))
                    .await
                    .unwrap();
                let response = authenticator.authenticate(&options).unwrap();
                verifier
                    .finish_authentication(state, &response)
                    .await
                    .unwrap()
            }
        };

        let issuer = Arc::new(OutsideIssuer {
            clock: clock.clone(),
            factors: Mutex::new(Vec::new()),
            issued: Mutex::new(Vec::new()),
        });
        let directory = MemoryDirectory::new()
            .with("mabel", Contact::phone("+18005554321"))
            .with_passkey("mabel", b"mabel-handle".to_vec());
        let store: Arc<dyn StateStore> = Arc::new(OutsideStore::new(clock));
        let gate = RoomGate::builder(
            Arc::new(directory),
            Arc::new(OutsideOtp::default()),
            issuer.clone(),
            store,
        )
        .room("My Room")
        .build()
        .unwrap();

        let token = gate
            .admit_passkey(sign_in(b"mabel-handle").await)
            .await
            .unwrap();
        assert_eq!(token.identity, "mabel");
        assert_eq!(token.room.as_deref(), Some("My Room"));
        assert_eq!(*issuer.factors.lock().unwrap(), ["passkey"]);
        // A verified assertion of a user handle no participant holds gets nothing.
        let refused = gate
            .admit_passkey(sign_in(b"stranger-handle").await)
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), &ErrorKind::Rejected);
        assert_eq!(issuer.issued.lock().unwrap().len(), 1);
    }
}
