//! Local HTTP servers (axum, 127.0.0.1, in-process) speaking Twilio's wire format, shared by the
//! OTP test suites:
//! - [`Scripted`]: answers a queue of scripted replies and records every request exactly;
//! - [`FakeVerify`]: a stateful Twilio Verify v2 with Verify's rules (10 min expiry, 5 checks,
//!   5 sends, same code on re-send, gone after approval / expiry / exhaustion), delivering codes
//!   into an [`Outbox`] like a phone would receive them;
//! - [`closing_server`]: accepts connections and closes them without answering.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use keyward::otp::{Channel, CodeSender, Outbox, OutgoingMessage};
use keyward::{Clock, ManualClock, Secret};

pub const AC: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const SK: &str = "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const SK_SECRET: &str = "api-key-secret-do-not-print";
pub const VA: &str = "VAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const VE: &str = "VEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// `Basic base64(SK:secret)`.
pub fn expected_basic_auth() -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SK}:{SK_SECRET}"))
    )
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub form: Vec<(String, String)>,
}

impl Recorded {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Self {
        Reply {
            status,
            body: body.to_owned(),
            delay: Duration::ZERO,
            headers: vec![("content-type".into(), "application/json".into())],
        }
    }

    pub fn twilio_error(status: u16, code: u32, message: &str) -> Self {
        Reply::json(
            status,
            &format!(
                r#"{{"code":{code},"message":"{message}","more_info":"https://www.twilio.com/docs/errors/{code}","status":{status}}}"#
            ),
        )
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

#[derive(Debug, Default)]
struct ScriptState {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
}

/// A server answering scripted replies in order (404 when the script runs out).
#[derive(Debug, Clone)]
pub struct Scripted {
    pub base_url: String,
    state: Arc<ScriptState>,
}

impl Scripted {
    pub async fn start(replies: Vec<Reply>) -> Self {
        let state = Arc::new(ScriptState {
            replies: Mutex::new(replies.into()),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(scripted_handler)
            .with_state(state.clone());
        let base_url = serve(app).await;
        Scripted { base_url, state }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }
}

async fn scripted_handler(
    State(state): State<Arc<ScriptState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    state
        .requests
        .lock()
        .unwrap()
        .push(record(&method, &uri, &headers, &body));
    let reply = state.replies.lock().unwrap().pop_front();
    let Some(reply) = reply else {
        return respond(Reply::twilio_error(404, 20404, "script exhausted"));
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    respond(reply)
}

fn record(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Recorded {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        form: parse_form(body),
    }
}

fn respond(reply: Reply) -> Response<Body> {
    let mut builder = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (k, v) in &reply.headers {
        builder = builder.header(k, v);
    }
    builder.body(Body::from(reply.body)).unwrap()
}

/// Decodes `application/x-www-form-urlencoded`.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(body).unwrap_or("");
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

/// A server that accepts every connection, reads a little, and closes it without answering.
pub async fn closing_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 512];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
            drop(socket);
        }
    });
    format!("http://{addr}")
}

/// RFC 3339 UTC (`2015-07-30T20:00:00Z`) as Twilio writes dates.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------------------------
// A stateful fake of Twilio Verify v2.

#[derive(Debug, Clone)]
struct FakeVerification {
    sid: String,
    to: String,
    channel: String,
    code: String,
    sends: Vec<(SystemTime, String, String)>,
    checks: u32,
    created: SystemTime,
    updated: SystemTime,
}

#[derive(Debug)]
struct FakeState {
    clock: Arc<ManualClock>,
    outbox: Outbox,
    auth: String,
    verifications: Mutex<HashMap<String, FakeVerification>>,
    factors: Mutex<HashMap<String, FakeFactor>>,
    counter: Mutex<u64>,
    requests: Mutex<Vec<Recorded>>,
    /// Time every answer waits before it is sent (a slow Twilio).
    delay: Duration,
}

/// Twilio Verify v2 with its documented rules, on a manual clock.
#[derive(Debug, Clone)]
pub struct FakeVerify {
    pub base_url: String,
    state: Arc<FakeState>,
}

