//! Twilio Verify's TOTP factors as a [`TotpProvider`] ([`TwilioTotp`]): `Entities/{identity}/
//! Factors` (create, verify, delete) and `Entities/{identity}/Challenges` (create with the code).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;

use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{HttpAnswer, HttpClient, Idempotency};
use crate::rng::{SecureRandom, SystemRandom};
use crate::secret::Secret;
use crate::totp::{
    CheckTotp, EnrollTotp, FactorKind, MIN_SECRET_LEN, TotpAlgorithm, TotpApproved, TotpEnrollment,
    TotpOutcome, TotpParams, TotpProvider, base32_encode, check_names, code_shape,
};
use crate::twilio::{TwilioVerifyConfig, answer_error, decode_answer, is_sid, is_transient};

const SERVICE: &str = "twilio-verify";

/// Twilio Verify's TOTP factors.
///
/// | call | request |
/// |---|---|
/// | [`enroll`](TotpProvider::enroll) | `POST /v2/Services/{VA}/Entities/{identity}/Factors` (`FactorType=totp`, `FriendlyName`, `Binding.Secret`, `Config.*`) |
/// | [`confirm`](TotpProvider::confirm) | `POST …/Entities/{identity}/Factors/{YF}` (`AuthPayload`) |
/// | [`check`](TotpProvider::check) | `POST …/Entities/{identity}/Challenges` (`FactorSid`, `AuthPayload`) |
/// | [`remove`](TotpProvider::remove) | `DELETE …/Entities/{identity}/Factors/{YF}` |
///
/// The secret is drawn here from the injected random source (20 bytes by default) and sent as
/// `Binding.Secret`, so enrolment is reproducible in tests like the self-hosted backend's; the
/// key URI is the one Twilio returns (its issuer is the service's TOTP issuer). Nothing is
/// retried except Twilio's generic 429 (20429): every call changes state at Twilio.
///
/// Twilio's ranges are narrower than keyward's: a period of 20 to 60 seconds, a skew of 0 to
/// 2 steps; and an identity is 8 to 64 dash-separated letters and digits (not PII: use your user
/// id). Outside them enrol is [`InvalidInput`](ErrorKind::InvalidInput) before any request.
/// Replay protection and attempt limits are Twilio's (a challenge's code is single use at
/// Twilio); the room gate adds its own per-identity attempt limit in front.
pub struct TwilioTotp {
    http: HttpClient,
    config: TwilioVerifyConfig,
    auth: HeaderValue,
    rng: Arc<dyn SecureRandom>,
    secret_len: usize,
}

impl fmt::Debug for TwilioTotp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioTotp")
            .field("config", &self.config)
            .field("secret_len", &self.secret_len)
            .finish_non_exhaustive()
    }
}

/// A factor as Twilio answers it (create and update). `Debug` hides the binding.
#[derive(Deserialize)]
struct FactorJson {
    sid: String,
    identity: Option<String>,
    status: String,
    #[serde(default)]
    binding: Option<BindingJson>,
    #[serde(default)]
    config: Option<ConfigJson>,
}

