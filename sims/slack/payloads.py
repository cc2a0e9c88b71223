"""The bodies Slack sends to an app, built from plain values.

Shapes follow Slack's documented payloads and the fixtures in bolt-python's own scenario tests.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from .model import APP_ID, Channel, User


def team_obj(team_id: str, domain: str) -> dict[str, str]:
    return {"id": team_id, "domain": domain}


def user_obj(user: User, team_id: str) -> dict[str, str]:
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": team_id}


def slash_command(*, team_id: str, domain: str, user: User, channel: Channel, command: str, text: str,
                  response_url: str, trigger_id: str, token: str) -> dict[str, str]:
    return {
        "token": token,
        "team_id": team_id,
        "team_domain": domain,
        "channel_id": channel.id,
        "channel_name": "directmessage" if channel.is_im else channel.name,
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def form_body(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def interactive_body(payload: dict[str, Any]) -> bytes:
    """Interactions arrive form-encoded, the JSON in one ``payload`` field."""
    return ("payload=" + quote(json.dumps(payload, separators=(",", ":")))).encode()


def block_actions(*, team_id: str, domain: str, user: User, trigger_id: str, actions: list[dict],
                  token: str, container: dict, response_url: str | None = None,
                  channel: Channel | None = None, message: dict | None = None,
                  view: dict | None = None, state: dict | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": user_obj(user, team_id),
        "api_app_id": APP_ID,
        "token": token,
        "container": container,
        "trigger_id": trigger_id,
        "team": team_obj(team_id, domain),
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if channel is not None:
        payload["channel"] = {"id": channel.id, "name": "directmessage" if channel.is_im else channel.name}
    if message is not None:
        payload["message"] = message
    if view is not None:
        payload["view"] = view
    if state is not None:
        payload["state"] = state
    if response_url is not None:
        payload["response_url"] = response_url
    payload["actions"] = actions
    return payload


def view_submission(*, team_id: str, domain: str, user: User, view: dict, trigger_id: str, token: str,
                    response_urls: list[dict]) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": team_obj(team_id, domain),
        "user": user_obj(user, team_id),
        "api_app_id": APP_ID,
        "token": token,
        "trigger_id": trigger_id,
        "view": view,
        "response_urls": response_urls,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_closed(*, team_id: str, domain: str, user: User, view: dict, token: str, is_cleared: bool) -> dict[str, Any]:
    return {
        "type": "view_closed",
        "team": team_obj(team_id, domain),
        "user": user_obj(user, team_id),
        "api_app_id": APP_ID,
        "token": token,
        "view": view,
        "is_cleared": is_cleared,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def event_callback(*, team_id: str, event: dict, event_id: str, event_time: int, token: str,
                   bot_user_id: str) -> dict[str, Any]:
    """The Events API envelope (sent as a JSON body)."""
    return {
        "token": token,
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }
