"""Block Kit for money after the fact: cost answers, channel summaries, owner digests, budgets.

Everything is built through :mod:`bot.ui.kit`. Dollar figures come from :mod:`bot.core.costs`; a price
that is unknown is said to be unknown (with the setting that fixes it), never shown as $0.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from slack_sdk.models.blocks import Block

from bot.core.costs import Change, CostReport, DeploymentLine, GroupCost, OwnerDigest
from bot.core.names import short_model
from bot.core.pricing import UNKNOWN_PRICE_TEXT, format_gpu_time, format_usd
from bot.core.settings import LIST_PRICES_AS_OF
from bot.ui import kit
from bot.ui.chart import Bar
from bot.ui.kit import Message

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
CHART_LEGEND = "blue = serving, amber = idle"
MAX_DIGEST_LINES = 10
MAX_IDLE_BUTTONS = 10  # two blocks each; keeps a digest well inside Slack's 50


def usd(amount: float | None) -> str:
    """``$1,234.56``; an unknown amount says how to fix it."""
    return format_usd(amount, "")


def partial_usd(amount: float, price_known: bool) -> str:
    """A total whose GPU time may be partly unpriced: the priced part plus a plain warning."""
    if price_known:
        return usd(amount)
    return UNKNOWN_PRICE_TEXT if amount == 0 else f"{usd(amount)} (+ {UNKNOWN_PRICE_TEXT})"


def sparkline(values: Sequence[float]) -> str:
    """``▁▃█``: one block per value, scaled to the largest (all-zero is a flat ``▁`` line)."""
    peak = max(values, default=0.0)
    if peak <= 0:
        return SPARK_LEVELS[0] * len(values)
    top = len(SPARK_LEVELS) - 1
    return "".join(SPARK_LEVELS[max(0, min(top, round(v / peak * top)))] for v in values)


def percent(x: float) -> str:
    return f"{x:.0f}%"


def change_text(change: Change | None) -> str:
    """``▲ $40.00 (+11%) vs previous period``, ``new this period``, or ``same as previous period``."""
    if change is None:
        return ""
    if change.is_new:
        return "new this period"
    if abs(change.delta_usd) < 0.005:
        return "same as previous period"
    arrow = "▲" if change.delta_usd > 0 else "▼"
    pct = f" ({change.pct:+.0f}%)" if change.pct is not None else ""
    return f"{arrow} {usd(abs(change.delta_usd))}{pct} vs previous period"


def _day(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b}"


def group_title(group: GroupCost, by: str) -> str:
    """How a group is named in mrkdwn: a mention, a channel link, a deployment or a model."""
    if by == "owner":
        return kit.mention(group.key) if group.key else "_unowned_"
    if by == "channel":
        return kit.channel_link(group.key) if group.key else "_no channel_"
    if by == "deployment":
        dep = f"`{kit.escape(group.key or '?')}`"
        return dep if group.name == group.key else f"{dep} ({kit.escape(group.name)})"
    return f"`{kit.escape(group.name)}`" if group.key else "_unknown model_"


def _group_line(rank: int, group: GroupCost, by: str) -> str:
    parts = [f"*{rank}.* {group_title(group, by)} — *{partial_usd(group.usd, group.price_known)}*"]
    if group.idle_usd > 0:
        share = group.idle_usd / group.usd * 100 if group.usd else 0
        parts.append(f"idle {usd(group.idle_usd)} ({percent(share)})")
    parts.append(format_gpu_time(group.gpu_hours * 3600))
    if by != "deployment":
        n = len(group.deployments)
        parts.append(kit.counted(n, "deployment"))
    if group.change is not None:
        parts.append(change_text(group.change))
    return " · ".join(parts)


def chart_bars(report: CostReport) -> list[Bar]:
    """The report's days as bars for :func:`bot.ui.chart.render_stacked_bars` (label: day of month)."""
    return [Bar(str(d.day.day), d.serving_usd, d.idle_usd) for d in report.daily]


def _footer(simulated: bool) -> Block:
    return kit.footer_context(
        simulated,
        f"Estimated from replica history at list prices as of {LIST_PRICES_AS_OF} (FWBOT_PRICES overrides)",
    )