impl fmt::Debug for FactorJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FactorJson")
            .field("sid", &self.sid)
            .field("status", &self.status)
            .field("binding", &self.binding.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct BindingJson {
    secret: Option<String>,
    uri: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ConfigJson {
    alg: Option<String>,
    skew: Option<u8>,
    code_length: Option<u8>,
    time_step: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct ChallengeJson {
    status: String,
    factor_sid: Option<String>,
}

impl TwilioTotp {
    /// A backend on the Verify service of `config` (its credentials, base URL and HTTP policy).
    pub fn new(config: TwilioVerifyConfig) -> Result<Self> {
        Ok(TwilioTotp {
            http: HttpClient::new(config.http_config().clone(), config.base_url())?,
            auth: config.credentials().authorization()?,
            config,
            rng: Arc::new(SystemRandom::new()),
            secret_len: MIN_SECRET_LEN,
        })
    }

    /// Draws secrets from this environment's random source (default: [`Env::system`]).
    pub fn env(mut self, env: Env) -> Self {
        self.rng = env.random().clone();
        self
    }

    /// Bytes of each new secret (20 to 64; default 20).
    pub fn secret_len(mut self, bytes: usize) -> Result<Self> {
        if !(MIN_SECRET_LEN..=64).contains(&bytes) {
            return Err(Error::config("a totp secret is 20 to 64 bytes"));
        }
        self.secret_len = bytes;
        Ok(self)
    }

    fn entity_url(&self, identity: &str, tail: &str) -> Result<String> {
        check_identity(identity)?;
        Ok(format!(
            "{}/v2/Services/{}/Entities/{identity}/{tail}",
            self.config.base_url(),
            self.config.service_sid()
        ))
    }

    async fn post(&self, url: &str, form: &[(&str, &str)]) -> Result<HttpAnswer> {
        let answer = self
            .http
            .send(
                Idempotency::NotIdempotent,
                |c| {
                    c.post(url)
                        .header(AUTHORIZATION, self.auth.clone())
                        .form(form)
                },
                is_transient,
            )
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(answer_error(SERVICE, &answer));
        }
        Ok(answer)
    }
}

/// Twilio's entity identity: 8 to 64 characters, letters and digits separated by dashes.
fn check_identity(identity: &str) -> Result<()> {
    let ok = (8..=64).contains(&identity.len())
        && identity
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "a twilio entity identity is 8 to 64 dash-separated letters and digits",
        ))
    }
}

fn check_factor_sid(sid: &str) -> Result<()> {
    if is_sid("YF", sid) {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "a factor sid is YF followed by 32 hex digits",
        ))
    }
}

fn protocol(what: &'static str) -> Error {
    Error::new(ErrorKind::Protocol, what)
}

