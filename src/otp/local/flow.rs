//! The flows: start (new verification or re-send), check, cancel and fetch, each one
//! compare-and-swap (or insert) of the destination's one record.

use std::future::Future;
use std::time::Duration;

use super::codes::{TAG_LEN, parse_sid};
use super::message::check_local_parameters;
use super::record::{Ended, Record, transaction};
use super::{LocalOtpProvider, MAX_START_ROUNDS, from_ms};
use crate::error::{Error, ErrorKind, Result};
use crate::otp::sender::OutgoingMessage;
use crate::otp::{
    Channel, CheckCode, CheckOutcome, StartVerification, Verification, VerificationRef,
    VerificationStatus,
};
use crate::secret::Secret;
use crate::store::record::Unknown;
use crate::store::{CasOutcome, Key, MAX_CAS_RETRIES, Ttl, Version, Write};

/// The future of a start or check: `$flow`, an `async` block borrowing the request from the
/// `async move` block around it, which holds the request once (an `async fn` keeps a by-value
/// argument twice); with `tracing`, inside `$span` and ending with the refusal event
/// `#[instrument(err(Display, level = "info"))]` would add.
macro_rules! traced_flow {
    ($span:expr, $output:ty, $flow:expr) => {{
        #[cfg(feature = "tracing")]
        let span = $span;
        let flow = async move {
            let outcome: Result<$output> = $flow.await;
            #[cfg(feature = "tracing")]
            if let Err(e) = &outcome {
                tracing::info!(error = %e);
            }
            outcome
        };
        #[cfg(feature = "tracing")]
        let flow = tracing::Instrument::instrument(flow, span);
        flow
    }};
}

/// Where a check, fetch or cancel looks.
struct Target {
    key: Key,
    /// The sid asked for (by sid), checked against the record's.
    sid: Option<[u8; 16]>,
    /// The destination's keyed hash (by destination), checked against the record's.
    destination: Option<[u8; 16]>,
    /// The sid's keyed hash (by sid), which also draws its code.
    prf: Option<[u8; 32]>,
    /// The destination the caller named (by destination), reported instead of the masked one.
    to: Option<String>,
}

impl LocalOtpProvider {
    /// The verification of a destination, by the first bytes of its keyed hash.
    pub(super) fn record_key(tag: &[u8]) -> Key {
        Key::ephemeral("otp").part("v").bytes(tag)
    }

    /// The store TTL of a pending record: until expiry, then the tombstone window.
    fn record_ttl(&self, record: &Record, now_ms: u64) -> Duration {
        Duration::from_millis(record.expires_ms.saturating_sub(now_ms)) + self.config.tombstone_ttl
    }

    /// The verification a caller sees; `to` is the destination they named (moved in, not
    /// copied), or the record's masked form when they named a sid.
    fn to_verification(record: &Record, to: String, status: VerificationStatus) -> Verification {
        Verification {
            sid: record.sid(),
            to,
            channel: record.channel.clone(),
            valid: status == VerificationStatus::Approved,
            status,
            send_attempts: record.sends,
            created_at: Some(from_ms(record.created_ms)),
            updated_at: Some(from_ms(record.updated_ms)),
            expires_at: Some(from_ms(record.expires_ms)),
        }
    }

    /// The error for a verification that is no longer pending.
    fn gone(record: &Record) -> Error {
        match record.ended {
            None => Error::new(ErrorKind::Expired, "the verification expired"),
            Some(Ended::MaxAttemptsReached) => Error::new(
                ErrorKind::TooManyAttempts,
                "max check attempts reached for this verification",
            ),
            Some(Ended::Approved) => Error::new(
                ErrorKind::NotFound,
                "the verification was already approved and no longer exists",
            ),
            Some(Ended::Canceled) => {
                Error::new(ErrorKind::NotFound, "no such pending verification")
            }
        }
    }

    fn not_found() -> Error {
        Error::new(ErrorKind::NotFound, "no such pending verification")
    }

