"""JSON endpoints behind the browser workspace (``/_ui/...``).

The page acts as one seeded user at a time (its choice, sent with every request). Everything
it does goes through the same ``SlackWorkspace`` methods tests use, so the app sees identical
requests either way.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .model import BOT_USER_ID, SLACKBOT_USER_ID, Delivery, Message

if TYPE_CHECKING:
    from .workspace import SlackWorkspace

# Versions count from zero in every process: the page tells a restarted workspace by this.
_BOOT = secrets.token_hex(4)


def handle(ws: SlackWorkspace, verb: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
    args: dict[str, Any] = dict(parse_qsl(query))
    if verb == "POST" and body:
        try:
            decoded = json.loads(body)
        except ValueError:
            return 400, {"error": "body must be JSON"}
        if not isinstance(decoded, dict):
            return 400, {"error": "body must be a JSON object"}
        args.update(decoded)
    route = ROUTES.get((verb, path.strip("/")))
    if route is None:
        return 404, {"error": f"no UI endpoint {verb} /_ui/{path}"}
    try:
        return 200, route(ws, args)
    except (LookupError, ValueError, RuntimeError) as exc:
        return 400, {"error": str(exc).strip("'\"")}


def state(ws: SlackWorkspace, args: dict[str, Any]) -> dict[str, Any]:
    """Everything the page shows for one user."""
    with ws._lock:
        humans = [u for u in ws.users if not u.is_bot]
        me = args.get("user") or next((u.id for u in humans if not u.deleted), "")
        names = {u.id: u.display_name or u.name for u in ws.users}
        names[SLACKBOT_USER_ID] = "Slackbot"
        channels = []
        for channel in ws.channels:
            if channel.is_im and channel.im_user != me:
                continue
            visible = [m for m in ws._messages.get(channel.id, []) if ws.visible_to(m, me)]
            channels.append({"id": channel.id, "name": channel.name, "is_im": channel.is_im,
                             "is_member": me in ws.members(channel), "is_archived": channel.is_archived,
                             "messages": [_message(m, names) for m in visible]})
        if me and not any(c["is_im"] for c in channels) and me in ws._users:
            channels.append({"id": ws.dm_channel(me), "name": me, "is_im": True, "is_member": True, "messages": []})
        home = ws.home(me) if me else None
        return {
            "version": ws.version,
            "boot": f"{_BOOT}-{id(ws):x}",
            "team": {"id": ws.team_id, "name": ws.team_name},
            "bot": {"id": BOT_USER_ID, "name": names[BOT_USER_ID]},
            "me": me,
            "users": [{"id": u.id, "name": u.name, "real_name": u.real_name, "deleted": u.deleted,
                       "is_admin": u.is_admin, "is_bot": u.is_bot, "tz": u.tz} for u in ws.users],
            "usergroups": [{"id": g.id, "handle": g.handle} for g in ws._usergroups.values()],
            "channels": channels,
            "views": [{"id": v.id, "view": v.view, "errors": v.errors} for v in ws.views_for(me)],
            "home": {"id": home.id, "view": home.view, "errors": home.errors} if home else None,
            "events_url": ws.events_url,
        }


def _message(m: Message, names: dict[str, str]) -> dict[str, Any]:
    return {"ts": m.ts, "user": m.user, "user_name": names.get(m.user, m.user), "text": m.text,
            "blocks": m.blocks, "thread_ts": m.thread_ts, "reply_count": m.reply_count,
            "ephemeral": m.ephemeral_to is not None, "edited": m.edited, "files": [_here(f) for f in m.files],
            "is_bot": m.user in (BOT_USER_ID, SLACKBOT_USER_ID), "command_echo": m.command_echo}


def _here(file: dict[str, Any]) -> dict[str, Any]:
    """A file as the page links it: by path, so one kept from an earlier run (on another port)
    still shows."""
    out = dict(file)
    for key in ("url_private", "url_private_download", "permalink"):
        if isinstance(out.get(key), str):
            out[key] = urlsplit(out[key]).path or out[key]
    return out


def _outcome(delivery: Delivery | None) -> dict[str, Any]:
    if delivery is None:
        return {"delivered": False}
    return {"delivered": True, "status": delivery.status, "error": delivery.error, "body": delivery.body[:2000],
            "errors": delivery.errors, "elapsed": round(delivery.elapsed, 3)}


def command(ws: SlackWorkspace, args: dict[str, Any]) -> dict[str, Any]:
    """The composer: ``/cmd text`` runs a slash command, anything else is posted as the user."""
    text = str(args.get("text") or "").strip()
    if not text:
        raise ValueError("nothing to send")
    if text.startswith("/"):
        # Typed by a person: sent as Slack sends it (escaped, with the command's mentions resolved).
        name, _, rest = text.partition(" ")
        if name in BUILT_IN and name not in ws.commands:
            return BUILT_IN[name](ws, args["user"], args["channel"], rest.strip())
        return _outcome(ws.slash_command(args["user"], args["channel"], rest.strip(), command=name, typed=True))
    message = ws.post_message(args["user"], args["channel"], text, thread_ts=args.get("thread_ts") or None)
    return {"delivered": False, "ts": message.ts}


def _archive(ws: SlackWorkspace, user: str, channel: str, rest: str, archived: bool = True) -> dict[str, Any]:
    """Slack's own ``/archive`` (and, standing in for the channel settings, ``/unarchive``):
    ``/archive`` alone archives the channel it is typed in, ``/archive #name`` another one. The
    app's posts there are then refused with ``is_archived``, as in Slack."""
    with ws._lock:
        who = ws._active_user(user)
        target = ws.resolve_channel(rest or channel)
        if target is None:
            raise ValueError(f"no channel {rest or channel}")
        if target.is_im:
            raise ValueError("a direct message cannot be archived")
        ws.set_channel(target.id, archived=archived)
        ws.add_message(target.id, who.id, text=("archived" if archived else "un-archived") + " the channel")
    return {"delivered": False}


BUILT_IN = {
    "/archive": _archive,
    "/unarchive": lambda ws, user, channel, rest: _archive(ws, user, channel, rest, archived=False),
}


def click(ws: SlackWorkspace, args: dict[str, Any]) -> dict[str, Any]:
    common = {"action_id": args["action_id"], "value": args.get("value"), "block_id": args.get("block_id"),
              "selected_option": args.get("selected_option")}
    if args.get("view_id"):
        return _outcome(ws.click_in_view(args["user"], args["view_id"], values=args.get("values"), **common))
    return _outcome(ws.click(args["user"], args["channel"], args["ts"], **common))


def submit(ws: SlackWorkspace, args: dict[str, Any]) -> dict[str, Any]:
    return _outcome(ws.submit_view(args["user"], args["view_id"], args.get("values") or {}))


def close(ws: SlackWorkspace, args: dict[str, Any]) -> dict[str, Any]:
    return _outcome(ws.close_view(args["user"], args["view_id"]))


def open_home(ws: SlackWorkspace, args: dict[str, Any]) -> dict[str, Any]:
    return _outcome(ws.open_home(args["user"]))


def switch_user(ws: SlackWorkspace, args: dict[str, Any]) -> dict[str, Any]:
    ws.user(args["user"])  # must exist
    return state(ws, args)


ROUTES = {
    ("GET", "state"): state,
    ("POST", "command"): command,
    ("POST", "click"): click,
    ("POST", "submit"): submit,
    ("POST", "close"): close,
    ("POST", "home"): open_home,
    ("POST", "switch"): switch_user,
}
