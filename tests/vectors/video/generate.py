#!/usr/bin/env python3
"""Golden Twilio access tokens for keyward's byte-for-byte tests.

Produces tests/vectors/video/golden.json with Twilio's official Python helper library
(`pip install twilio`), for fixed inputs and a frozen clock. keyward's tests
(tests/video_tokens.rs) rebuild every token from the same inputs and compare the bytes; they
need neither Python nor the network.

Usage:  python3 -m venv /tmp/venv && /tmp/venv/bin/pip install twilio
        /tmp/venv/bin/python tests/vectors/video/generate.py > tests/vectors/video/golden.json

Each vector lists its inputs in a neutral form:
  identity (string or null), ttl (seconds), nbf ("now", null for omitted, or an integer),
  region (string or null), grants: a list of {"type": ..., fields} in the order added.
Free-form objects (voice params, the player grant) are kept in order: the file is read by
keyward's own ordered JSON reader.
"""

import json
import sys
import time
from importlib.metadata import version

NOW = 1_700_000_000
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
KEY_SID = "SK" + "fedcba9876543210" * 2
SECRET = "keyward-golden-test-secret-32byt"  # 32 bytes: PyJWT warns below that

# Freeze the clock the helper reads (jti, exp and nbf all call time.time()).
time.time = lambda: NOW + 0.75  # the helpers floor with int()

from twilio.jwt.access_token import AccessToken  # noqa: E402
from twilio.jwt.access_token.grants import (  # noqa: E402
    ChatGrant,
    PlaybackGrant,
    SyncGrant,
    TaskRouterGrant,
    VideoGrant,
    VoiceGrant,
)


def make_grant(spec):
    kind = spec["type"]
    if kind == "video":
        return VideoGrant(room=spec.get("room"))
    if kind == "chat":
        return ChatGrant(
            service_sid=spec.get("service_sid"),
            endpoint_id=spec.get("endpoint_id"),
            deployment_role_sid=spec.get("deployment_role_sid"),
            push_credential_sid=spec.get("push_credential_sid"),
        )
    if kind == "data_sync":
        return SyncGrant(service_sid=spec.get("service_sid"), endpoint_id=spec.get("endpoint_id"))
    if kind == "voice":
        return VoiceGrant(
            incoming_allow=spec.get("incoming_allow"),
            outgoing_application_sid=spec.get("outgoing_application_sid"),
            outgoing_application_params=spec.get("outgoing_application_params"),
            push_credential_sid=spec.get("push_credential_sid"),
            endpoint_id=spec.get("endpoint_id"),
        )
    if kind == "task_router":
        return TaskRouterGrant(
            workspace_sid=spec.get("workspace_sid"),
            worker_sid=spec.get("worker_sid"),
            role=spec.get("role"),
        )
    if kind == "player":
        return PlaybackGrant(grant=spec["grant"])
    raise ValueError(kind)


VECTORS = [
    {"name": "video-room-ascii", "identity": "alice", "grants": [{"type": "video", "room": "My Room"}]},
    {"name": "video-any-room", "identity": "bob", "grants": [{"type": "video"}]},
    {
        "name": "video-room-sid",
        "identity": "carol",
        "grants": [{"type": "video", "room": "RM" + "0f" * 16}],
    },
    {
        "name": "non-ascii-identity-and-room",
        "identity": "Zoë 🎥 会議",
        "grants": [{"type": "video", "room": "Zoë 🎥 会議"}],
    },
    {
        "name": "escapes-quotes-controls-del",
        "identity": "a\"b\\c/d\n\t\x00\x7f\u2028end",
        "grants": [{"type": "video", "room": "salle «é» 𝄞"}],
    },
    {
        "name": "identity-128-chars",
        "identity": "é" * 64 + "x" * 64,
        "grants": [{"type": "video", "room": "r"}],
    },
    {
        "name": "region-ie1",
        "identity": "alice",
        "region": "ie1",
        "grants": [{"type": "video", "room": "My Room"}],
    },
    {
        "name": "nbf-omitted-ttl-600",
        "identity": "alice",
        "nbf": None,
        "ttl": 600,
        "grants": [{"type": "video", "room": "My Room"}],
    },
    {
        "name": "nbf-fixed-max-ttl",
        "identity": "alice",
        "nbf": NOW - 30,
        "ttl": 86400,
        "grants": [{"type": "video"}],
    },
    {
        "name": "chat-only-no-identity",
        "identity": None,
        "grants": [{"type": "chat", "service_sid": "IS" + "1" * 32}],
    },
    {
        "name": "all-grants",
        "identity": "user@example.com",
        "region": "au1",
        "grants": [
            {"type": "video", "room": "Daily standup"},
            {
                "type": "chat",
                "service_sid": "IS" + "a" * 32,
                "endpoint_id": "app:user@example.com:device-1",
                "deployment_role_sid": "RL" + "b" * 32,
                "push_credential_sid": "CR" + "c" * 32,
            },
            {"type": "data_sync", "service_sid": "IS" + "d" * 32, "endpoint_id": "sync-ep"},
            {
                "type": "voice",
                "incoming_allow": True,
                "outgoing_application_sid": "AP" + "e" * 32,
                "outgoing_application_params": {"to": "+15017122661", "queue": "support", "priority": 2, "vip": False},
                "push_credential_sid": "CR" + "f" * 32,
                "endpoint_id": "voice-ep",
            },
            {
                "type": "task_router",
                "workspace_sid": "WS" + "1" * 32,
                "worker_sid": "WK" + "2" * 32,
                "role": "worker",
            },
            {
                "type": "player",
                "grant": {
                    "requestCredentials": None,
                    "playbackUrl": "https://example.com/live/ß.m3u8",
                    "playerStreamerSid": "VJ" + "3" * 32,
                    "list": [1, "two", True],
                },
            },
        ],
    },
    {
        "name": "voice-outgoing-only",
        "identity": "agent-7",
        "grants": [{"type": "voice", "outgoing_application_sid": "AP" + "9" * 32}],
    },
    {
        "name": "empty-grants-ttl-1",
        "identity": None,
        "ttl": 1,
        "grants": [],
    },
]


def main():
    out = {
        "source": "twilio Python helper library (PyPI), tests/vectors/video/generate.py",
        "python": sys.version.split()[0],
        "twilio": version("twilio"),
        "pyjwt": version("pyjwt"),
        "now": NOW,
        "account_sid": ACCOUNT_SID,
        "api_key_sid": KEY_SID,
        "api_key_secret": SECRET,
        "vectors": [],
    }
    for spec in VECTORS:
        spec = dict(spec)
        spec.setdefault("identity", None)
        spec.setdefault("ttl", 3600)
        spec.setdefault("nbf", "now")
        spec.setdefault("region", None)
        kwargs = {"identity": spec["identity"], "ttl": spec["ttl"], "region": spec["region"]}
        if spec["nbf"] != "now":
            kwargs["nbf"] = spec["nbf"]
        token = AccessToken(ACCOUNT_SID, KEY_SID, SECRET, **kwargs)
        for g in spec["grants"]:
            token.add_grant(make_grant(g))
        jwt = token.to_jwt()
        if isinstance(jwt, bytes):
            jwt = jwt.decode()
        spec["token"] = jwt
        out["vectors"].append(spec)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
