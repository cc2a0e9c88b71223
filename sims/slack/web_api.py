"""Slack Web API methods, with Slack's response shapes and error codes.

Each method takes the workspace and the request's parameters (query, form and JSON body merged)
and returns the response body, or raises ``ApiError``. ``call`` adds what every method shares:
token checks, scripted failures and the call log.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import blocks as bk
from .model import APP_ID, BOT_ID, BOT_NAME, BOT_USER_ID, ApiCall

if TYPE_CHECKING:
    from .workspace import SlackWorkspace

MAX_TEXT = 40_000
SCOPES = ("commands,chat:write,chat:write.public,users:read,im:write,usergroups:read,files:write,files:read,"
          "channels:history,groups:history,im:history")


class ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


Method = Callable[["SlackWorkspace", dict[str, Any]], dict[str, Any]]
METHODS: dict[str, Method] = {}


def method(name: str) -> Callable[[Method], Method]:
    def register(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return register


def call(ws: SlackWorkspace, name: str, params: dict[str, Any], token: str | None) -> tuple[int, dict[str, str], dict]:
    """Answer one Web API request: (HTTP status, extra headers, JSON body)."""
    status, headers, body = _answer(ws, name, params, token)
    ws.record_call(ApiCall(name, params, token, ws.clock.now(), body, status))
    return status, headers, body


def _answer(ws: SlackWorkspace, name: str, params: dict[str, Any], token: str | None) -> tuple[int, dict, dict]:
    script = ws.take_script(name)
    if script is not None:
        if script.status is not None:
            headers = {"Retry-After": str(int(script.retry_after))} if script.retry_after is not None else {}
            error = script.error or ("ratelimited" if script.status == 429 else "fatal_error")
            return script.status, headers, {"ok": False, "error": error}
        return 200, {}, {"ok": False, "error": script.error}
    if name not in METHODS:
        return 200, {}, {"ok": False, "error": "unknown_method", "req_method": name}
    if not token:
        return 200, {}, {"ok": False, "error": "not_authed"}
    # apps.connections.open is the one method that takes the app-level token.
    if token != (ws.app_token if name == "apps.connections.open" else ws.bot_token):
        return 200, {}, {"ok": False, "error": "invalid_auth"}
    try:
        with ws._lock:
            body = METHODS[name](ws, params)
    except ApiError as exc:
        return 200, {}, {"ok": False, "error": exc.error, **exc.extra}
    headers = {"x-oauth-scopes": SCOPES} if name == "auth.test" else {}
    return 200, headers, {"ok": True, **body}


# ---------------------------------------------------------------- parameter reading


def _required(params: dict[str, Any], key: str) -> Any:
    value = params.get(key)
    if value is None or value == "":
        raise ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] missing required field: {key}"]})
    return value


def _json_param(params: dict[str, Any], key: str) -> Any:
    value = params.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {key} is not JSON"]}) from None
    return value


def _flag(params: dict[str, Any], key: str) -> bool:
    return str(params.get(key, "")).lower() in {"1", "true"}


def _limit(params: dict[str, Any], default: int) -> int:
    """A page size; 0 (users.list's default) means everything."""
    try:
        limit = int(params.get("limit") or default)
    except ValueError:
        raise ApiError("invalid_limit") from None
    return 1_000_000 if limit <= 0 else min(limit, 1000)


def _page(items: list, params: dict[str, Any], default_limit: int = 100) -> tuple[list, dict[str, str]]:
    """Cursor pagination as Slack does it: an opaque ``next_cursor``, empty on the last page."""
    limit = _limit(params, default_limit)
    cursor = params.get("cursor") or ""
    start = 0
    if cursor:
        try:
            start = int(base64.b64decode(cursor).decode().split(":", 1)[1])
        except (ValueError, IndexError):
            raise ApiError("invalid_cursor") from None
    chunk = items[start:start + limit]
    after = start + limit
    next_cursor = base64.b64encode(f"offset:{after}".encode()).decode() if after < len(items) else ""
    return chunk, {"next_cursor": next_cursor}


def _blocks(params: dict[str, Any], limit: int = bk.MESSAGE_BLOCK_LIMIT) -> list[dict] | None:
    try:
        return bk.parse_blocks(params.get("blocks"), limit)
    except bk.BlocksError as exc:
        raise ApiError(exc.code, response_metadata={"messages": exc.messages}) from None


def _channel(ws: SlackWorkspace, params: dict[str, Any], key: str = "channel"):
    channel = ws.resolve_channel(str(params.get(key) or ""))
    if channel is None:
        raise ApiError("channel_not_found")
    return channel


def _user(ws: SlackWorkspace, user_id: str):
    user = ws._users.get(user_id)
    if user is None:
        raise ApiError("user_not_found")
    return user


# ---------------------------------------------------------------- auth


@method("auth.test")
def auth_test(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    return {"url": f"{ws.url}/", "team": ws.team_name, "user": BOT_NAME, "team_id": ws.team_id,
            "user_id": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID, "is_enterprise_install": False}


@method("apps.connections.open")
def apps_connections_open(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    return {"url": ws.open_socket_ticket()}


# ---------------------------------------------------------------- chat


def _message_content(params: dict[str, Any], need_content: bool = True) -> tuple[str, list[dict] | None]:
    text = params.get("text")
    text = "" if text is None else str(text)
    blocks = _blocks(params)
    if need_content and not text and blocks is None and not params.get("attachments"):
        raise ApiError("no_text")
    if len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    return text, blocks


def _metadata(params: dict[str, Any]) -> dict | None:
    """``metadata``: {"event_type": str, "event_payload": object}, as JSON text or an object."""
    raw = params.get("metadata")
    if raw in (None, ""):
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise ApiError("invalid_metadata_format") from None
    if not (isinstance(value, dict) and isinstance(value.get("event_type"), str)
            and isinstance(value.get("event_payload"), dict)):
        raise ApiError("invalid_metadata_schema")
    return {"event_type": value["event_type"], "event_payload": value["event_payload"]}


def _postable(channel) -> None:
    """Why Slack would refuse a bot's post here, as its error."""
    if channel.is_archived:
        raise ApiError("is_archived")
    if channel.is_private and not channel.bot_member:
        raise ApiError("not_in_channel")


@method("chat.postMessage")
def chat_post_message(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(ws, params)
    _postable(channel)
    text, blocks = _message_content(params)
    thread_ts = params.get("thread_ts") or None
    message = ws.add_message(channel.id, BOT_USER_ID, text=text, blocks=blocks,
                             thread_ts=str(thread_ts) if thread_ts else None,
                             reply_broadcast=_flag(params, "reply_broadcast"), metadata=_metadata(params))
    return {"channel": channel.id, "ts": message.ts, "message": message.to_slack(ws.team_id)}


def _history(ws: SlackWorkspace, channel, params: dict[str, Any], messages: list) -> dict[str, Any]:
    if channel.is_private and not channel.bot_member:
        raise ApiError("not_in_channel")
    oldest = float(params.get("oldest") or 0)
    with_metadata = _flag(params, "include_all_metadata")
    shown = []
    for m in messages:
        if m.deleted or m.ephemeral_to is not None or float(m.ts) < oldest:
            continue
        out = m.to_slack(ws.team_id)
        if not with_metadata:
            out.pop("metadata", None)
        shown.append(out)
    page, meta = _page(shown, params)
    return {"messages": page, "has_more": bool(meta["next_cursor"]), "response_metadata": meta}


@method("conversations.history")
def conversations_history(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(ws, params)
    # Newest first, top-level messages (and replies broadcast to the channel), as Slack returns them.
    top = [m for m in ws._messages.get(channel.id, []) if not m.is_reply or m.reply_broadcast]
    return _history(ws, channel, params, list(reversed(top)))


@method("conversations.replies")
def conversations_replies(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(ws, params)
    ts = str(_required(params, "ts"))
    thread = [m for m in ws._messages.get(channel.id, []) if m.ts == ts or m.thread_ts == ts]
    if not thread:
        raise ApiError("thread_not_found")
    return _history(ws, channel, params, thread)


@method("chat.postEphemeral")
def chat_post_ephemeral(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(ws, params)
    user = _user(ws, str(_required(params, "user")))
    if user.id not in ws.members(channel):
        raise ApiError("user_not_in_channel")
    text, blocks = _message_content(params)
    message = ws.add_message(channel.id, BOT_USER_ID, text=text, blocks=blocks, ephemeral_to=user.id,
                             thread_ts=params.get("thread_ts") or None)
    return {"message_ts": message.ts}


@method("chat.update")
def chat_update(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(ws, params)
    original = ws.find_message(channel.id, str(_required(params, "ts")))
    if original is None:
        raise ApiError("message_not_found")
    if not original.is_bot:
        raise ApiError("cant_update_message")
    text, blocks = _message_content(params, need_content=False)
    if "blocks" not in params:
        blocks = original.blocks  # Slack keeps the blocks when only text is sent
    if not text and blocks is None:
        raise ApiError("no_text")
    updated = ws.replace_message(original, text=text, blocks=blocks, edited=True)
    return {"channel": channel.id, "ts": updated.ts, "text": updated.text, "message": updated.to_slack(ws.team_id)}


@method("chat.delete")
def chat_delete(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(ws, params)
    original = ws.find_message(channel.id, str(_required(params, "ts")))
    if original is None:
        raise ApiError("message_not_found")
    if not original.is_bot:
        raise ApiError("cant_delete_message")
    ws.replace_message(original, deleted=True)
    return {"channel": channel.id, "ts": original.ts}


@method("chat.getPermalink")
def chat_get_permalink(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    channel = _channel(ws, params)
    ts = str(_required(params, "message_ts"))
    if ws.find_message(channel.id, ts) is None:
        raise ApiError("message_not_found")
    return {"channel": channel.id, "permalink": f"{ws.url}/archives/{channel.id}/p{ts.replace('.', '')}"}


# ---------------------------------------------------------------- views


def _view_param(params: dict[str, Any], limit: int = bk.VIEW_BLOCK_LIMIT) -> dict[str, Any]:
    view = _json_param(params, "view")
    if not isinstance(view, dict):
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: view"]})
    problems = bk.check_blocks(view.get("blocks") or [], limit)
    for key, max_len in (("title", 24), ("submit", 24), ("close", 24)):
        text = (view.get(key) or {}).get("text", "")
        if len(text) > max_len:
            problems.append(f"[ERROR] must be less than {max_len + 1} characters [json-pointer:/view/{key}/text]")
    if view.get("type", "modal") == "modal" and not (view.get("title") or {}).get("text"):
        problems.append("[ERROR] missing required field: title [json-pointer:/view/title]")
    if len(view.get("private_metadata") or "") > 3000:
        problems.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    has_input = any(b.get("type") == "input" for b in view.get("blocks") or [])
    if view.get("type", "modal") == "modal" and has_input and not view.get("submit"):
        problems.append("[ERROR] submit is required when an input block is present [json-pointer:/view/submit]")
    if problems:
        raise ApiError("invalid_arguments", response_metadata={"messages": problems})
    return view


@method("views.open")
def views_open(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    view = _view_param(params)
    trigger_id = str(params.get("trigger_id") or params.get("interactivity_pointer") or "")
    problem = ws.use_trigger(trigger_id)
    if problem:
        raise ApiError(problem)
    _check_external_id(ws, view)
    record = ws.open_modal(ws.trigger_user(trigger_id), view)
    return {"view": record.view}


@method("views.push")
def views_push(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    view = _view_param(params)
    trigger_id = str(params.get("trigger_id") or params.get("interactivity_pointer") or "")
    problem = ws.use_trigger(trigger_id)
    if problem:
        raise ApiError(problem)
    user = ws.trigger_user(trigger_id)
    if not ws._stacks.get(user):
        raise ApiError("not_found")
    _check_external_id(ws, view)
    record = ws.push_modal(user, view)
    if record is None:
        raise ApiError("push_limit_reached")
    return {"view": record.view}


def _check_external_id(ws: SlackWorkspace, view: dict[str, Any], allow: str | None = None) -> None:
    external_id = view.get("external_id")
    if external_id:
        existing = ws.view_by_external_id(external_id)
        if existing is not None and existing.id != allow:
            raise ApiError("duplicate_external_id")


@method("views.update")
def views_update(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    view = _view_param(params)
    view_id, external_id = params.get("view_id"), params.get("external_id")
    if view_id:
        record = ws._views.get(str(view_id))
    elif external_id:
        record = ws.view_by_external_id(str(external_id))
    else:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] view_id or external_id required"]})
    if record is None or not ws.is_open(record.id):
        raise ApiError("not_found")
    expected = params.get("hash")
    if expected and expected != record.view.get("hash"):
        raise ApiError("hash_conflict")
    _check_external_id(ws, view, allow=record.id)
    return {"view": ws.update_view(record, view).view}


@method("views.publish")
def views_publish(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    view = _view_param(params)
    if view.get("type") != "home":
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] view type must be home"]})
    user = _user(ws, str(_required(params, "user_id")))
    current = ws.home(user.id)
    expected = params.get("hash")
    if expected and current is not None and expected != current.view.get("hash"):
        raise ApiError("hash_conflict")
    if len(json.dumps(view)) > 250_000:
        raise ApiError("view_too_large")
    return {"view": ws.publish_home(user.id, view).view}


# ---------------------------------------------------------------- users, conversations, usergroups


@method("users.info")
def users_info(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    return {"user": ws.user_json(_user(ws, str(_required(params, "user"))))}


@method("users.list")
def users_list(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    users = [ws.user_json(u) for u in ws._users.values()]
    page, meta = _page(users, params, default_limit=0)
    return {"members": page, "cache_ts": int(ws.clock.now().timestamp()), "response_metadata": meta}


@method("conversations.open")
def conversations_open(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("channel"):
        channel = _channel(ws, params)
        return {"channel": {"id": channel.id}}
    users = _required(params, "users")
    ids = users if isinstance(users, list) else [u.strip() for u in str(users).split(",") if u.strip()]
    if len(ids) != 1:
        raise ApiError("not_implemented", detail="only 1:1 DMs with the bot are supported")
    user = _user(ws, ids[0])
    if user.deleted:
        raise ApiError("user_disabled")
    channel_id = ws.dm_channel(user.id)
    if _flag(params, "return_im"):
        return {"channel": ws.channel_json(ws._channels[channel_id])}
    return {"channel": {"id": channel_id}}


@method("conversations.info")
def conversations_info(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    channel_id = str(params.get("channel") or "")
    if channel_id not in ws._channels:
        raise ApiError("channel_not_found")
    return {"channel": ws.channel_json(ws._channels[channel_id])}


@method("conversations.members")
def conversations_members(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    channel_id = str(params.get("channel") or "")
    if channel_id not in ws._channels:
        raise ApiError("channel_not_found")
    page, meta = _page(ws.members(ws._channels[channel_id]), params)
    return {"members": page, "response_metadata": meta}


@method("conversations.list")
def conversations_list(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    wanted = {t.strip() for t in str(params.get("types") or "public_channel").split(",")}
    channels = [c for c in ws._channels.values()
                if ("im" in wanted and c.is_im) or ("public_channel" in wanted and not c.is_im)]
    page, meta = _page([ws.channel_json(c) for c in channels], params)
    return {"channels": page, "response_metadata": meta}


def _usergroup_json(ws: SlackWorkspace, group, include_users: bool) -> dict[str, Any]:
    out = {"id": group.id, "team_id": ws.team_id, "is_usergroup": True, "name": group.name,
           "description": group.description, "handle": group.handle, "is_external": False,
           "date_delete": 0, "user_count": len(group.users)}
    if include_users:
        out["users"] = list(group.users)
    return out


@method("usergroups.list")
def usergroups_list(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    include = _flag(params, "include_users")
    return {"usergroups": [_usergroup_json(ws, g, include) for g in ws._usergroups.values()]}


@method("usergroups.users.list")
def usergroups_users_list(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    group = ws._usergroups.get(str(params.get("usergroup") or ""))
    if group is None:
        raise ApiError("no_such_subteam")
    return {"users": list(group.users)}


# ---------------------------------------------------------------- files


@method("files.getUploadURLExternal")
def files_get_upload_url_external(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    filename = str(_required(params, "filename"))
    try:
        length = int(_required(params, "length"))
    except ValueError:
        raise ApiError("invalid_arguments") from None
    upload = ws.new_upload(filename, length, params.get("alt_txt") or params.get("alt_text"))
    return {"upload_url": f"{ws.url}/upload/v1/{upload.id}", "file_id": upload.id}


@method("files.completeUploadExternal")
def files_complete_upload_external(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    items = _json_param(params, "files")
    if not isinstance(items, list) or not items:
        raise ApiError("invalid_arguments")
    uploads = []
    for item in items:
        upload = ws._files.get(str(item.get("id")))
        if upload is None or upload.content is None:
            raise ApiError("file_not_found" if upload is None else "file_upload_not_completed")
        upload.title = item.get("title") or upload.title
        uploads.append(upload)
    channel_ids = [c for c in str(params.get("channels") or "").split(",") if c]
    if params.get("channel_id"):
        channel_ids.append(str(params["channel_id"]))
    for channel_id in channel_ids:
        channel = ws.resolve_channel(channel_id)
        if channel is None:
            raise ApiError("channel_not_found")
        ws.add_message(channel.id, BOT_USER_ID, text=str(params.get("initial_comment") or ""),
                       thread_ts=params.get("thread_ts") or None,
                       files=tuple(ws.file_json(u) for u in uploads))
    return {"files": [ws.file_json(u) for u in uploads]}


@method("files.upload")
def files_upload(ws: SlackWorkspace, params: dict[str, Any]) -> dict[str, Any]:
    raise ApiError("method_deprecated", warning="use files.getUploadURLExternal and files.completeUploadExternal")
