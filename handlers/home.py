"""The App Home tab: the viewer's deployments (an admin sees everyone's) and its quick buttons."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.core.errors import UserFacingError
from bot.services.container import Services
from bot.services.deployments import Actor, UserError
from bot.services.lifecycle import LifecycleEngine, engine_for
from bot.ui import kit
from bot.ui.deployments import plain
from bot.ui.home import render_home
from bot.ui.schedules import schedule_line
from handlers.acking import acked_first
from handlers.lifecycle import kept_warm_message

log = logging.getLogger("fwbot.home")

HOME_KEEP_WARM_S = 3600.0


def publish_home(engine: LifecycleEngine, client, user: str, notice: str | None = None) -> None:
    s = engine.s
    admin = s.is_admin(user)
    records = [r for r in s.store.deployments(owner=None if admin else user) if r.state != "DELETED"]
    now = s.clock.now()
    snap = engine.snapshot(now, records)
    schedules = {d: line for d, running in snap.schedules.items()
                 if (line := schedule_line(running, now, snap.history.of(d).postponed))}
    view = render_home(records, snap.current, s.prices, now=now, admin=admin, simulated=s.simulated,
                       tz=engine.directory.tz(user), notice=notice, schedules=schedules)
    client.views_publish(user_id=user, view=view)


def register(app: App, services: Services) -> None:
    engine = engine_for(services)

    @app.event("app_home_opened")
    @acked_first(services)
    def home_opened(event, client) -> None:
        if event.get("tab", "home") == "home":
            publish_home(engine, client, event["user"])

    def on_home(action_id: str, run) -> None:
        @app.action(action_id)
        @acked_first(services)
        def listener(body, client) -> None:
            user = body["user"]["id"]
            actor = Actor(user, None, services.is_admin(user))
            dep_id = str((body.get("actions") or [{}])[0].get("value") or "")
            try:
                if services.store.deployment(dep_id) is None:
                    raise UserError(f"fwbot does not know a deployment `{dep_id}`.")
                notice = run(actor, dep_id)
            except UserFacingError as e:
                notice = f":warning: {kit.escape(e.user_message)}"
            publish_home(engine, client, user, notice)

    def keep_warm(actor: Actor, dep_id: str) -> str:
        result = engine.keep_warm(actor, dep_id, HOME_KEEP_WARM_S)
        message = kept_warm_message(engine, actor.user_id, result)
        if result.extended:
            engine.note_in_thread(services.store.deployment(dep_id), message)
        return message.text

    def scale_to_zero(actor: Actor, dep_id: str) -> str:
        engine.scale_to_zero(actor, dep_id)
        engine.note_in_thread(services.store.deployment(dep_id), plain(
            f":zzz: {kit.mention(actor.user_id)} scaled `{dep_id}` to zero from the App Home.",
            simulated=services.simulated))
        return f":zzz: Scaled `{dep_id}` to zero; the next request waits for a cold start."

    on_home("home_keep_warm", keep_warm)
    on_home("home_scale_to_zero", scale_to_zero)