impl FakeVerify {
    pub async fn start(clock: Arc<ManualClock>, outbox: Outbox) -> Self {
        FakeVerify::start_slow(clock, outbox, Duration::ZERO).await
    }

    /// Like [`start`](Self::start), every answer delayed by `delay`.
    pub async fn start_slow(clock: Arc<ManualClock>, outbox: Outbox, delay: Duration) -> Self {
        let state = Arc::new(FakeState {
            delay,
            clock,
            outbox,
            auth: expected_basic_auth(),
            verifications: Mutex::new(HashMap::new()),
            factors: Mutex::new(HashMap::new()),
            counter: Mutex::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(fake_verify_handler)
            .with_state(state.clone());
        let base_url = serve(app).await;
        FakeVerify { base_url, state }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }
}

const CODE_TTL: Duration = Duration::from_secs(600);

fn error(status: u16, code: u32, message: &str) -> Response<Body> {
    respond(Reply::twilio_error(status, code, message))
}

fn verification_json(v: &FakeVerification, status: &str, valid: bool) -> String {
    let attempts: Vec<String> = v
        .sends
        .iter()
        .map(|(t, channel, attempt)| {
            format!(
                r#"{{"time":"{}","channel":"{}","attempt_sid":"{attempt}"}}"#,
                rfc3339(*t),
                channel.to_uppercase()
            )
        })
        .collect();
    format!(
        concat!(
            r#"{{"sid":"{sid}","service_sid":"{va}","account_sid":"{ac}","to":"{to}","channel":"{channel}","#,
            r#""status":"{status}","valid":{valid},"date_created":"{created}","date_updated":"{updated}","#,
            r#""lookup":{{}},"amount":null,"payee":null,"send_code_attempts":[{attempts}],"sna":null,"#,
            r#""url":"https://verify.twilio.com/v2/Services/{va}/Verifications/{sid}"}}"#
        ),
        sid = v.sid,
        va = VA,
        ac = AC,
        to = v.to,
        channel = v.channel,
        status = status,
        valid = valid,
        created = rfc3339(v.created),
        updated = rfc3339(v.updated),
        attempts = attempts.join(","),
    )
}

fn check_json(v: &FakeVerification, status: &str, valid: bool) -> String {
    format!(
        concat!(
            r#"{{"sid":"{sid}","service_sid":"{va}","account_sid":"{ac}","to":"{to}","channel":"{channel}","#,
            r#""status":"{status}","valid":{valid},"amount":null,"payee":null,"sna_attempts_error_codes":[],"#,
            r#""date_created":"{created}","date_updated":"{updated}"}}"#
        ),
        sid = v.sid,
        va = VA,
        ac = AC,
        to = v.to,
        channel = v.channel,
        status = status,
        valid = valid,
        created = rfc3339(v.created),
        updated = rfc3339(v.updated),
    )
}

async fn fake_verify_handler(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let req = record(&method, &uri, &headers, &body);
    state.requests.lock().unwrap().push(req.clone());
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    if req.authorization.as_deref() != Some(state.auth.as_str()) {
        return error(401, 20003, "Authenticate");
    }
    let now = state.clock.now();
    // Verifications end at expiry: Twilio deletes them.
    state
        .verifications
        .lock()
        .unwrap()
        .retain(|_, v| now < v.created + CODE_TTL);
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    match (req.method.as_str(), segments.as_slice()) {
        ("POST", ["v2", "Services", va, "Entities", identity, "Factors"]) if *va == VA => {
            fake_create_factor(&state, &req, identity)
        }
        ("POST", ["v2", "Services", va, "Entities", identity, "Factors", sid]) if *va == VA => {
            fake_verify_factor(&state, &req, identity, sid, now)
        }
        ("DELETE", ["v2", "Services", va, "Entities", identity, "Factors", sid]) if *va == VA => {
            let mut factors = state.factors.lock().unwrap();
            match factors.get(*sid) {
                Some(f) if f.identity == *identity => {
                    factors.remove(*sid);
                    Response::builder().status(204).body(Body::empty()).unwrap()
                }
                _ => error(404, 20404, "The requested resource was not found"),
            }
        }
        ("POST", ["v2", "Services", va, "Entities", identity, "Challenges"]) if *va == VA => {
            fake_challenge(&state, &req, identity, now)
        }
        ("POST", ["v2", "Services", va, "Verifications"]) if *va == VA => {
            fake_start(&state, &req, now).await
        }
        ("POST", ["v2", "Services", va, "VerificationCheck"]) if *va == VA => {
            fake_check(&state, &req, now)
        }
        ("GET", ["v2", "Services", va, "Verifications", sid]) if *va == VA => {
            let map = state.verifications.lock().unwrap();
            match map.get(*sid) {
                Some(v) => Reply::json(200, &verification_json(v, "pending", false)).into(),
                None => error(404, 20404, "The requested resource was not found"),
            }
        }
        ("POST", ["v2", "Services", va, "Verifications", sid]) if *va == VA => {
            let status = match req.field("Status") {
                Some(s @ ("canceled" | "approved")) => s,
                _ => return error(400, 60200, "Invalid parameter: Status"),
            };
            let removed = state.verifications.lock().unwrap().remove(*sid);
            match removed {
                Some(mut v) => {
                    v.updated = now;
                    Reply::json(200, &verification_json(&v, status, status == "approved")).into()
                }
                None => error(404, 20404, "The requested resource was not found"),
            }
        }
        _ => error(404, 20404, "The requested resource was not found"),
    }
}

impl From<Reply> for Response<Body> {
    fn from(reply: Reply) -> Self {
        respond(reply)
    }
}

async fn fake_start(state: &FakeState, req: &Recorded, now: SystemTime) -> Response<Body> {
    let Some(to) = req.field("To").map(str::to_owned) else {
        return error(400, 60200, "Invalid parameter: To");
    };
    let channel = match req.field("Channel") {
        Some(c @ ("sms" | "call" | "email" | "whatsapp")) => c.to_owned(),
        _ => return error(400, 60200, "Invalid parameter: Channel"),
    };
    let custom = req.field("CustomCode").map(str::to_owned);
    let attempt_sid = {
        let mut n = state.counter.lock().unwrap();
        *n += 1;
        format!("VL{:032x}", *n)
    };
    let (json, code) = {
        let mut map = state.verifications.lock().unwrap();
        let existing = map.values_mut().find(|v| v.to == to);
        match existing {
            Some(v) => {
                if v.sends.len() >= 5 {
                    return error(429, 60203, "Max send attempts reached");
                }
                if let Some(c) = custom {
                    v.code = c;
                }
                v.channel = channel.clone();
                v.sends.push((now, channel.clone(), attempt_sid));
                v.updated = now;
                (verification_json(v, "pending", false), v.code.clone())
            }
            None => {
                let sid = {
                    let mut n = state.counter.lock().unwrap();
                    *n += 1;
                    format!("VE{:032x}", *n)
                };
                let code = custom.unwrap_or_else(random_digits);
                let v = FakeVerification {
                    sid: sid.clone(),
                    to: to.clone(),
                    channel: channel.clone(),
                    code: code.clone(),
                    sends: vec![(now, channel.clone(), attempt_sid)],
                    checks: 0,
                    created: now,
                    updated: now,
                };
                let json = verification_json(&v, "pending", false);
                map.insert(sid, v);
                (json, code)
            }
        }
    };
    // "Deliver" the code the way a phone would receive it.
    let message = OutgoingMessage::new(
        Channel::parse(&channel),
        to,
        Secret::from(format!("Your verification code is: {code}")),
        Secret::from(code),
    );
    state.outbox.send(&message).await.unwrap();
    Reply::json(201, &json).into()
}

fn fake_check(state: &FakeState, req: &Recorded, now: SystemTime) -> Response<Body> {
    let Some(code) = req.field("Code").map(str::to_owned) else {
        return error(400, 60200, "Invalid parameter: Code");
    };
    let mut map = state.verifications.lock().unwrap();
    let sid = match (req.field("VerificationSid"), req.field("To")) {
        (Some(sid), _) => map.get(sid).map(|v| v.sid.clone()),
        (None, Some(to)) => map.values().find(|v| v.to == to).map(|v| v.sid.clone()),
        (None, None) => {
            return error(
                400,
                60221,
                "Either a 'To' number or 'VerificationSid' must be specified",
            );
        }
    };
    let Some(sid) = sid else {
        return error(404, 20404, "The requested resource was not found");
    };
    let v = map.get_mut(&sid).unwrap();
    v.checks += 1;
    if v.checks > 5 {
        map.remove(&sid);
        return error(429, 60202, "Max check attempts reached");
    }
    v.updated = now;
    if v.code == code {
        let v = map.remove(&sid).unwrap();
        return Reply::json(201, &check_json(&v, "approved", true)).into();
    }
    let status = if v.checks == 5 {
        "max_attempts_reached"
    } else {
        "pending"
    };
    Reply::json(201, &check_json(v, status, false)).into()
}

fn random_digits() -> String {
    let rng = keyward::SystemRandom::new();
    (0..6)
        .map(|_| char::from(b'0' + keyward::uniform_below(&rng, 10).unwrap() as u8))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Verify's TOTP factors (Entities/{identity}/Factors, Challenges), as the OpenAPI examples show.

/// The TOTP issuer the fake service is configured with (`totp.issuer` at the service level).
pub const FAKE_TOTP_ISSUER: &str = "keyward-test";

#[derive(Debug, Clone)]
struct FakeFactor {
    sid: String,
    identity: String,
    friendly_name: String,
    secret: String,
    alg: String,
    digits: u8,
    period: u32,
    skew: u8,
    status: &'static str,
    last_step: Option<u64>,
}

impl FakeFactor {
    fn uri(&self) -> String {
        fn enc(s: &str) -> String {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        }
        format!(
            "otpauth://totp/{issuer}:{name}?secret={secret}&issuer={issuer}&algorithm={alg}&digits={digits}&period={period}",
            issuer = enc(FAKE_TOTP_ISSUER),
            name = enc(&self.friendly_name),
            secret = self.secret,
            alg = self.alg.to_uppercase(),
            digits = self.digits,
            period = self.period,
        )
    }

    fn json(&self, with_binding: bool) -> String {
        let binding = if with_binding {
            format!(
                r#""binding":{{"secret":"{}","uri":"{}"}},"options":null,"#,
                self.secret,
                self.uri()
            )
        } else {
            String::new()
        };
        format!(
            concat!(
                r#"{{"sid":"{sid}","account_sid":"{ac}","service_sid":"{va}","entity_sid":"YEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","#,
                r#""identity":"{identity}",{binding}"date_created":"2015-07-30T20:00:00Z","date_updated":"2015-07-30T20:00:00Z","#,
                r#""friendly_name":{name},"status":"{status}","factor_type":"totp","#,
                r#""config":{{"alg":"{alg}","skew":{skew},"code_length":{digits},"time_step":{period}}},"metadata":null,"#,
                r#""url":"https://verify.twilio.com/v2/Services/{va}/Entities/{identity}/Factors/{sid}"}}"#
            ),
            sid = self.sid,
            ac = AC,
            va = VA,
            identity = self.identity,
            binding = binding,
            name = serde_json::to_string(&self.friendly_name).unwrap(),
            status = self.status,
            alg = self.alg,
            skew = self.skew,
            digits = self.digits,
            period = self.period,
        )
    }

    /// Accepts a code of a step in the window later than the last accepted one.
    fn accepts(&mut self, code: &str, now: SystemTime) -> bool {
        let secret = keyward::totp::base32_decode(&self.secret).unwrap();
        let alg = keyward::totp::TotpAlgorithm::parse(&self.alg).unwrap();
        let unix = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let current = unix / u64::from(self.period);
        let skew = u64::from(self.skew);
        for step in current.saturating_sub(skew)..=current + skew {
            let want = keyward::totp::hotp(&secret, step, self.digits, alg).unwrap();
            if want.expose_str() == Some(code) && self.last_step.is_none_or(|l| step > l) {
                self.last_step = Some(step);
                return true;
            }
        }
        false
    }
}

fn next_sid(state: &FakeState, prefix: &str) -> String {
    let mut n = state.counter.lock().unwrap();
    *n += 1;
    format!("{prefix}{:032x}", *n)
}

fn fake_create_factor(state: &FakeState, req: &Recorded, identity: &str) -> Response<Body> {
    let Some(name) = req.field("FriendlyName").map(str::to_owned) else {
        return error(400, 60200, "Invalid parameter: FriendlyName");
    };
    if req.field("FactorType") != Some("totp") {
        return error(400, 60200, "Invalid parameter: FactorType");
    }
    let int =
        |field: &str, default: u32, range: std::ops::RangeInclusive<u32>| match req.field(field) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|v| range.contains(v))
                .ok_or(()),
        };
    let (Ok(period), Ok(skew), Ok(digits)) = (
        int("Config.TimeStep", 30, 20..=60),
        int("Config.Skew", 1, 0..=2),
        int("Config.CodeLength", 6, 3..=8),
    ) else {
        return error(400, 60200, "Invalid parameter: Config");
    };
    let alg = req.field("Config.Alg").unwrap_or("sha1").to_owned();
    if !matches!(alg.as_str(), "sha1" | "sha256" | "sha512") {
        return error(400, 60200, "Invalid parameter: Config.Alg");
    }
    let secret = match req.field("Binding.Secret") {
        Some(s) => s.to_owned(),
        None => keyward::totp::base32_encode(
            &keyward::random_array::<20>(&keyward::SystemRandom::new()).unwrap(),
        ),
    };
    let factor = FakeFactor {
        sid: next_sid(state, "YF"),
        identity: identity.to_owned(),
        friendly_name: name,
        secret,
        alg,
        digits: digits as u8,
        period,
        skew: skew as u8,
        status: "unverified",
        last_step: None,
    };
    let json = factor.json(true);
    state
        .factors
        .lock()
        .unwrap()
        .insert(factor.sid.clone(), factor);
    Reply::json(201, &json).into()
}

fn fake_verify_factor(
    state: &FakeState,
    req: &Recorded,
    identity: &str,
    sid: &str,
    now: SystemTime,
) -> Response<Body> {
    let mut factors = state.factors.lock().unwrap();
    let Some(factor) = factors.get_mut(sid).filter(|f| f.identity == identity) else {
        return error(404, 20404, "The requested resource was not found");
    };
    if let Some(code) = req.field("AuthPayload")
        && factor.status == "unverified"
        && factor.accepts(code, now)
    {
        factor.status = "verified";
    }
    Reply::json(200, &factor.json(false)).into()
}

fn fake_challenge(
    state: &FakeState,
    req: &Recorded,
    identity: &str,
    now: SystemTime,
) -> Response<Body> {
    let Some(sid) = req.field("FactorSid") else {
        return error(400, 60200, "Invalid parameter: FactorSid");
    };
    let mut factors = state.factors.lock().unwrap();
    let Some(factor) = factors
        .get_mut(sid)
        .filter(|f| f.identity == identity && f.status == "verified")
    else {
        return error(404, 20404, "The requested resource was not found");
    };
    let approved = req
        .field("AuthPayload")
        .is_some_and(|code| factor.accepts(code, now));
    let challenge = next_sid(state, "YC");
    let status = if approved { "approved" } else { "pending" };
    let json = format!(
        concat!(
            r#"{{"sid":"{sid}","account_sid":"{ac}","service_sid":"{va}","entity_sid":"YEaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","#,
            r#""identity":"{identity}","factor_sid":"{factor}","date_created":"{now}","date_updated":"{now}","#,
            r#""date_responded":{responded},"expiration_date":"{now}","status":"{status}","responded_reason":"none","#,
            r#""details":{{"message":null,"date":"{now}","fields":[]}},"hidden_details":null,"metadata":null,"factor_type":"totp","#,
            r#""url":"https://verify.twilio.com/v2/Services/{va}/Entities/{identity}/Challenges/{sid}","#,
            r#""links":{{"notifications":"https://verify.twilio.com/v2/Services/{va}/Entities/{identity}/Challenges/{sid}/Notifications"}}}}"#
        ),
        sid = challenge,
        ac = AC,
        va = VA,
        identity = identity,
        factor = factor.sid,
        now = rfc3339(now),
        responded = if approved {
            format!("\"{}\"", rfc3339(now))
        } else {
            "null".to_owned()
        },
        status = status,
    );
    Reply::json(201, &json).into()
}
