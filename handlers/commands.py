"""The ``/fw`` slash command: parse, ack within 3 s, then run the verb's use case and report back."""

from __future__ import annotations

from slack_bolt import App

from bot.core.grammar import UsageError, help_text, parse
from bot.services.commands import extra_help, run_verb
from bot.services.container import Services
from bot.services.context import Context
from bot.ui import deployments as ui
from bot.ui import kit
from bot.ui.kit import Message
from handlers.acking import tell_internal_error
from handlers.views import open_deploy_modal


def register(app: App, services: Services, metrics) -> None:

    @app.command("/fw")
    def fw(ack, body, context, respond) -> None:
        text = body.get("text") or ""
        try:
            cmd = parse(text, account_id=services.gateway.account_id)
        except UsageError as e:
            metrics.operations.labels(verb="parse", result="usage").inc()
            ack(**ui.problem(e.message, e.usage).payload())
            return
        if cmd.verb == "help":
            ack(**Message(text="fwbot help",
                          blocks=kit.long_text(help_text(cmd.topic, extra_sections=extra_help(services)))).payload())
            return
        ack()
        ctx: Context = context["fw"]  # handlers/context.py

        def failed(e: BaseException) -> None:
            tell_internal_error(body, respond, e, services.store.db.path)

        if cmd.verb == "deploy_modal":
            # The trigger expires 3 s after the command: no waiting behind other acks.
            services.after_ack(open_deploy_modal, ctx, body["trigger_id"], on_error=failed, wait_for_acks=False)
            return
        services.after_ack(run_verb, ctx, cmd, on_error=failed)
