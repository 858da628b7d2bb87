//! The grants of a Twilio access token, written field by field in the order of Twilio's helpers.

use super::json::{JsonValue, ObjectWriter, write_value};
use crate::error::{Error, Result};
use crate::twilio::is_sid;

/// One grant of an access token. A token holds at most one grant per [`key`](Grant::key); adding
/// a second one with the same key replaces the first in place (as the Python helper's `dict`
/// does).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Grant {
    /// Programmable Video (`video`).
    Video(VideoGrant),
    /// Conversations / Chat (`chat`).
    Chat(ChatGrant),
    /// Sync (`data_sync`).
    Sync(SyncGrant),
    /// Programmable Voice (`voice`).
    Voice(VoiceGrant),
    /// TaskRouter (`task_router`).
    TaskRouter(TaskRouterGrant),
    /// Live player (`player`).
    Player(PlayerGrant),
}

impl Grant {
    /// The grant's key in the token's `grants` object.
    pub fn key(&self) -> &'static str {
        match self {
            Grant::Video(_) => "video",
            Grant::Chat(_) => "chat",
            Grant::Sync(_) => "data_sync",
            Grant::Voice(_) => "voice",
            Grant::TaskRouter(_) => "task_router",
            Grant::Player(_) => "player",
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            Grant::Video(g) => non_empty("video room", g.room.as_deref()),
            Grant::Chat(g) => {
                non_empty("chat service_sid", g.service_sid.as_deref())?;
                non_empty("chat endpoint_id", g.endpoint_id.as_deref())?;
                non_empty("chat deployment_role_sid", g.deployment_role_sid.as_deref())?;
                non_empty("chat push_credential_sid", g.push_credential_sid.as_deref())
            }
            Grant::Sync(g) => {
                non_empty("data_sync service_sid", g.service_sid.as_deref())?;
                non_empty("data_sync endpoint_id", g.endpoint_id.as_deref())
            }
            Grant::Voice(g) => {
                non_empty(
                    "voice outgoing application_sid",
                    g.outgoing_application_sid.as_deref(),
                )?;
                non_empty(
                    "voice push_credential_sid",
                    g.push_credential_sid.as_deref(),
                )?;
                non_empty("voice endpoint_id", g.endpoint_id.as_deref())?;
                if !g.outgoing_application_params.is_empty() {
                    if g.outgoing_application_sid.is_none() {
                        return Err(Error::invalid_input(
                            "voice outgoing params need an outgoing application sid",
                        ));
                    }
                    JsonValue::Object(g.outgoing_application_params.clone())
                        .check("voice outgoing params")?;
                }
                Ok(())
            }
            Grant::TaskRouter(g) => {
                non_empty("task_router workspace_sid", g.workspace_sid.as_deref())?;
                non_empty("task_router worker_sid", g.worker_sid.as_deref())?;
                non_empty("task_router role", g.role.as_deref())
            }
            Grant::Player(g) => g.grant.check("player grant"),
        }
    }

    /// Writes the grant's payload (its value in the `grants` object).
    pub(crate) fn write_payload(&self, out: &mut String) {
        if let Grant::Player(g) = self {
            write_value(out, &g.grant);
            return;
        }
        let mut obj = ObjectWriter::new(out);
        match self {
            Grant::Video(g) => obj.opt_str("room", g.room.as_deref()),
            Grant::Chat(g) => {
                obj.opt_str("service_sid", g.service_sid.as_deref());
                obj.opt_str("endpoint_id", g.endpoint_id.as_deref());
                obj.opt_str("deployment_role_sid", g.deployment_role_sid.as_deref());
                obj.opt_str("push_credential_sid", g.push_credential_sid.as_deref());
            }
            Grant::Sync(g) => {
                obj.opt_str("service_sid", g.service_sid.as_deref());
                obj.opt_str("endpoint_id", g.endpoint_id.as_deref());
            }
            Grant::Voice(g) => {
                if g.incoming_allow {
                    let out = obj.key("incoming");
                    let mut incoming = ObjectWriter::new(out);
                    incoming.value("allow", &JsonValue::Bool(true));
                    incoming.end();
                }
                if let Some(app) = &g.outgoing_application_sid {
                    let out = obj.key("outgoing");
                    let mut outgoing = ObjectWriter::new(out);
                    outgoing.str("application_sid", app);
                    if !g.outgoing_application_params.is_empty() {
                        let out = outgoing.key("params");
                        let mut params = ObjectWriter::new(out);
                        for (k, v) in &g.outgoing_application_params {
                            params.value(k, v);
                        }
                        params.end();
                    }
                    outgoing.end();
                }
                obj.opt_str("push_credential_sid", g.push_credential_sid.as_deref());
                obj.opt_str("endpoint_id", g.endpoint_id.as_deref());
            }
            Grant::TaskRouter(g) => {
                obj.opt_str("workspace_sid", g.workspace_sid.as_deref());
                obj.opt_str("worker_sid", g.worker_sid.as_deref());
                obj.opt_str("role", g.role.as_deref());
            }
            Grant::Player(_) => {}
        }
        obj.end();
    }

    /// Reads a grant back from a decoded token. Unknown keys, unknown fields and wrong types are
    /// refused (the message names the grant, never a value).
    pub(crate) fn from_payload(key: &str, value: &JsonValue) -> std::result::Result<Grant, String> {
        if key == "player" {
            return Ok(Grant::Player(PlayerGrant {
                grant: value.clone(),
            }));
        }
        let JsonValue::Object(fields) = value else {
            return Err(format!("grant {key} is not an object"));
        };
        let mut reader = FieldReader {
            key,
            fields,
            used: 0,
        };
        let grant = match key {
            "video" => Grant::Video(VideoGrant {
                room: reader.opt_str("room")?,
            }),
            "chat" => Grant::Chat(ChatGrant {
                service_sid: reader.opt_str("service_sid")?,
                endpoint_id: reader.opt_str("endpoint_id")?,
                deployment_role_sid: reader.opt_str("deployment_role_sid")?,
                push_credential_sid: reader.opt_str("push_credential_sid")?,
            }),
            "data_sync" => Grant::Sync(SyncGrant {
                service_sid: reader.opt_str("service_sid")?,
                endpoint_id: reader.opt_str("endpoint_id")?,
            }),
            "voice" => {
                let incoming_allow = match reader.get("incoming") {
                    None => false,
                    Some(JsonValue::Object(inner))
                        if inner.as_slice() == [("allow".to_owned(), JsonValue::Bool(true))] =>
                    {
                        true
                    }
                    Some(_) => return Err("grant voice has a malformed incoming field".into()),
                };
                let (outgoing_application_sid, outgoing_application_params) =
                    match reader.get("outgoing") {
                        None => (None, Vec::new()),
                        Some(JsonValue::Object(inner)) => {
                            let mut out = FieldReader {
                                key: "voice outgoing",
                                fields: inner,
                                used: 0,
                            };
                            let app = out.opt_str("application_sid")?;
                            let params = match out.get("params") {
                                None => Vec::new(),
                                Some(JsonValue::Object(p)) => p.clone(),
                                Some(_) => {
                                    return Err("grant voice has malformed outgoing params".into());
                                }
                            };
                            out.finish()?;
                            if app.is_none() {
                                return Err("grant voice outgoing has no application_sid".into());
                            }
                            (app, params)
                        }
                        Some(_) => return Err("grant voice has a malformed outgoing field".into()),
                    };
                Grant::Voice(VoiceGrant {
                    incoming_allow,
                    outgoing_application_sid,
                    outgoing_application_params,
                    push_credential_sid: reader.opt_str("push_credential_sid")?,
                    endpoint_id: reader.opt_str("endpoint_id")?,
                })
            }
            "task_router" => Grant::TaskRouter(TaskRouterGrant {
                workspace_sid: reader.opt_str("workspace_sid")?,
                worker_sid: reader.opt_str("worker_sid")?,
                role: reader.opt_str("role")?,
            }),
            _ => return Err("token has an unknown grant".into()),
        };
        reader.finish()?;
        Ok(grant)
    }
}