#[async_trait]
impl TotpProvider for TwilioTotp {
    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.totp.enroll", skip_all, fields(backend = "twilio", identity = %crate::trace::masked(&request.identity)), err(Display, level = "info")))]
    async fn enroll(&self, request: EnrollTotp) -> Result<TotpEnrollment> {
        check_names(&request.identity, Some(&request.account_name))?;
        if request.kind != FactorKind::Totp {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "twilio verify has time-based (totp) factors only, no hotp",
            ));
        }
        let params = request.params.unwrap_or_default();
        params.validate()?;
        if !(20..=60).contains(&params.period) || params.skew > 2 {
            return Err(Error::invalid_input(
                "twilio accepts a totp period of 20 to 60 seconds and a skew of 0 to 2",
            ));
        }
        let url = self.entity_url(&request.identity, "Factors")?;
        let mut raw = vec![0u8; self.secret_len];
        self.rng.fill(&mut raw)?;
        let secret = Secret::from(base32_encode(&raw));
        zeroize::Zeroize::zeroize(&mut raw);
        let (period, skew, digits) = (
            params.period.to_string(),
            params.skew.to_string(),
            params.digits.to_string(),
        );
        let form = [
            ("FriendlyName", request.account_name.as_str()),
            ("FactorType", "totp"),
            ("Binding.Secret", secret.expose_str().unwrap_or_default()),
            ("Config.TimeStep", period.as_str()),
            ("Config.Skew", skew.as_str()),
            ("Config.CodeLength", digits.as_str()),
            ("Config.Alg", params.algorithm.wire_name()),
        ];
        let answer = self.post(&url, &form).await?;
        let factor: FactorJson = decode_answer(SERVICE, &answer)?;
        check_factor_sid(&factor.sid)
            .map_err(|_| protocol("twilio answered a malformed factor sid"))?;
        let binding = factor
            .binding
            .ok_or_else(|| protocol("twilio answered a totp factor without its binding"))?;
        let uri = binding
            .uri
            .ok_or_else(|| protocol("twilio answered a totp factor without its uri"))?;
        let secret = match binding.secret {
            Some(s) => Secret::from(s),
            None => secret,
        };
        // What Twilio says it configured wins over what was asked.
        let params = match factor.config {
            Some(c) => TotpParams {
                algorithm: c
                    .alg
                    .as_deref()
                    .and_then(TotpAlgorithm::parse)
                    .unwrap_or(params.algorithm),
                digits: c.code_length.unwrap_or(params.digits),
                period: c.time_step.unwrap_or(params.period),
                skew: c.skew.unwrap_or(params.skew),
            },
            None => params,
        };
        Ok(TotpEnrollment {
            factor_sid: factor.sid,
            identity: factor.identity.unwrap_or(request.identity),
            secret,
            uri: Secret::from(uri),
            params,
            kind: FactorKind::Totp,
            confirm_by: None,
        })
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.totp.confirm", skip_all, fields(backend = "twilio", identity = %crate::trace::masked(&request.identity), factor_sid = %request.factor_sid), err(Display, level = "info")))]
    async fn confirm(&self, request: CheckTotp) -> Result<TotpOutcome> {
        check_factor_sid(&request.factor_sid)?;
        let code = code_shape(&request.code)?;
        let url = self.entity_url(
            &request.identity,
            &format!("Factors/{}", request.factor_sid),
        )?;
        let answer = self.post(&url, &[("AuthPayload", code)]).await?;
        let factor: FactorJson = decode_answer(SERVICE, &answer)?;
        if factor.sid != request.factor_sid {
            return Err(protocol("twilio answered about another factor"));
        }
        match factor.status.as_str() {
            "verified" => Ok(TotpOutcome::Approved(TotpApproved::new_unchecked(
                request.identity,
                request.factor_sid,
            ))),
            "unverified" => Ok(crate::trace::totp_rejected()),
            _ => Err(protocol("twilio answered an unknown factor status")),
        }
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.totp.check", skip_all, fields(backend = "twilio", identity = %crate::trace::masked(&request.identity), factor_sid = %request.factor_sid), err(Display, level = "info")))]
    async fn check(&self, request: CheckTotp) -> Result<TotpOutcome> {
        check_factor_sid(&request.factor_sid)?;
        let code = code_shape(&request.code)?;
        let url = self.entity_url(&request.identity, "Challenges")?;
        let answer = self
            .post(
                &url,
                &[
                    ("FactorSid", request.factor_sid.as_str()),
                    ("AuthPayload", code),
                ],
            )
            .await?;
        let challenge: ChallengeJson = decode_answer(SERVICE, &answer)?;
        if challenge
            .factor_sid
            .as_deref()
            .is_some_and(|sid| sid != request.factor_sid)
        {
            return Err(protocol("twilio answered about another factor"));
        }
        match challenge.status.as_str() {
            "approved" => Ok(TotpOutcome::Approved(TotpApproved::new_unchecked(
                request.identity,
                request.factor_sid,
            ))),
            "pending" | "denied" | "expired" => Ok(crate::trace::totp_rejected()),
            _ => Err(protocol("twilio answered an unknown challenge status")),
        }
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(name = "keyward.totp.remove", skip_all, fields(backend = "twilio", identity = %crate::trace::masked(identity), factor_sid = %factor_sid), err(Display, level = "info")))]
    async fn remove(&self, identity: &str, factor_sid: &str) -> Result<()> {
        check_factor_sid(factor_sid)?;
        let url = self.entity_url(identity, &format!("Factors/{factor_sid}"))?;
        let answer = self
            .http
            .send(
                Idempotency::NotIdempotent,
                |c| c.delete(&url).header(AUTHORIZATION, self.auth.clone()),
                is_transient,
            )
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(answer_error(SERVICE, &answer));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_follow_twilio_rules() {
        for ok in ["user-0042", "ff483d1ff591898a9942916050d2ca3f", "a1b2c3d4"] {
            assert!(check_identity(ok).is_ok(), "{ok}");
        }
        for bad in [
            "short",
            "user--0042",
            "-user0042",
            "user_0042",
            "alice@example.com",
            &"a".repeat(65),
        ] {
            assert!(check_identity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn factor_json_debug_hides_the_binding() {
        let json: FactorJson = serde_json::from_str(
            r#"{"sid":"YFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","status":"unverified","binding":{"secret":"GEZDGNBVGY3TQOJQ","uri":"otpauth://totp/x?secret=GEZDGNBVGY3TQOJQ"}}"#,
        )
        .unwrap();
        assert!(!format!("{json:?}").contains("GEZDGNBV"));
    }
}
