"""The request context, built once per Slack request by a Bolt middleware.

Every listener works in a :class:`~bot.services.context.Context`: the services, the person who
asked (an :class:`~bot.services.deployments.Actor`: who, where, whether an admin), how to answer
them, the Web API client and the request body. :func:`install` builds it for every request that
names a user and puts it in Bolt's context as ``fw``; listeners take it as ``ctx`` (see
``handlers.acking.acked_first``) or read ``context["fw"]``.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.services.container import Services
from bot.services.context import Context
from bot.services.deployments import Actor, Operations

KEY = "fw"


def _channel(body: dict, bolt_channel: Any) -> str | None:
    channel = (bolt_channel if isinstance(bolt_channel, str) else None) or body.get("channel_id") \
        or (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return channel if isinstance(channel, str) and channel else None


def install(app: App, services: Services, metrics: Any) -> None:
    """Build each request's context after ``respond`` has been made safe (handlers.replies)."""
    ops = Operations(services)

    @app.middleware
    def request_context(context, body, next) -> None:  # noqa: A002 - Bolt's name
        user = context.get("user_id")
        if isinstance(user, str) and user:
            actor = Actor(user, _channel(body, context.get("channel_id")), services.is_admin(user))
            context[KEY] = Context(services, ops, actor, context.get("respond") or _silent, context.client, body,
                                   metrics)
        next()


def _silent(*_args: Any, **_kwargs: Any) -> None:
    """``respond`` for a request with no one to answer (none in practice: replies installs one)."""
    return None
