"""Block Kit for costs: what a reader sees, and that Slack's limits hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.core.costs import Change, DeploymentCost, cost_report, integrate, owner_digest
from bot.core.pricing import UNKNOWN_PRICE_TEXT
from bot.ui.costs import (
    change_text,
    chart_bars,
    partial_usd,
    render_budget_alert,
    render_channel_summary,
    render_cost_report,
    render_owner_digest,
    sparkline,
    usd,
)

PRICES = {"NVIDIA_H100_80GB": 8.0}
T0 = datetime(2026, 11, 2, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def rp(dep: str, when: datetime, replicas: int) -> dict:
    return {"deployment_id": dep, "at": when, "replicas": replicas, "accelerator_type": "NVIDIA_H100_80GB",
            "accelerator_count": 1, "single_region": 0}


def sp(dep: str, when: datetime, serving: int) -> dict:
    return {"deployment_id": dep, "at": when, "serving": serving}


def _cost(dep: str, usd_: float, idle: float = 0.0, unknown: bool = False) -> DeploymentCost:
    gpu_s = (usd_ / 8 if usd_ else 1) * 3600
    idle_s = gpu_s * (idle / usd_) if usd_ else gpu_s
    return DeploymentCost(
        deployment_id=dep,
        gpu_seconds=gpu_s,
        serving_gpu_seconds=gpu_s - idle_s,
        idle_gpu_seconds=idle_s,
        usd=None if unknown else usd_,
        idle_usd=None if unknown else idle,
        known_usd=0.0 if unknown else usd_,
        known_idle_usd=0.0 if unknown else idle,
        unpriced_gpu_seconds=gpu_s if unknown else 0.0,
        unknown_price_types=("NVIDIA_A100_80GB",) if unknown else (),
    )


def _all_text(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False)


def _buttons(payload: dict) -> list[dict]:
    return [e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_money_format():
    assert usd(1234.56) == "$1,234.56"
    assert usd(0) == "$0.00"
    assert usd(None) == UNKNOWN_PRICE_TEXT
    assert partial_usd(10, True) == "$10.00"
    assert partial_usd(0, False) == UNKNOWN_PRICE_TEXT
    assert partial_usd(10, False) == f"$10.00 (+ {UNKNOWN_PRICE_TEXT})"


def test_sparkline():
    assert sparkline([]) == ""
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([1, 100]) == "▁█"


def test_change_text():
    assert change_text(None) == ""
    assert change_text(Change(0, 5, None, True)) == "new this period"
    assert change_text(Change(100, 40, 40.0, False)) == "▲ $40.00 (+40%) vs previous period"
    assert change_text(Change(100, -25, -25.0, False)) == "▼ $25.00 (-25%) vs previous period"


def test_cost_report_message():
    meta = {f"d{i}": {"owner": f"U{i}"} for i in range(7)}
    results = {f"d{i}": _cost(f"d{i}", 1000.0 * (i + 1), idle=100) for i in range(7)}
    results["z"] = _cost("z", 0, unknown=True)
    rep = cost_report(results, meta, "owner", {"d6": _cost("d6", 3500)}, label="this week")
    payload = render_cost_report(rep, simulated=True).payload()
    text = _all_text(payload)

    assert payload["text"].startswith("GPU cost this week: $28,000.00 (+ unknown price")
    assert payload["blocks"][0]["type"] == "header"
    assert "$28,000.00" in text and "$700.00" in text  # total and idle
    assert "*1.* <@U6> — *$7,000.00*" in text
    assert "▲ $3,500.00 (+100%) vs previous period" in text
    assert "…and 3 more" in text  # 8 groups (7 owners + unowned), top five shown
    assert "at unknown price (set FWBOT_PRICES)" in text  # the note for `z`
    assert "simulated Fireworks" in text


def test_report_has_daily_sparkline_and_chart_bars():
    out = integrate(
        [rp("a", at(-1), 1), rp("a", at(24), 2), rp("a", at(48), 0)],
        [sp("a", at(30), 1)],
        T0,
        at(72),
        prices=PRICES,
    )
    rep = cost_report(out, {}, "deployment", label="this week")
    text = _all_text(render_cost_report(rep, simulated=False).payload())
    assert "Daily `▅█▁` Mon 2 Nov → Wed 4 Nov · peak $384.00" in text
    bars = chart_bars(rep)
    assert [(b.label, b.serving, b.idle) for b in bars] == [("2", 0, 192), ("3", 288, 96), ("4", 0, 0)]


def test_empty_report():
    text = _all_text(render_cost_report(cost_report({}, {}, "owner", label="today"), simulated=False).payload())
    assert "No GPU time in this period." in text


def test_channel_summary_with_budget():
    rep = cost_report({"a": _cost("a", 250, idle=50)}, {"a": {"channel": "C1"}}, "deployment", label="last week")
    payload = render_channel_summary("C1", rep, budget=1000, projected=1100, simulated=False).payload()
    text = _all_text(payload)
    assert "<#C1>" in text
    assert "Budget $1,000.00/month · projected this month $1,100.00 (110%)" in text


def test_owner_digest_message_with_buttons():
    meta = {
        "big": {"owner": "U1", "display_name": "Big one"},
        "lazy": {"owner": "U1", "base_model": "accounts/fireworks/models/llama-v3p1-8b-instruct"},
        "busy": {"owner": "U1"},
    }
    results = {"big": _cost("big", 300, idle=20), "lazy": _cost("lazy", 100, idle=76), "busy": _cost("busy", 12)}
    payload = render_owner_digest(owner_digest("U1", results, meta), simulated=False).payload()
    text = _all_text(payload)
    assert payload["text"] == (
        "You own 3 deployments, $412.00 this week, $96.00 of it idle. Biggest: `big` (Big one) ($300.00)."
    )
    assert "`llama-v3p1-8b-instruct`" in text
    buttons = _buttons(payload)
    assert [(b["action_id"], b["value"]) for b in buttons] == [("cost_scale_to_zero", "lazy"), ("cost_delete", "lazy")]
    assert "confirm" not in buttons[0]
    assert buttons[1]["style"] == "danger" and "lazy" in buttons[1]["confirm"]["text"]["text"]


def test_owner_digest_unknown_price_and_many_idle_stay_within_limits():
    meta = {f"d{i:02}": {"owner": "U1"} for i in range(30)}
    results = {d: _cost(d, 10, idle=9) for d in meta}
    results["d00"] = _cost("d00", 0, unknown=True)
    payload = render_owner_digest(owner_digest("U1", results, meta), simulated=True).payload()
    assert len(payload["blocks"]) <= 50
    assert len(_buttons(payload)) == 20  # ten deployments, two buttons each
    text = _all_text(payload)
    assert UNKNOWN_PRICE_TEXT in text and "$0.00 spent idle" not in text


def test_owner_digest_nothing_ran():
    payload = render_owner_digest(owner_digest("U1", {}, {"a": {"owner": "U1"}}), simulated=False).payload()
    assert payload["text"] == "You own 1 deployment; it had no replicas running this week, so it cost nothing then."
    assert _buttons(payload) == []


def test_budget_alerts():
    rep = cost_report({"a": _cost("a", 400)}, {"a": {"owner": "U1"}}, "owner")
    eighty = render_budget_alert(
        "C1", 80, spent=400, projected=850, budget=1000, month_label="November 2026", report=rep, simulated=False
    ).payload()
    text = _all_text(eighty)
    assert "80% of the November 2026 budget" in eighty["text"]
    assert "<#C1> is on course to spend *$850.00* in November 2026, 85% of its budget of $1,000.00." in text
    assert "Spent so far: $400.00." in text and "<@U1>" in text
    hundred = render_budget_alert(
        "C1", 100, spent=600, projected=1300, budget=1000, month_label="November 2026", simulated=False
    ).payload()
    assert "exceed" in hundred["text"] and "$1,300.00" in hundred["text"]