fn non_empty(what: &'static str, value: Option<&str>) -> Result<()> {
    match value {
        Some("") => Err(Error::invalid_input(format!(
            "{what} is empty; leave it unset instead"
        ))),
        _ => Ok(()),
    }
}

struct FieldReader<'a> {
    key: &'a str,
    fields: &'a [(String, JsonValue)],
    used: usize,
}

impl<'a> FieldReader<'a> {
    fn get(&mut self, name: &str) -> Option<&'a JsonValue> {
        let found = self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if found.is_some() {
            self.used += 1;
        }
        found
    }

    fn opt_str(&mut self, name: &str) -> std::result::Result<Option<String>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(JsonValue::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("grant {} has a malformed {name}", self.key)),
        }
    }

    fn finish(self) -> std::result::Result<(), String> {
        if self.used == self.fields.len() {
            Ok(())
        } else {
            Err(format!("grant {} has an unexpected field", self.key))
        }
    }
}

/// The Programmable Video grant: `{"room": ...}` or `{}` for any room.
///
/// ```
/// use keyward::video::twilio::VideoGrant;
/// assert_eq!(VideoGrant::room("My Room").room.as_deref(), Some("My Room"));
/// assert!(VideoGrant::any_room().room.is_none());
/// assert!(VideoGrant::room_sid("RMnot-a-sid").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VideoGrant {
    /// The room name or room SID (`RM…`) the token admits to; `None` admits to any room.
    pub room: Option<String>,
}

