"""Lifecycle Block Kit: content, buttons, and Slack's limits with worst-case inputs."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.core.clock import iso
from bot.core.lifecycle import LifecyclePolicy, TimerWarning, digest, due_warnings, timers, warning_key
from bot.ui import lifecycle as ui
from tests.core.test_lifecycle import PRICES, T0, at, dep

H = 3600.0
POLICY = LifecyclePolicy()
LONG_ID = "d" * 63
EVIL = "<!channel> & <@U999> *bold* " + "x" * 200


def idle(d, now) -> TimerWarning:
    [t] = [t for t in timers(d, at(0), POLICY, now, PRICES) if t.kind == "idle_paying"]
    return TimerWarning(t, 0.0, d.channel, now)


def warning(d, kind: str, last=T0, now=None, **kw) -> TimerWarning:
    now = now or at(0)
    [t] = [t for t in timers(d, last, POLICY, now, PRICES, **kw) if t.kind == kind]
    return TimerWarning(t, 600.0 if kind == "scale_to_zero" else 3600.0, d.channel, now)


def action_ids(payload: dict) -> list[str]:
    return [e["action_id"] for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]


def button_values(payload: dict) -> set[str]:
    return {e.get("value") for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]}


def all_text(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False)


def test_scale_to_zero_warning_content_and_buttons():
    d = dep(min_replicas=0, replicas=1)
    w = warning(d, "scale_to_zero", now=at(H - 600))
    p = ui.render_warning(w, d, owner_tz="Europe/Berlin", simulated=False, token="tok123").payload()
    text = all_text(p)
    assert "<@U1>" in text
    assert "scale to zero" in text and "10m" in text
    assert "Mon 11:00 (Europe/Berlin)" in text  # 10:00 UTC in Berlin (CET)
    # One time format: the owner's local time with its zone (no Slack date token beside it).
    assert "<!date^" not in text
    assert "$16.00/h" in text and "cold start" in text
    assert action_ids(p) == ["lc_keep_warm_1h", "lc_keep_warm_4h", "lc_scale_to_zero", "lc_delete", "lc_transfer"]
    assert button_values(p) == {"tok123"}
    delete = next(e for b in p["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "lc_delete")
    assert delete["confirm"]["title"]["text"] == "Delete deployment?"
    assert "simulated" not in text


def test_platform_delete_warning_says_snooze_cannot_move_it():
    d = dep(min_replicas=0, replicas=0, delete_time=iso(at(168 * H)))
    w = warning(d, "auto_delete", now=at(167 * H))
    p = ui.render_warning(w, d, owner_tz=None, simulated=True, token="t").payload()
    text = all_text(p)
    assert "deleteTime" in text and "cannot move the platform" in text
    assert "costs nothing right now" in text
    assert "simulated Fireworks" in text
    assert "lc_snooze" in action_ids(p) and "lc_scale_to_zero" not in action_ids(p)


def test_bot_delete_warning_and_overdue_final_notice():
    d = dep(min_replicas=1, unused_delete_s=10 * H)
    w = warning(d, "auto_delete", now=at(9 * H))
    text = all_text(ui.render_warning(w, d, owner_tz="UTC", simulated=False, token="t").payload())
    assert "fwbot will *delete*" in text and "in *1h*" in text and "soft delete" in text
    late = warning(d, "auto_delete", now=at(12 * H))
    text = all_text(ui.render_warning(late, d, owner_tz="UTC", simulated=False, token="t").payload())
    assert "past its unused limit" in text and "in *1h* unless you act" in text


def test_far_due_shows_the_date():
    d = dep(min_replicas=1, unused_delete_s=30 * 86400)
    w = warning(d, "auto_delete", now=at(0))
    assert "Wed 2 Dec 09:00 (UTC)" in all_text(ui.render_warning(w, d, owner_tz="UTC", simulated=False, token="t").payload())


def test_bad_timezone_falls_back_to_utc():
    assert ui.local_time(at(0), "Not/AZone", at(0)) == "Mon 09:00 (UTC)"


def test_idle_paying_exact_dollars():
    d = dep(min_replicas=2, replicas=3, accelerator_count=4)
    w = idle(d, at(5 * H))
    p = ui.render_warning(w, d, owner_tz=None, simulated=False, token="t").payload()
    text = all_text(p)
    assert "$480.00 spent while idle" in text
    assert "$2,304.00/day" in text
    assert "no traffic for 5h" in text
    assert action_ids(p) == ["lc_snooze", "lc_scale_to_zero", "lc_delete", "lc_transfer"]
    assert p == ui.render_idle_paying(w, d, owner_tz=None, simulated=False, token="t").payload()


def test_unknown_price_says_how_to_fix():
    d = dep(min_replicas=1, accelerator_type="NVIDIA_A100_80GB")
    w = idle(d, at(5 * H))
    assert "FWBOT_PRICES" in all_text(ui.render_warning(w, d, owner_tz=None, simulated=False, token="t").payload())


def test_resolved_edit_has_no_buttons():
    d = dep()
    w = warning(d, "scale_to_zero", now=at(H - 600))
    p = ui.render_resolved(w, "traffic resumed — no action").payload()
    assert action_ids(p) == []
    assert "traffic resumed — no action" in all_text(p)
    assert "~" in p["blocks"][0]["text"]["text"]


def test_auto_deleted_notice_has_undelete():
    d = dep()
    p = ui.render_auto_deleted(d, simulated=False, token="undo1", idle_s=168 * H).payload()
    assert action_ids(p) == ["lc_undelete"]
    assert button_values(p) == {"undo1"}
    assert "7d without traffic" in all_text(p)


def _many(n: int):
    deps, ws = {}, []
    for i in range(n):
        d = dep(id=f"{LONG_ID[:60]}{i:03d}", owner=f"U{i}", channel="C1", display_name=EVIL)
        deps[d.id] = d
        ws += due_warnings(timers(d, at(0), POLICY, at(0), PRICES), POLICY, at(H - 60), set())
    return deps, ws


def test_digest_one_message_per_channel_with_all_owners():
    deps, ws = _many(3)
    [g] = digest(ws)
    tokens = {w.key: f"tok{i}" for i, w in enumerate(g.warnings)}
    p = ui.render_digest(g.warnings, deps, tokens, simulated=False).payload()
    text = all_text(p)
    assert all(f"<@U{i}>" in text for i in range(3))
    assert button_values(p) == {"tok0", "tok1", "tok2"}
    assert "3 deployments need attention" in text


def test_digest_of_one_is_the_single_warning():
    deps, ws = _many(1)
    tokens = {ws[0].key: "tok"}
    d = deps[ws[0].deployment_id]
    single = ui.render_warning(ws[0], d, owner_tz=None, simulated=False, token="tok").payload()
    assert ui.render_digest(ws, deps, tokens, simulated=False).payload() == single


def test_huge_digest_stays_within_limits_and_marks_resolved():
    deps, ws = _many(40)
    tokens = {w.key: f"t{i}" for i, w in enumerate(ws)}
    resolved = {ws[0].key: "traffic resumed — no action"}
    p = ui.render_digest(ws, deps, tokens, simulated=True, resolved=resolved).payload()
    assert len(p["blocks"]) <= 50
    text = all_text(p)
    assert "and 28 more" in text
    assert "t0" not in button_values(p)


def test_worst_case_long_names_and_markup_are_escaped():
    d = dep(id=LONG_ID, owner="U" + "X" * 20, display_name=EVIL, base_model="m" * 500)
    for kind, now in (("scale_to_zero", at(H - 600)),):
        w = warning(d, kind, now=now)
        p = ui.render_warning(w, d, owner_tz="America/Argentina/ComodRivadavia", simulated=True, token="t" * 40).payload()
        assert len(p["text"]) <= 3900
    d2 = replace(d, min_replicas=1)
    w2 = idle(d2, at(9 * H))
    ui.render_warning(w2, d2, owner_tz=None, simulated=False, token="t").payload()
    ui.render_resolved(w2, EVIL).payload()
    assert "<!channel>" not in all_text(ui.render_resolved(w2, EVIL).payload())


def test_home_rows_state_cost_next_timer_buttons():
    a = dep(id="a", owner="U1")
    b = dep(id="b", owner=None, min_replicas=1, replicas=2, state="READY")
    c = dep(id="c", owner="U1", state="DELETED", replicas=0)
    ts = {x.id: timers(x, at(0), POLICY, at(0), PRICES) for x in (a, b, c)}
    blocks = ui.home_rows([a, b, c], ts, PRICES, now=at(0))
    p = kit_home(blocks)
    text = all_text(p)
    assert "$16.00/h" in text and "$32.00/h" in text
    assert "scales to zero in 1h" in text
    assert "idle-paying report in 2h" in text
    ids = action_ids(p)
    assert ids.count("home_scale_to_zero") == 2 and ids.count("home_keep_warm") == 2
    grouped = all_text(kit_home(ui.home_rows([a, b, c], ts, PRICES, now=at(0), group_by_owner=True)))
    assert grouped.index("<@U1>") < grouped.index("unowned")


def test_home_rows_many_deployments_fit():
    deps = [dep(id=f"{LONG_ID[:59]}{i:04d}", owner=f"U{i % 7}", display_name=EVIL) for i in range(120)]
    ts = {d.id: timers(d, at(0), POLICY, at(0), PRICES) for d in deps}
    kit_home(ui.home_rows(deps, ts, PRICES, now=at(0), group_by_owner=True))
    assert ui.home_rows([], {}, PRICES, now=at(0))


def kit_home(blocks) -> dict:
    from bot.ui import kit

    return kit.home(blocks)


def test_warning_key_round_trip_with_render():
    d = dep()
    w = warning(d, "scale_to_zero", now=at(H - 600))
    assert w.key == warning_key("d1", "scale_to_zero", datetime(2026, 11, 2, 10, 0, tzinfo=UTC), 600)
    assert T0 + timedelta(hours=1) == w.timer.due
