"""App Home: the viewer's deployments with state, replicas, $/h and next idle timer; admins see all, by owner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.core.lifecycle import DeploymentLike, Timer
from bot.ui import kit
from bot.ui.lifecycle import home_rows


def render_home(
    deployments: Sequence[DeploymentLike],
    timers: Mapping[str, Sequence[Timer]],
    prices: Mapping[str, float],
    *,
    now: datetime,
    admin: bool,
    simulated: bool,
    tz: str | None = None,
    notice: str | None = None,
    schedules: Mapping[str, str] | None = None,
) -> dict:
    """The Home tab view. ``notice`` is the outcome of the viewer's last click on it."""
    blocks = [kit.header("All Fireworks deployments" if admin else "Your Fireworks deployments")]
    if notice:
        blocks.append(kit.section(notice))
    blocks += home_rows(sorted(deployments, key=lambda d: (d.owner or "", d.id)), timers, prices, now=now,
                        group_by_owner=admin, tz=tz, schedules=schedules)
    blocks.append(kit.footer_context(
        simulated, "$/h at current replicas · `/fw keep <id> 4h` keeps one warm · `/fw list all` lists everything"))
    return kit.home(blocks)