impl VideoGrant {
    /// A grant for any room.
    pub fn any_room() -> Self {
        VideoGrant { room: None }
    }

    /// A grant for the room with this unique name.
    pub fn room(name: impl Into<String>) -> Self {
        VideoGrant {
            room: Some(name.into()),
        }
    }

    /// A grant for the room with this SID (`RM` and 32 hex digits).
    pub fn room_sid(sid: impl Into<String>) -> Result<Self> {
        let sid = sid.into();
        if !is_sid("RM", &sid) {
            return Err(Error::invalid_input(
                "a room sid is RM followed by 32 hex digits",
            ));
        }
        Ok(VideoGrant { room: Some(sid) })
    }
}

impl From<VideoGrant> for Grant {
    fn from(g: VideoGrant) -> Grant {
        Grant::Video(g)
    }
}

/// The Chat / Conversations grant. Unset fields are omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatGrant {
    /// Conversations service SID (`IS…`).
    pub service_sid: Option<String>,
    /// Endpoint id.
    pub endpoint_id: Option<String>,
    /// Deployment role SID.
    pub deployment_role_sid: Option<String>,
    /// Push credential SID (`CR…`).
    pub push_credential_sid: Option<String>,
}

impl ChatGrant {
    /// An empty chat grant.
    pub fn new() -> Self {
        ChatGrant::default()
    }

    /// Sets the service SID.
    pub fn service_sid(mut self, v: impl Into<String>) -> Self {
        self.service_sid = Some(v.into());
        self
    }

    /// Sets the endpoint id.
    pub fn endpoint_id(mut self, v: impl Into<String>) -> Self {
        self.endpoint_id = Some(v.into());
        self
    }

    /// Sets the deployment role SID.
    pub fn deployment_role_sid(mut self, v: impl Into<String>) -> Self {
        self.deployment_role_sid = Some(v.into());
        self
    }

    /// Sets the push credential SID.
    pub fn push_credential_sid(mut self, v: impl Into<String>) -> Self {
        self.push_credential_sid = Some(v.into());
        self
    }
}

impl From<ChatGrant> for Grant {
    fn from(g: ChatGrant) -> Grant {
        Grant::Chat(g)
    }
}

/// The Sync grant (`data_sync`). Unset fields are omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncGrant {
    /// Sync service SID (`IS…`).
    pub service_sid: Option<String>,
    /// Endpoint id.
    pub endpoint_id: Option<String>,
}

