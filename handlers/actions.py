"""Buttons on fwbot's messages: confirmations, deployment actions, adoption offers."""

from __future__ import annotations

import json
import logging

from slack_bolt import App

from bot import spec as cmds
from bot.fireworks import FireworksError
from bot.operations import Actor, Operations, UserError
from bot.services import Services
from bot.ui import deployments as ui
from bot.ui import kit
from handlers.commands import Context, announce_in_thread, do_get, reply

log = logging.getLogger("fwbot.actions")


def _value(body: dict) -> str:
    return (body.get("actions") or [{}])[0].get("value") or ""


def _json_value(body: dict) -> dict:
    try:
        data = json.loads(_value(body))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def register(app: App, services: Services, metrics) -> None:
    ops = Operations(services)

    def context(body: dict, respond, client) -> Context:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        return Context(services, ops, Actor(user, channel, services.is_admin(user)), respond, client, body, metrics)

    def guarded(ctx: Context, fn) -> None:
        try:
            message = fn()
        except (UserError, FireworksError) as e:
            prefix = "Fireworks says: " if isinstance(e, FireworksError) else ""
            message = ui.problem(prefix + e.message)
        if message is not None:
            reply(ctx.respond, message)

    @app.action("confirm_delete")
    def confirm_delete(ack, body, respond, client) -> None:
        ack()
        ctx = context(body, respond, client)
        data = _json_value(body)
        dep_id, hard = str(data.get("d") or ""), bool(data.get("h"))

        def run():
            ops.delete(ctx.actor, dep_id, hard=hard)
            respond(replace_original=True, text=f"Deleted `{dep_id}`.")
            note = ui.plain(f":wastebasket: {kit.mention(ctx.actor.user_id)} deleted `{dep_id}`"
                            + (" permanently." if hard else ". `/fw undelete " + dep_id + "` brings it back."),
                            simulated=services.simulated)
            announce_in_thread(ctx, dep_id, note)
            refresh_tracking(services, dep_id)
            return None

        guarded(ctx, run)

    @app.action("confirm_scale")
    def confirm_scale(ack, body, respond, client) -> None:
        ack()
        ctx = context(body, respond, client)
        data = _json_value(body)
        dep_id, replicas = str(data.get("d") or ""), int(data.get("r") or 0)

        def run():
            ops.scale(ctx.actor, dep_id, replicas)
            respond(replace_original=True, text=f"Scaled `{dep_id}` to {replicas}.")
            announce_in_thread(ctx, dep_id, ui.plain(
                f":straight_ruler: {kit.mention(ctx.actor.user_id)} scaled `{dep_id}` to {replicas} replicas.",
                simulated=services.simulated))
            return None

        guarded(ctx, run)

    @app.action("confirm_cancel")
    def confirm_cancel(ack, respond) -> None:
        ack()
        respond(delete_original=True)

    @app.action("dep_details")
    def details(ack, body, respond, client) -> None:
        ack()
        ctx = context(body, respond, client)
        guarded(ctx, lambda: do_get(ctx, cmds.GetCommand(deployment_id=_value(body))))

    @app.action("dep_delete")
    def delete_from_message(ack, body, respond, client) -> None:
        ack()
        ctx = context(body, respond, client)
        dep_id = _value(body)

        def run():
            ops.delete(ctx.actor, dep_id)
            announce_in_thread(ctx, dep_id, ui.plain(
                f":wastebasket: {kit.mention(ctx.actor.user_id)} deleted `{dep_id}`.", simulated=services.simulated))
            refresh_tracking(services, dep_id)
            return None

        guarded(ctx, run)

    @app.action("dep_undelete")
    def undelete_from_message(ack, body, respond, client) -> None:
        ack()
        ctx = context(body, respond, client)
        dep_id = _value(body)

        def run():
            ops.undelete(ctx.actor, dep_id)
            announce_in_thread(ctx, dep_id, ui.plain(
                f":recycle: {kit.mention(ctx.actor.user_id)} undeleted `{dep_id}`.", simulated=services.simulated))
            refresh_tracking(services, dep_id)
            return None

        guarded(ctx, run)

    @app.action("adopt")
    def adopt(ack, body, respond, client) -> None:
        ack()
        ctx = context(body, respond, client)
        dep_id = _value(body)

        def run():
            record = ops.adopt(ctx.actor, dep_id)
            msg = (body.get("container") or {}).get("message_ts")
            if msg and ctx.actor.channel_id:
                services.poster.update(ctx.actor.channel_id, msg, ui.plain(
                    f":raised_hands: {kit.mention(ctx.actor.user_id)} adopted `{dep_id}`.",
                    simulated=services.simulated))
            services.store.set_deployment_fields(dep_id, services.clock.now(),
                                                 channel=record.channel or ctx.actor.channel_id,
                                                 thread_ts=record.thread_ts or msg)
            return None

        guarded(ctx, run)


def refresh_tracking(services: Services, deployment_id: str) -> None:
    """Re-render a deployment's tracking message from what the store knows now."""
    from bot.reconcile import render_tracking

    record = services.store.deployment(deployment_id)
    if record and record.channel and record.thread_ts:
        services.poster.update(record.channel, record.thread_ts, render_tracking(services, record))
