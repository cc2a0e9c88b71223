"""The App Home tab: the viewer's deployments (an admin sees everyone's)."""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.services import Services

log = logging.getLogger("fwbot.home")


def register(app: App, services: Services) -> None:
    @app.event("app_home_opened")
    def home_opened(event, client) -> None:
        from bot.ui.home import render_home

        user = event["user"]
        client.views_publish(user_id=user, view=render_home(services, user))
