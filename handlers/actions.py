"""Buttons on fwbot's messages: confirmations, deployment actions, adoption offers."""

from __future__ import annotations

import json
import logging
import re
import threading

from slack_bolt import App

from bot.adapters.fireworks import NotFound
from bot.core import requests
from bot.core.errors import UserFacingError
from bot.core.names import resource_id_problem
from bot.services.approvals import ask_to_delete, may_delete_now
from bot.services.changes import announce_in_thread, check_scale, delete_deployment, scale_deployment
from bot.services.commands import do_get, problem_reply
from bot.services.container import Services
from bot.services.context import Context, reply
from bot.services.deployments import DeploymentInUse, Operations
from bot.services.tracking import ensure_tracking, refresh_tracking
from bot.ui import deployments as ui
from bot.ui import kit
from bot.ui.kit import Message
from handlers.acking import acked_first

log = logging.getLogger("fwbot.actions")


def _value(body: dict) -> str:
    return (body.get("actions") or [{}])[0].get("value") or ""


def _json_value(body: dict) -> dict:
    try:
        data = json.loads(_value(body))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class DeleteOnce:
    """Makes a delete click one-shot: a second click (double click, a second copy of the
    confirmation, a replay after a restart) finds the deployment already deleted and is told so,
    instead of deleting and auditing again. Clicks on one deployment are serialised so two
    arriving together cannot both pass the check."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, deployment_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(deployment_id, threading.Lock())

    def already_done(self, deployment_id: str, hard: bool) -> str | None:
        """Why there is nothing left to delete, or None. A hard delete still purges a soft-deleted one."""
        try:
            wire = self.services.gateway.get_deployment(deployment_id)
        except NotFound:
            return f"`{deployment_id}` is already gone; nothing was changed."
        if wire.get("state") in ("DELETED", "DELETING") and not hard:
            return f"`{deployment_id}` is already deleted; nothing was changed."
        return None


def _bad_id(deployment_id: str) -> Message | None:
    """A reply for a button whose deployment id fwbot could not have written, else None."""
    problem = resource_id_problem(deployment_id, "deployment id")
    if problem is None:
        return None
    return ui.problem(kit.escape(kit.clip(problem, 300)) + "; nothing was changed.")


def register(app: App, services: Services, metrics) -> None:

    ops = Operations(services)
    once = DeleteOnce(services)

    def guarded(ctx: Context, fn) -> None:
        try:
            message = fn()
        except UserFacingError as e:
            message = problem_reply(e, services.simulated)
        if message is not None:
            reply(ctx.respond, message)

    @app.action("confirm_delete")
    @acked_first(services)
    def confirm_delete(ctx: Context, body, respond) -> None:
        data = _json_value(body)
        dep_id, given_hard, given_ignore = str(data.get("d") or ""), data.get("h", 0), data.get("i", 0)
        hard, ignore_checks = bool(given_hard), bool(given_ignore)

        def run():
            if (bad := _bad_id(dep_id)) is not None:
                return bad
            if any(v not in (0, 1) or isinstance(v, float) for v in (given_hard, given_ignore)):
                # fwbot writes 0 or 1 here; a value it never writes asks for nothing it confirmed.
                return ui.problem("that button's value is not one fwbot made; nothing was changed.")
            if not may_delete_now(ctx, dep_id):
                # The one delete rule: not the owner (any more) nor an admin, so an approver is asked;
                # the waiting message takes the confirmation's place and is replaced by the outcome.
                waiting = ask_to_delete(ctx, dep_id, hard=hard, ignore_checks=ignore_checks,
                                        reply_url=body.get("response_url"))
                respond(replace_original=True, **waiting.payload())
                return None
            try:
                with once.lock(dep_id):
                    done = once.already_done(dep_id, hard)
                    if done:
                        respond(replace_original=True, text=done)
                        return None
                    delete_deployment(ctx, dep_id, hard=hard, ignore_checks=ignore_checks)
            except DeploymentInUse as e:
                # The confirmation gives way to what Fireworks said, with its Delete anyway.
                respond(replace_original=True, **problem_reply(e, services.simulated).payload())
                return None
            respond(replace_original=True, text=f"Deleted `{dep_id}`.")
            return None

        guarded(ctx, run)

    @app.action(ui.DELETE_ANYWAY)
    @acked_first(services)
    def delete_anyway(ctx: Context, body, respond) -> None:
        """*Delete anyway* after Fireworks refused because the deployment is in use (Slack asked
        once more): by the one delete rule, the owner or an admin deletes with ignoreChecks, anyone
        else asks an approver for exactly that. One-shot like every delete click."""
        data = _json_value(body)
        dep_id, given_hard = str(data.get("d") or ""), data.get("h", 0)
        hard = bool(given_hard)
        # Offered in an ephemeral reply (replaced by the outcome) or in a DM about an approved request
        # that Fireworks refused (kept; the outcome comes as a reply of its own).
        ephemeral = bool((body.get("container") or {}).get("is_ephemeral"))

        def answer(message: Message) -> None:
            if ephemeral:
                respond(replace_original=True, **message.payload())
            else:
                reply(respond, message)

        def run():
            if (bad := _bad_id(dep_id)) is not None:
                return bad
            if given_hard not in (0, 1) or isinstance(given_hard, float):
                return ui.problem("that button's value is not one fwbot made; nothing was changed.")
            if not may_delete_now(ctx, dep_id):
                answer(ask_to_delete(ctx, dep_id, hard=hard, ignore_checks=True,
                                     reply_url=body.get("response_url") if ephemeral else None))
                return None
            with once.lock(dep_id):
                done = once.already_done(dep_id, hard)
                if done:
                    answer(ui.plain(done))
                    return None
                delete_deployment(ctx, dep_id, hard=hard, ignore_checks=True)
            answer(ui.plain(f"Deleted `{dep_id}` although it was in use.", simulated=services.simulated))
            return None

        guarded(ctx, run)

    @app.action("confirm_scale")
    @acked_first(services)
    def confirm_scale(ctx: Context, body, respond) -> None:
        data = _json_value(body)
        dep_id, replicas = data.get("d"), data.get("r")

        def run():
            # The button's value is checked as the command's would be, against the deployment
            # as it is now: the value may be forged, or the range changed since it was posted.
            checked = check_scale(ctx, dep_id, replicas)
            scale_deployment(ctx, checked, dep_id, replicas)
            respond(replace_original=True, text=f"Scaled `{dep_id}` to {replicas}.")
            return None

        guarded(ctx, run)

    @app.action("confirm_cancel")
    @acked_first(services)
    def confirm_cancel(respond) -> None:
        respond(delete_original=True)

    def deployment_button(action_id: str | re.Pattern[str]):
        """A button whose value is a deployment id: ack, check the id, run, answer what it returns."""

        def decorate(fn):
            @app.action(action_id)
            @acked_first(services)
            def listener(ctx: Context, body, respond) -> None:
                dep_id = _value(body)
                guarded(ctx, lambda: _bad_id(dep_id) or fn(ctx, dep_id, body))

            return fn

        return decorate

    @deployment_button("dep_details")
    def details(ctx: Context, dep_id: str, body: dict) -> Message | None:
        return do_get(ctx, requests.GetCommand(deployment_id=dep_id))

    @deployment_button("dep_delete")
    def delete_from_message(ctx: Context, dep_id: str, body: dict) -> Message | None:
        if not may_delete_now(ctx, dep_id):
            return ask_to_delete(ctx, dep_id)  # the one delete rule: anyone else asks an approver
        with once.lock(dep_id):
            done = once.already_done(dep_id, False)
            if done:
                return ui.plain(done)
            delete_deployment(ctx, dep_id)
        return None

    @deployment_button("dep_undelete")
    def undelete_from_message(ctx: Context, dep_id: str, body: dict) -> Message | None:
        ops.undelete(ctx.actor, dep_id)
        announce_in_thread(ctx, dep_id, ui.plain(
            f":recycle: {kit.mention(ctx.actor.user_id)} undeleted `{dep_id}`.", simulated=services.simulated))
        refresh_tracking(services, dep_id)
        return None

    @deployment_button("adopt")
    def adopt(ctx: Context, dep_id: str, body: dict) -> Message | None:
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

    @deployment_button(re.compile(r"^adopt_listed_\d+$"))
    def adopt_listed(ctx: Context, dep_id: str, body: dict) -> Message | None:
        """Adopt one deployment from a list of many: it gets a tracking message of its own."""
        record = ensure_tracking(services, ops.adopt(ctx.actor, dep_id))
        return ui.plain(f":raised_hands: You now own `{dep_id}`; fwbot tracks it in "
                        f"{kit.channel_link(record.channel)}.", simulated=services.simulated)