    /// Finds the key a reference points to (no store access: a sid carries its key).
    fn locate(&self, target: &VerificationRef) -> Result<Target> {
        match target {
            VerificationRef::Sid(sid) => {
                let Some(raw) = parse_sid(sid) else {
                    return Err(Error::invalid_input(
                        "a verification sid is VE followed by 32 hex digits",
                    ));
                };
                let prf = self.sid_prf(&raw);
                Ok(Target {
                    key: Self::record_key(&Self::sid_tag(&raw, &prf)),
                    sid: Some(raw),
                    destination: None,
                    prf: Some(prf),
                    to: None,
                })
            }
            VerificationRef::To(to) => {
                let to = Channel::Auto.normalize_destination(to)?;
                let destination = self.destination_id(&to);
                Ok(Target {
                    key: Self::record_key(&destination[..TAG_LEN]),
                    sid: None,
                    destination: Some(destination),
                    prf: None,
                    to: Some(to),
                })
            }
        }
    }

    /// Reads the record a target names: `(record, version)`, `NotFound` when there is none (or
    /// the destination's record is a later verification than the sid asked for).
    async fn read(&self, target: &Target) -> Result<(Record, Version)> {
        let entry = self
            .store
            .get(&target.key)
            .await?
            .ok_or_else(Self::not_found)?;
        let record = Record::decode(&entry.value)?;
        // A sid whose destination now holds a later verification, or (with a negligible
        // chance) another destination sharing the tag: nothing to act on.
        if target.sid.is_some_and(|sid| sid != record.sid)
            || target.destination.is_some_and(|d| d != record.destination)
        {
            return Err(Self::not_found());
        }
        Ok((record, entry.version))
    }

    pub(super) fn new_record(
        &self,
        to: &str,
        destination: &[u8; 16],
        channel: &Channel,
        request: &StartVerification,
    ) -> Result<(Record, [u8; 32])> {
        let (sid, prf) = self.new_sid(destination)?;
        let now_ms = self.now_ms();
        let ttl_ms = u64::try_from(self.config.code_ttl.as_millis()).unwrap_or(u64::MAX);
        let txn = transaction(&request.amount, &request.payee);
        let (custom_hash, code_len) = match &request.custom_code {
            Some(custom) => (
                Some(self.custom_hash(&sid, custom.expose(), txn)),
                custom_len(custom)?,
            ),
            None => (None, self.config.code_length),
        };
        let record = Record {
            sid,
            destination: *destination,
            masked_to: crate::normalize::mask(to),
            channel: channel.clone(),
            locale: request.locale.clone(),
            custom_hash,
            code_len,
            sends: 1,
            attempts: 0,
            created_ms: now_ms,
            updated_ms: now_ms,
            expires_ms: now_ms.saturating_add(ttl_ms),
            ended: None,
            friendly_name: request.custom_friendly_name.clone(),
            custom_message: request.custom_message.clone(),
            amount: request.amount.clone(),
            payee: request.payee.clone(),
            app_hash: request.app_hash.clone(),
            later: Unknown::default(),
        };
        Ok((record, prf))
    }

    /// The record after a re-send, or why it cannot be re-sent.
    fn resent(
        &self,
        record: &Record,
        channel: &Channel,
        request: &StartVerification,
    ) -> Result<Record> {
        if record.sends >= self.config.max_sends {
            return Err(too_many_sends());
        }
        let asked = transaction(&request.amount, &request.payee);
        if asked.is_some() && asked != transaction(&record.amount, &record.payee) {
            return Err(Error::invalid_input(
                "a re-send cannot change the transaction: cancel and start again",
            ));
        }
        let mut next = record.clone();
        match &request.custom_code {
            Some(custom) => {
                next.code_len = custom_len(custom)?;
                next.custom_hash = Some(self.custom_hash(
                    &record.sid,
                    custom.expose(),
                    transaction(&record.amount, &record.payee),
                ));
            }
            None if record.custom_hash.is_some() => {
                return Err(Error::invalid_input(
                    "this verification uses a custom code: pass it again to re-send",
                ));
            }
            None => {}
        }
        next.sends += 1;
        next.updated_ms = self.now_ms();
        next.channel = channel.clone();
        if request.locale.is_some() {
            next.locale = request.locale.clone();
        }
        Ok(next)
    }