def report_blocks(report: CostReport) -> list[Block]:
    """Totals, daily sparkline, the top groups and unknown-price notes (no header, no footer)."""
    total = partial_usd(report.usd, report.price_known)
    fields = [
        f"*Total*\n{total}",
        f"*Idle*\n{usd(report.idle_usd)} ({percent(report.idle_share * 100)})",
        f"*GPU-hours*\n{format_gpu_time(report.gpu_hours * 3600)}",
    ]
    if report.change is not None:
        fields.append(f"*Change*\n{change_text(report.change)}")
    blocks: list[Block] = [kit.section(fields=fields)]

    if len(report.daily) > 1:
        spend = [d.usd for d in report.daily]
        blocks.append(
            kit.context(
                f"Daily `{sparkline(spend)}` {_day(report.daily[0].day)} → {_day(report.daily[-1].day)}"
                f" · peak {usd(max(spend))}"
            )
        )

    if not report.groups:
        blocks.append(kit.section("No GPU time in this period."))
    else:
        lines = [_group_line(i, g, report.by) for i, g in enumerate(report.top, 1)]
        if report.rest:
            rest_usd = sum(g.usd for g in report.rest)
            lines.append(f"…and {kit.counted(len(report.rest), 'more ' + report.by)}: {usd(rest_usd)}")
        blocks.append(kit.section("\n".join(lines)))

    if report.unknown_price_notes:
        blocks.append(kit.context(":grey_question: " + "\n".join(report.unknown_price_notes)))
    return blocks


def _report_text(report: CostReport, prefix: str) -> str:
    text = f"{prefix}: {partial_usd(report.usd, report.price_known)}, {usd(report.idle_usd)} of it idle"
    change = change_text(report.change)
    return f"{text} ({change})" if change else text


def render_cost_report(report: CostReport, *, simulated: bool) -> Message:
    """The answer to ``/fw cost``."""
    title = f"GPU cost {report.label}".strip() if report.label else "GPU cost"
    return Message(
        text=_report_text(report, title),
        blocks=[
            kit.header(f"{title} · by {report.by}"),
            *report_blocks(report),
            _footer(simulated),
        ],
    )


def budget_line(budget: float | None, projected: float | None) -> str:
    """``Budget $2,000.00/month · projected $1,700.00 (85%)``; empty without a budget."""
    if budget is None or budget <= 0:
        return ""
    line = f"Budget {usd(budget)}/month"
    if projected is not None:
        line += f" · projected this month {usd(projected)} ({percent(projected / budget * 100)})"
    return line


def render_channel_summary(
    channel: str,
    report: CostReport,
    *,
    budget: float | None = None,
    projected: float | None = None,
    simulated: bool,
) -> Message:
    """The scheduled summary posted in a channel about the deployments it tracks."""
    label = report.label or "this period"
    blocks: list[Block] = [
        kit.header(f"GPU cost {label}"),
        kit.section(f"Deployments tracked in {kit.channel_link(channel)}"),
        *report_blocks(report),
    ]
    line = budget_line(budget, projected)
    if line:
        blocks.append(kit.context(line))
    blocks.append(_footer(simulated))
    return Message(text=_report_text(report, f"GPU cost {label} in {kit.channel_link(channel)}"), blocks=blocks)


def _deployment_name(line: DeploymentLine) -> str:
    dep = f"`{kit.escape(line.deployment_id)}`"
    return dep if line.name == line.deployment_id else f"{dep} ({kit.escape(line.name)})"


def _digest_line(line: DeploymentLine) -> str:
    c = line.cost
    parts = [
        f"• {_deployment_name(line)} — {partial_usd(c.known_usd, c.price_known)}",
        format_gpu_time(c.gpu_seconds),
        f"idle {percent(c.idle_fraction * 100)}",
    ]
    if line.base_model:
        parts.append(f"`{kit.escape(short_model(line.base_model))}`")
    return " · ".join(parts)


