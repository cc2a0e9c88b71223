"""App Home: the viewer's deployments with state, replicas, $/h; admins see all, by owner."""

from __future__ import annotations

from itertools import groupby

from bot.names import accelerator_label, short_model
from bot.operations import record_usd_per_hour
from bot.pricing import format_usd
from bot.services import Services
from bot.ui import kit
from bot.ui.deployments import STATE_EMOJI


def render_home(services: Services, user: str) -> dict:
    admin = services.is_admin(user)
    records = [r for r in services.store.deployments(owner=None if admin else user) if r.state != "DELETED"]
    blocks = [kit.header("Your Fireworks deployments" if not admin else "All Fireworks deployments")]
    if not records:
        blocks.append(kit.section("Nothing running. Start one with `/fw deploy`."))
    records.sort(key=lambda r: (r.owner or "", r.id))
    for owner, group in groupby(records, key=lambda r: r.owner):
        if admin:
            blocks.append(kit.section(f"*{kit.mention(owner) if owner else 'Unowned'}*"))
        for r in group:
            usd = record_usd_per_hour(r, services.prices)
            blocks.append(kit.section(
                f"{STATE_EMOJI.get(r.state or '', '')} *{r.id}* · `{short_model(r.base_model or '?')}` · "
                f"{r.accelerator_count or 1} × {accelerator_label(r.accelerator_type)} · "
                f"{r.replicas or 0} replicas (min {r.min_replicas or 0}, max {r.max_replicas or 0}) · "
                f"{format_usd(usd)} max",
                accessory=kit.button("Details", "dep_details", r.id),
            ))
    blocks.append(kit.footer_context(services.simulated))
    return kit.home(blocks)
