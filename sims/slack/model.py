"""The things a Slack workspace holds, as plain values.

Records handed out by the inspection API are frozen snapshots: a message that is later edited
is replaced by a new ``Message``, so a test holding the old one sees what was there at the time.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

BOT_USER_ID = "U0FWBOT"
BOT_ID = "B0FWBOT"
APP_ID = "A0FWBOT"
BOT_NAME = "fwbot"
SLACKBOT_USER_ID = "USLACKBOT"


@dataclass
class User:
    id: str
    name: str
    real_name: str = ""
    tz: str = "UTC"
    is_admin: bool = False
    deleted: bool = False
    is_bot: bool = False
    display_name: str = ""


@dataclass
class Channel:
    id: str
    name: str
    members: list[str] | None = None  # None: every user of the workspace is a member
    is_im: bool = False
    im_user: str | None = None  # the human on the other side of a bot DM
    created: int = 0
    is_private: bool = False  # the bot posts only where it is a member (chat:write.public is for public ones)
    bot_member: bool = True
    is_archived: bool = False


@dataclass
class Usergroup:
    id: str
    handle: str
    name: str
    users: list[str] = field(default_factory=list)
    description: str = ""


@dataclass(frozen=True)
class Message:
    ts: str
    channel: str
    user: str
    text: str = ""
    blocks: list[dict] | None = None
    thread_ts: str | None = None
    ephemeral_to: str | None = None
    edited: bool = False
    deleted: bool = False
    files: tuple[dict, ...] = ()
    reply_count: int = 0
    reply_broadcast: bool = False
    # a slash command echoed into the channel (``response_type: in_channel``) shows who ran it
    command_echo: str | None = None
    # the app's message metadata ({"event_type", "event_payload"}), returned by history reads
    # that ask for it (``include_all_metadata``)
    metadata: dict | None = None

    @property
    def is_bot(self) -> bool:
        return self.user == BOT_USER_ID

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_slack(self, team_id: str) -> dict[str, Any]:
        """The message as Slack's Web API returns it."""
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text, "team": team_id}
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.reply_count and not self.is_reply:
            out["reply_count"] = self.reply_count
        if self.files:
            out["files"] = list(self.files)
            out["upload"] = True
        if self.is_bot:
            out.update(bot_id=BOT_ID, app_id=APP_ID, bot_profile={"id": BOT_ID, "app_id": APP_ID, "name": BOT_NAME,
                                                                  "deleted": False, "team_id": team_id})
        if self.edited:
            out["edited"] = {"user": self.user, "ts": self.ts}
        if self.metadata is not None:
            out["metadata"] = self.metadata
        return out


@dataclass
class View:
    """An open modal or a published App Home tab; ``view`` is the JSON Slack would return."""

    id: str
    user: str
    view: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.view.get("type", "modal")

    @property
    def callback_id(self) -> str:
        return self.view.get("callback_id", "")

    @property
    def blocks(self) -> list[dict]:
        return self.view.get("blocks", [])

    @property
    def title(self) -> str:
        return (self.view.get("title") or {}).get("text", "")


@dataclass(frozen=True)
class ApiCall:
    method: str
    params: dict[str, Any]
    token: str | None
    at: datetime
    response: dict[str, Any] | None = None
    status: int = 200


@dataclass(frozen=True)
class RateViolation:
    method: str
    channel: str
    at: datetime
    gap_seconds: float


@dataclass
class UploadedFile:
    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    title: str | None = None
    content: bytes | None = None
    created: int = 0

    @property
    def mimetype(self) -> str:
        return mimetypes.guess_type(self.filename)[0] or "application/octet-stream"


@dataclass(frozen=True)
class Delivery:
    """What the bot answered to one signed request (its ``ack()``)."""

    status: int  # 0 when the request never got an answer (connection refused, timeout)
    body: str
    elapsed: float
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # "operation_timeout" / "connection_failed" / local validation reason
    payload: dict[str, Any] | None = None  # what was sent, decoded
    errors: dict[str, str] = field(default_factory=dict)  # client-side input validation (not sent)

    @property
    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class Trigger:
    """A trigger_id handed to the app: it may open one view, soon after it was issued."""

    issued: datetime
    user: str
    used: bool = False


@dataclass
class ResponseUrl:
    """A response_url handed to the app; what it may change depends on where it came from."""

    created: datetime
    user: str
    channel: str
    message_ts: str | None = None  # the message an interaction happened on
    last_posted_ts: str | None = None  # what a command's response_url posted last
    uses: int = 0


@dataclass
class Script:
    """Failures scripted for the next calls to one Web API method (``SlackWorkspace.script``)."""

    method: str
    status: int | None
    retry_after: float | None
    error: str | None
    remaining: int | None  # None: forever