impl SyncGrant {
    /// An empty sync grant.
    pub fn new() -> Self {
        SyncGrant::default()
    }

    /// Sets the service SID.
    pub fn service_sid(mut self, v: impl Into<String>) -> Self {
        self.service_sid = Some(v.into());
        self
    }

    /// Sets the endpoint id.
    pub fn endpoint_id(mut self, v: impl Into<String>) -> Self {
        self.endpoint_id = Some(v.into());
        self
    }
}

impl From<SyncGrant> for Grant {
    fn from(g: SyncGrant) -> Grant {
        Grant::Sync(g)
    }
}

/// The Programmable Voice grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VoiceGrant {
    /// Allow incoming calls (`"incoming":{"allow":true}`); `false` omits the field.
    pub incoming_allow: bool,
    /// TwiML application SID (`AP…`) for outgoing calls.
    pub outgoing_application_sid: Option<String>,
    /// Parameters passed to the outgoing application, in order. Needs an application SID.
    pub outgoing_application_params: Vec<(String, JsonValue)>,
    /// Push credential SID (`CR…`).
    pub push_credential_sid: Option<String>,
    /// Endpoint id.
    pub endpoint_id: Option<String>,
}

impl VoiceGrant {
    /// An empty voice grant.
    pub fn new() -> Self {
        VoiceGrant::default()
    }

    /// Allows incoming calls.
    pub fn incoming_allow(mut self, allow: bool) -> Self {
        self.incoming_allow = allow;
        self
    }

    /// Sets the outgoing application SID.
    pub fn outgoing_application_sid(mut self, v: impl Into<String>) -> Self {
        self.outgoing_application_sid = Some(v.into());
        self
    }

    /// Appends an outgoing application parameter.
    pub fn outgoing_param(mut self, key: impl Into<String>, value: impl Into<JsonValue>) -> Self {
        self.outgoing_application_params
            .push((key.into(), value.into()));
        self
    }

    /// Sets the push credential SID.
    pub fn push_credential_sid(mut self, v: impl Into<String>) -> Self {
        self.push_credential_sid = Some(v.into());
        self
    }

    /// Sets the endpoint id.
    pub fn endpoint_id(mut self, v: impl Into<String>) -> Self {
        self.endpoint_id = Some(v.into());
        self
    }
}

impl From<VoiceGrant> for Grant {
    fn from(g: VoiceGrant) -> Grant {
        Grant::Voice(g)
    }
}

/// The TaskRouter grant. Unset fields are omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskRouterGrant {
    /// Workspace SID (`WS…`).
    pub workspace_sid: Option<String>,
    /// Worker SID (`WK…`).
    pub worker_sid: Option<String>,
    /// Role.
    pub role: Option<String>,
}

impl TaskRouterGrant {
    /// An empty TaskRouter grant.
    pub fn new() -> Self {
        TaskRouterGrant::default()
    }

    /// Sets the workspace SID.
    pub fn workspace_sid(mut self, v: impl Into<String>) -> Self {
        self.workspace_sid = Some(v.into());
        self
    }

    /// Sets the worker SID.
    pub fn worker_sid(mut self, v: impl Into<String>) -> Self {
        self.worker_sid = Some(v.into());
        self
    }

    /// Sets the role.
    pub fn role(mut self, v: impl Into<String>) -> Self {
        self.role = Some(v.into());
        self
    }
}

impl From<TaskRouterGrant> for Grant {
    fn from(g: TaskRouterGrant) -> Grant {
        Grant::TaskRouter(g)
    }
}

/// The live player grant: the grant object Twilio's API returned, carried as given.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlayerGrant {
    /// The grant object.
    pub grant: JsonValue,
}

impl PlayerGrant {
    /// Wraps the grant object returned by Twilio's playback-grant API.
    pub fn new(grant: JsonValue) -> Self {
        PlayerGrant { grant }
    }
}

impl From<PlayerGrant> for Grant {
    fn from(g: PlayerGrant) -> Grant {
        Grant::Player(g)
    }
}