    /// A start. Not an `async fn`: one of those keeps its by-value argument twice (as the
    /// argument and as the body's local), and the request is the largest part of the future
    /// every start boxes. The `async move` block holds it once.
    pub(super) fn start_inner(
        &self,
        request: StartVerification,
    ) -> impl Future<Output = Result<Verification>> + Send + '_ {
        traced_flow!(
            tracing::info_span!(
                "keyward.otp.start",
                backend = "local",
                channel = %request.channel,
                to = %crate::trace::masked(&request.to)
            ),
            Verification,
            async {
                let channel = match request.channel {
                    Channel::Sms | Channel::Call | Channel::Email | Channel::Whatsapp => {
                        request.channel.clone()
                    }
                    Channel::Auto if request.to.contains('@') => Channel::Email,
                    Channel::Auto => Channel::Sms,
                    Channel::Sna | Channel::Other(_) => {
                        return Err(Error::new(
                            ErrorKind::Unsupported,
                            "the self-hosted provider delivers by sms, call, email or whatsapp only",
                        ));
                    }
                };
                let to = channel.normalize_destination(&request.to)?;
                if let Some(custom) = &request.custom_code {
                    custom_len(custom)?;
                }
                check_local_parameters(&request)?;
                if let Some(locale) = &request.locale {
                    let ok = (1..=35).contains(&locale.len())
                        && locale
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    if !ok {
                        return Err(Error::invalid_input("locale must be a language tag"));
                    }
                }
                let destination = self.destination_id(&to);
                let key = Self::record_key(&destination[..TAG_LEN]);
                let mut counted = false;
                for _ in 0..MAX_START_ROUNDS {
                    let current = self.store.get(&key).await?;
                    // The round's write, message and answer are decided here, so no record is
                    // held across the awaits below (the future of a start stays small).
                    let round = self.plan_start(current, &to, &destination, &channel, &request)?;
                    if !counted {
                        if self.config.send_budget.is_some()
                            || self.config.send_rate_limit.is_some()
                        {
                            // Boxed: its state would otherwise widen every start's future.
                            Box::pin(self.count_send(&destination, request.client.as_deref()))
                                .await?;
                        }
                        counted = true;
                    }
                    match round.write {
                        // A live verification for this destination: re-send its code.
                        StartWrite::Resend { version, value } => {
                            let write = Write::Set {
                                value,
                                ttl: Ttl::Keep,
                            };
                            if self.store.compare_and_swap(&key, version, write).await?
                                == CasOutcome::Conflict
                            {
                                continue;
                            }
                            self.sender.send(&round.message).await?;
                        }
                        // None, or an ended one: a new verification replaces it.
                        StartWrite::New {
                            replaces,
                            value,
                            ttl,
                        } => {
                            let written = match replaces {
                                Some(version) => {
                                    let write = Write::Set {
                                        value,
                                        ttl: Ttl::After(ttl),
                                    };
                                    match self.store.compare_and_swap(&key, version, write).await? {
                                        CasOutcome::Swapped { version } => version,
                                        CasOutcome::Conflict => None,
                                    }
                                }
                                None => self.store.insert(&key, value, Some(ttl)).await?,
                            };
                            let Some(version) = written else {
                                continue; // a concurrent start won: re-send theirs
                            };
                            if let Err(err) = self.sender.send(&round.message).await {
                                // Nothing reached the user: forget the verification so a
                                // retry starts afresh.
                                self.store
                                    .compare_and_swap(&key, version, Write::Delete)
                                    .await?;
                                return Err(err);
                            }
                        }
                    }
                    let mut verification = round.verification;
                    verification.to = to;
                    return Ok(verification);
                }
                Err(Error::storage(
                    "too much contention starting a verification for this destination",
                ))
            }
        )
    }

    /// What one round of a start writes, sends and answers, from the destination's current
    /// entry: a re-send of a live verification, or a new one replacing an absent or ended one.
    /// The answer's `to` is left empty for the caller to fill.
    fn plan_start(
        &self,
        current: Option<crate::store::Entry>,
        to: &str,
        destination: &[u8; 16],
        channel: &Channel,
        request: &StartVerification,
    ) -> Result<StartRound> {
        let now_ms = self.now_ms();
        if let Some(entry) = &current {
            let peek = Record::peek(&entry.value, now_ms)?;
            if peek.destination != *destination {
                // Two destinations whose 80-bit tags collide (about one chance in 10^12 for a
                // million destinations): refuse rather than touch the other one's verification.
                return Err(Error::storage(
                    "another destination holds this verification slot; try again later",
                ));
            }
            if peek.pending {
                // A live verification for this destination: re-send its code.
                let record = Record::decode(&entry.value)?;
                let next = self.resent(&record, channel, request)?;
                let code = self.code_for(&next, request.custom_code.as_ref(), None)?;
                return Ok(StartRound {
                    message: self.message(to, &next, code)?,
                    verification: Self::to_verification(
                        &next,
                        String::new(),
                        VerificationStatus::Pending,
                    ),
                    write: StartWrite::Resend {
                        version: entry.version,
                        value: next.encode(),
                    },
                });
            }
        }
        let (record, prf) = self.new_record(to, destination, channel, request)?;
        let code = self.code_for(&record, request.custom_code.as_ref(), Some(&prf))?;
        Ok(StartRound {
            message: self.message(to, &record, code)?,
            verification: Self::to_verification(
                &record,
                String::new(),
                VerificationStatus::Pending,
            ),
            write: StartWrite::New {
                replaces: current.map(|entry| entry.version),
                value: record.encode(),
                ttl: self.record_ttl(&record, now_ms),
            },
        })
    }

    /// A check, built as [`start_inner`](Self::start_inner) is so the request is held once.
    pub(super) fn check_inner(
        &self,
        request: CheckCode,
    ) -> impl Future<Output = Result<CheckOutcome>> + Send + '_ {
        traced_flow!(
            tracing::info_span!("keyward.otp.check", backend = "local", target = ?request.target),
            CheckOutcome,
            async {
                if request.is_sna() || request.sna_client_token.is_some() {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        "the self-hosted provider has no silent network authentication",
                    ));
                }
                let txn = transaction(&request.amount, &request.payee);
                let code = request.code.expose();
                if !(4..=10).contains(&code.len()) || !code.iter().all(u8::is_ascii_alphanumeric) {
                    return Err(Error::invalid_input("a code is 4 to 10 letters or digits"));
                }
                let target = self.locate(&request.target)?;
                for _ in 0..MAX_CAS_RETRIES {
                    let (record, version) = self.read(&target).await?;
                    // Decided before the write, so the record is not held across it.
                    let round = self.decide_check(record, code, txn, target.prf.as_ref())?;
                    let mut verification = round.verification;
                    let write = Write::Set {
                        value: round.value,
                        ttl: round.ttl,
                    };
                    let outcome = self
                        .store
                        .compare_and_swap(&target.key, version, write)
                        .await?;
                    if outcome == CasOutcome::Conflict {
                        continue; // changed in between (a re-send, another check): decide again
                    }
                    if let Some(to) = target.to {
                        verification.to = to;
                    }
                    return crate::trace::code_rejected(if round.matched {
                        crate::backend::approved(verification).map(CheckOutcome::Approved)
                    } else {
                        Ok(CheckOutcome::Rejected(verification))
                    });
                }
                Err(Error::storage(
                    "too much contention checking this verification",
                ))
            }
        )
    }

    /// One check of `code` against the stored `record`: the record to write back (the attempt
    /// counted, maybe ended) and the answer, whose `to` is the masked destination until the
    /// caller puts the one it was asked for.
    fn decide_check(
        &self,
        record: Record,
        code: &[u8],
        txn: Option<(&str, &str)>,
        prf: Option<&[u8; 32]>,
    ) -> Result<CheckRound> {
        let now_ms = self.now_ms();
        if !record.is_pending(now_ms) {
            return Err(Self::gone(&record));
        }
        // One write counts the attempt and decides, so the limit holds however many checks
        // race, and of two right checks exactly one approves.
        let matched = self.code_matches(&record, code, txn, prf)?;
        let mut next = record;
        next.attempts = next.attempts.saturating_add(1);
        next.updated_ms = now_ms;
        let status = if matched {
            next.ended = Some(Ended::Approved);
            VerificationStatus::Approved
        } else if next.attempts >= self.config.max_check_attempts {
            next.ended = Some(Ended::MaxAttemptsReached);
            VerificationStatus::MaxAttemptsReached
        } else {
            VerificationStatus::Pending
        };
        let ttl = if next.ended.is_some() {
            Ttl::After(self.config.tombstone_ttl)
        } else {
            Ttl::Keep
        };
        let value = next.encode();
        let masked = std::mem::take(&mut next.masked_to);
        Ok(CheckRound {
            value,
            ttl,
            matched,
            verification: Self::to_verification(&next, masked, status),
        })
    }

    pub(super) async fn cancel_inner(&self, target: VerificationRef) -> Result<Verification> {
        let target = self.locate(&target)?;
        for _ in 0..MAX_CAS_RETRIES {
            let (record, version) = self.read(&target).await?;
            let now_ms = self.now_ms();
            if !record.is_pending(now_ms) {
                return Err(Self::gone(&record));
            }
            let mut next = record;
            next.ended = Some(Ended::Canceled);
            next.updated_ms = now_ms;
            let outcome = self
                .store
                .compare_and_swap(
                    &target.key,
                    version,
                    Write::Set {
                        value: next.encode(),
                        ttl: Ttl::After(self.config.tombstone_ttl),
                    },
                )
                .await?;
            if outcome != CasOutcome::Conflict {
                let to = target.to.unwrap_or_else(|| next.masked_to.clone());
                return Ok(Self::to_verification(
                    &next,
                    to,
                    VerificationStatus::Canceled,
                ));
            }
        }
        Err(Error::storage(
            "too much contention canceling this verification",
        ))
    }

    pub(super) async fn fetch_inner(&self, target: VerificationRef) -> Result<Verification> {
        let target = self.locate(&target)?;
        let (record, _) = self.read(&target).await?;
        if !record.is_pending(self.now_ms()) {
            return Err(Self::gone(&record));
        }
        let to = target.to.unwrap_or_else(|| record.masked_to.clone());
        Ok(Self::to_verification(
            &record,
            to,
            VerificationStatus::Pending,
        ))
    }
}

/// One round of a start, decided before its awaits.
struct StartRound {
    write: StartWrite,
    message: OutgoingMessage,
    verification: Verification,
}

/// One round of a check, decided before its write.
struct CheckRound {
    value: Vec<u8>,
    ttl: Ttl,
    matched: bool,
    verification: Verification,
}

/// The write of a start round.
enum StartWrite {
    /// The live verification's record after a re-send, swapped in at `version`.
    Resend { version: Version, value: Vec<u8> },
    /// A new verification's record, replacing the ended one at `replaces` (or inserted).
    New {
        replaces: Option<Version>,
        value: Vec<u8>,
        ttl: Duration,
    },
}

fn too_many_sends() -> Error {
    Error::new(
        ErrorKind::TooManySends,
        "max send attempts reached for this verification",
    )
}
/// Validates a custom code (4 to 10 ASCII letters or digits) and returns its length.
fn custom_len(code: &Secret) -> Result<u8> {
    let bytes = code.expose();
    if !(4..=10).contains(&bytes.len()) || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return Err(Error::invalid_input(
            "a custom code is 4 to 10 letters or digits",
        ));
    }
    u8::try_from(bytes.len()).map_err(|_| Error::invalid_input("custom code too long"))
}