def digest_summary(digest: OwnerDigest) -> str:
    """``You own 3 deployments, $412.00 this week, $96.00 of it idle. Biggest: `a` ($300.00).``

    Every number in it is one the note is about: the deployments owned now, how many of them (and
    of those deleted since) had replicas running in the note's period, and what that cost. A
    deployment running now but not in the period is not said to have run, nor to have not run now.
    """
    owned, ran, deleted = digest.owned_now, len(digest.lines), digest.deleted_ran
    owns = f"You own {kit.counted(owned, 'deployment')}" if owned else "You own no deployments now"
    money = f"{partial_usd(digest.usd, digest.price_known)}, {usd(digest.idle_usd)} of it idle"
    if not ran:
        if owned == 0:
            return f"None of your deployments had replicas running {digest.label}."
        if owned == 1:
            return f"{owns}; it had no replicas running {digest.label}, so it cost nothing then."
        return f"{owns}; none of them had replicas running {digest.label}, so they cost nothing then."
    if ran == owned and not deleted:
        text = f"{owns}, {partial_usd(digest.usd, digest.price_known)} {digest.label}, {usd(digest.idle_usd)} of it idle."
    elif not deleted:
        text = f"{owns}; {ran} of them had replicas running {digest.label}: {money}."
    else:
        since = "deleted since" if ran == 1 else f"{deleted} of them deleted since"
        text = (f"{owns}. {kit.counted(ran, 'deployment')} of yours had replicas running {digest.label} "
                f"({since}): {money}.")
    big = digest.biggest
    if big is not None and len(digest.lines) > 1:
        text += f" Biggest: {_deployment_name(big)} ({partial_usd(big.cost.known_usd, big.cost.price_known)})."
    return text


def render_owner_digest(digest: OwnerDigest, *, simulated: bool) -> Message:
    """The weekly direct message to an owner, with fix-it buttons on mostly idle deployments."""
    blocks: list[Block] = [
        kit.header(f"Your Fireworks deployments {digest.label}"),
        kit.section(digest_summary(digest)),
    ]
    if digest.lines:
        lines = [_digest_line(x) for x in digest.lines[:MAX_DIGEST_LINES]]
        if len(digest.lines) > MAX_DIGEST_LINES:
            lines.append(f"…and {len(digest.lines) - MAX_DIGEST_LINES} more; see `/fw list mine`")
        blocks.append(kit.section("\n".join(lines)))

    if digest.idle:
        blocks.append(kit.divider())
        blocks.append(kit.section("*Idle most of the time* — scale them to zero or delete them?"))
        for line in digest.idle[:MAX_IDLE_BUTTONS]:
            dep = line.deployment_id
            c = line.cost
            burnt = f"{usd(c.known_idle_usd)} spent idle" if c.price_known else UNKNOWN_PRICE_TEXT
            blocks.append(
                kit.section(
                    f"{_deployment_name(line)}: idle {percent(c.idle_fraction * 100)} of "
                    f"{format_gpu_time(c.gpu_seconds, 'GPU-hours')} · {burnt}"
                )
            )
            blocks.append(
                kit.actions(
                    kit.button("Scale to zero", "cost_scale_to_zero", dep),
                    kit.button(
                        "Delete",
                        "cost_delete",
                        dep,
                        style="danger",
                        confirm_with=kit.confirm(
                            "Delete deployment?",
                            f"Delete `{kit.escape(dep)}`? It stops serving and stops billing; "
                            "`/fw undelete` can bring it back for a while.",
                            ok="Delete",
                        ),
                    ),
                    block_id=kit.clip(f"cost_idle:{dep}", 255),
                )
            )
    if digest.unknown_price_notes:
        blocks.append(kit.context(":grey_question: " + "\n".join(digest.unknown_price_notes)))
    blocks.append(_footer(simulated))
    return Message(text=digest_summary(digest), blocks=blocks)


def render_budget_alert(
    channel: str,
    threshold: int,
    *,
    spent: float,
    projected: float,
    budget: float,
    month_label: str,
    report: CostReport | None = None,
    simulated: bool,
) -> Message:
    """A channel's projected monthly spend crossed ``threshold`` percent of its budget."""
    share = projected / budget * 100 if budget else 0.0
    headline = (
        f"Budget alert: on course to exceed the {month_label} budget"
        if threshold >= 100
        else f"Budget alert: on course to reach {threshold}% of the {month_label} budget"
    )
    text = (
        f"{kit.channel_link(channel)} is on course to spend *{usd(projected)}* in {month_label}, "
        f"{percent(share)} of its budget of {usd(budget)}. Spent so far: {usd(spent)}."
    )
    blocks: list[Block] = [kit.header(f":warning: {headline}"), kit.section(text)]
    if report is not None and report.groups:
        lines = [_group_line(i, g, report.by) for i, g in enumerate(report.top, 1)]
        blocks.append(kit.section("*Biggest spenders*\n" + "\n".join(lines)))
    blocks.append(kit.context("Change it with `/fw budget <#channel> <usd-per-month>`"))
    blocks.append(_footer(simulated))
    return Message(text=f"{headline}: projected {usd(projected)} of {usd(budget)}", blocks=blocks)
