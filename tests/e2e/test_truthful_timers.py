"""What fwbot's idle timers and their messages promise, checked against the simulator's own clock.

Times are seconds after the test starts (the fake clock's T0); the jobs run when the test says
(``Life.tick``: a sync, a metrics scrape, a sweep), the simulator is reached over HTTP and the
bot's state is a real SQLite file.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.clock import parse_iso
from bot.services import costs as cost_data
from tests.fixtures.lifecycle import MODEL, action_ids
from tests.harness import message_text

H = 3600.0
_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def seconds_of(text: str) -> int:
    """``1m59s``, ``3h20m``, ``7d`` back to seconds (what ``humanize`` wrote)."""
    return sum(int(n) * _UNIT[u] for n, u in re.findall(r"(\d+)([dhms])", text))


def promised_s(message) -> int:
    """The time a warning gives until the event: its first ``in *…*``."""
    return seconds_of(re.search(r"in \*([0-9dhms]+)\*", message_text(message)).group(1))


def sim_dep(life, dep_id):
    return life.sdk().deployments.get(dep_id)


def elapsed(life, when=None) -> float:
    """Seconds since T0 (of ``when``, else of now)."""
    return ((when or life.clock.now()) - life.t0).total_seconds()


def at(life, t: float) -> None:
    """Move the clock to T0 + t (never backwards) without running any job."""
    life.clock.advance(max(0.0, t - (life.clock.now() - life.t0).total_seconds()))


def thread_notes(life, dep_id: str, needle: str) -> list:
    return [m for m in life.thread(dep_id) if needle in message_text(m)]


def warnings_of(life, dep_id: str) -> list:
    """Every message that is (or was) one of the deployment's warnings, found by where fwbot put them."""
    where = {(r.channel, r.ts) for r in life.store.warnings(deployment_id=dep_id) if r.ts}
    return [life.ws.message(channel, ts) for channel, ts in sorted(where, key=str)]


# -- 1. a warning never promises more time than there is ----------------------------------------
def test_the_reported_case_one_request_53s_before_a_scrape_is_warned_in_time(make_life):
    # The report: scrapes a minute apart, a 3m window, warned 1m ahead. One request 53 s before a
    # scrape was taken as traffic at the scrape: the warning said "in 1m" and it scaled 7 s later.
    life = make_life(env={"FWBOT_WARN_BEFORE_SCALE_TO_ZERO": "1m", "FWBOT_METRICS_INTERVAL": "60s"})
    life.deploy("report", "--scale-to-zero-window 3m")
    life.tick(54)  # 60: the first scrape, no traffic
    at(life, 67)
    life.request("report")  # 67: the one request
    life.tick(53)  # 120: the scrape that sees it
    assert life.store.last_traffic("report") == life.t0 + timedelta(seconds=120)
    warning = None
    while warning is None:
        life.tick(60)
        found = warnings_of(life, "report")
        warning = found[0] if found else None
        assert (life.clock.now() - life.t0).total_seconds() < 400, "no warning before it scaled"
    warned_at = (life.clock.now() - life.t0).total_seconds()
    promise = promised_s(warning)
    text = message_text(warning)
    assert "at the earliest" in text and "(Europe/Berlin)" in text and "<!date^" not in text
    # Fireworks scales it 3m after the request, at 247: never before the time the warning gave.
    assert warned_at + promise <= 67 + 180
    at(life, warned_at + promise)
    assert sim_dep(life, "report").replica_count == 1
    at(life, 67 + 181)
    assert sim_dep(life, "report").replica_count == 0
    # And there was time to act: the warning came a minute or more before it scaled.
    assert 67 + 180 - warned_at >= 60


def test_a_warning_never_promises_more_time_than_fireworks_gives(make_life):
    """For random windows, request times and scrape times: every scale-to-zero warning's due time,
    and the time its text gives ("in 1m"), are no later than when Fireworks scales it down."""
    life = make_life(env={"FWBOT_WARN_BEFORE_SCALE_TO_ZERO": "10m"})
    # Every example's offer and warnings go to the alert channel; spacing them a real second apart
    # (Slack's per-channel limit, tested elsewhere) would be most of this test's time.
    life.stack.services.poster.pacer.interval = 0.0
    ids = itertools.count()
    checked: list[int] = []

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        window=st.integers(20, 240),
        requests=st.lists(st.integers(0, 300), max_size=4),
        gaps=st.lists(st.integers(10, 70), min_size=2, max_size=8),
    )
    def check(window: int, requests: list[int], gaps: list[int]) -> None:
        dep_id = f"p{next(ids)}"
        start = elapsed(life)
        life.sdk().deployments.create(
            base_model=f"accounts/fireworks/models/{MODEL}", deployment_id=dep_id,
            accelerator_type="NVIDIA_H100_80GB", min_replica_count=0, max_replica_count=1,
            autoscaling_policy={"scale_to_zero_window": f"{window}s"})
        # The bot sees it READY the moment Fireworks makes it so: this test is about traffic.
        ready = start + 5
        at(life, ready)
        life.stack.sync()
        events = sorted([(ready + r, "request") for r in requests]
                        + [(ready + sum(gaps[:i + 1]), "scrape") for i in range(len(gaps))])
        sent: list[float] = []
        for t, kind in events:
            at(life, t)
            if kind == "request":
                if sim_dep(life, dep_id).replica_count == 0:
                    break  # scaled to zero: this idle stretch is over
                life.stack.services.gateway.complete(dep_id, "hi")
                sent.append(t)
                continue
            life.stack.sync()
            life.scraper.scrape()
            life.engine.sweep()
            # Fireworks scales it down a window after the last request (or after it came up);
            # requests after a warning only make that later.
            truth = max([ready, *sent]) + window
            for row in life.store.warnings(deployment_id=dep_id):
                if row.timer != "scale_to_zero" or row.sent_at != life.clock.now():
                    continue
                assert elapsed(life, parse_iso(row.due)) <= truth, (window, requests, gaps)
                promise = t + promised_s(life.ws.message(row.channel, row.ts))
                assert promise <= truth, (promise, truth, window, requests, gaps)
                checked.append(window)
        life.sdk().deployments.delete(dep_id, hard=True, ignore_checks=True)
        life.stack.sync()

    check()
    assert checked, "no example was warned at all"


def test_a_keep_warm_click_after_the_earliest_due_time_still_works_while_it_is_up(make_life):
    # Timed from the earliest the last request can have come, the due time may pass while the
    # deployment is still up: keeping it warm then still spares the cold start.
    life = make_life(env={"FWBOT_WARN_BEFORE_SCALE_TO_ZERO": "1m"})
    life.deploy("late", "--scale-to-zero-window 3m")
    life.tick(54)  # 60
    at(life, 65)
    life.request("late")
    life.tick(55)  # 120: seen; the earliest it can have come is 60, so due at 240
    life.tick(60)  # 180: warned
    [warning] = warnings_of(life, "late")
    at(life, 242)  # past the earliest due time; Fireworks scales it at 245
    assert sim_dep(life, "late").replica_count == 1
    life.click(warning, "lc_keep_warm_1h")
    life.ws.wait_for(lambda: sim_dep(life, "late").min_replica_count == 1)
    at(life, 300)
    assert sim_dep(life, "late").replica_count == 1


# -- the serving/idle split uses the same bound ---------------------------------------------------
def test_one_short_request_counts_as_one_scrape_interval_of_serving_placed_before_the_scrape(life):
    life.deploy("short", "--min-replica-count 1")
    for _ in range(3):
        life.tick(10)  # 16, 26, 36: no traffic
    at(life, 41)
    life.request("short")  # one request of a few milliseconds at 41
    at(life, 46)
    life.tick(0)
    for _ in range(11):
        life.tick(10)  # 46 … 156: the rate stays positive for the minute after it, then 0
    points = [(elapsed(life, parse_iso(p["at"])), p["serving"]) for p in life.store.traffic_history("short")]
    # Serving from the last scrape that saw nothing (36) to the first scrape that saw it (46):
    # the request lies in there, and nothing after the scrape is called serving.
    assert points[-2:] == [(36.0, 1), (46.0, 0)]
    cost = cost_data.costs_between(life.stack.services, life.t0, life.clock.now())["short"]
    assert cost.serving_gpu_seconds == 10  # one H100, 10 s (it was a minute and more before)
    assert cost.idle_gpu_seconds == cost.gpu_seconds - 10


# -- 6. deletions: one message each, saying who or what, when and why -----------------------------
def deletion_notes(life, dep_id: str) -> list:
    """Thread messages about a deletion (as posted, or as an Undelete click left them)."""
    return [m for m in life.thread(dep_id)
            if message_text(m).startswith(f"{dep_id} was deleted") or f"undeleted `{dep_id}`" in message_text(m)]


def test_fireworks_own_deletion_is_told_once_with_when_why_and_undelete(make_life):
    life = make_life(env={"FWBOT_WARN_BEFORE_DELETE": "1m"}, sim_config={"auto_delete_after": 120.0})
    life.deploy("plat", "--unused-auto-delete-duration 10m")  # Fireworks' 120 s comes first
    at(life, 64)
    life.tick(0)
    [warning] = warnings_of(life, "plat")
    assert "Fireworks will *delete*" in message_text(warning)
    for _ in range(4):
        life.tick(30)  # 94, 124 (deleted by Fireworks at 120), 154, 184
    edited = life.latest(warning)
    text = message_text(edited)
    head = edited.blocks[0]["text"]["text"]
    # No green tick and nothing struck out: it happened; the warning stays readable below.
    assert head.startswith(":wastebasket: Fireworks deleted it after ") and "without traffic" in head
    assert "(Europe/Berlin)" in head and ":white_check_mark:" not in text and "~" not in text
    assert 'Fireworks says "deleted automatically' in head
    assert "The warning was:" in text and "Fireworks will *delete* `plat`" in text
    assert action_ids(edited) == set()
    [note] = deletion_notes(life, "plat")
    note_text = message_text(note)
    assert "<@U_DEV> Fireworks deleted `plat` after " in note_text and "Mon 10:02 (Europe/Berlin)" in note_text
    assert "its own rule for unused deployments" in note_text and "soft delete" in note_text
    assert action_ids(note) == {"lc_undelete"}
    assert ("fwbot", "deletion seen") in [(r["actor"], r["action"]) for r in life.store.audit_trail("plat")]

    life.click(note, "lc_undelete")
    life.ws.wait_for(lambda: sim_dep(life, "plat").state not in ("DELETING", "DELETED"))
    life.ws.wait_for(lambda: "undeleted `plat`" in message_text(life.latest(note)))
    life.tick(30)
    life.tick(30)
    assert len(deletion_notes(life, "plat")) == 1


def test_a_deletion_outside_fwbot_is_told_once_and_its_undelete_goes_when_fireworks_purges_it(make_life):
    life = make_life(sim_config={"purge_after": 100.0})
    life.deploy("gone", "--min-replica-count 1")
    life.sdk().deployments.delete("gone", ignore_checks=True)  # firectl, the console, someone's script
    life.tick(10)
    life.tick(10)
    [note] = deletion_notes(life, "gone")
    text = message_text(note)
    assert "`gone` was deleted outside fwbot (with firectl, the console or the API" in text
    assert "(Europe/Berlin)" in text and action_ids(note) == {"lc_undelete"}
    life.tick(100)  # purged
    life.tick(10)
    purged = life.latest(note)
    assert "purged it at" in message_text(purged) and action_ids(purged) == set()
    assert len(deletion_notes(life, "gone")) == 1
    assert not thread_notes(life, "gone", "Fireworks no longer lists it")


def test_each_deletion_outside_fwbot_is_told_even_after_an_undelete_outside_it(life):
    life.deploy("again", "--min-replica-count 1")
    life.sdk().deployments.delete("again", ignore_checks=True)
    life.tick(10)
    life.sdk().deployments.undelete("again", body={})
    life.tick(10)
    life.tick(10)
    life.sdk().deployments.delete("again", ignore_checks=True)
    life.tick(10)
    life.tick(10)
    assert len(deletion_notes(life, "again")) == 2


def test_a_hard_delete_outside_fwbot_offers_no_undelete(life):
    life.deploy("hard", "--min-replica-count 1")
    life.sdk().deployments.delete("hard", hard=True, ignore_checks=True)
    life.tick(10)
    life.tick(10)
    [note] = deletion_notes(life, "hard")
    assert "deleted outside fwbot (for good" in message_text(note) and "cannot be undeleted" in message_text(note)
    assert action_ids(note) == set()


def test_delete_now_from_a_warning_is_one_message_naming_the_person(life):
    life.deploy("bye", "--scale-to-zero-window 30s")
    life.tick(16)  # 22: warned
    [warning] = warnings_of(life, "bye")
    life.click(warning, "lc_delete")
    life.ws.wait_for(lambda: deletion_notes(life, "bye"))
    life.ws.wait_for(lambda: "Deleted by @dev through fwbot" in message_text(life.latest(warning)))
    life.tick(10)
    life.tick(10)
    [note] = deletion_notes(life, "bye")
    assert "<@U_DEV> deleted `bye` through fwbot, at Mon 10:00 (Europe/Berlin)." in message_text(note)
    assert action_ids(note) == {"lc_undelete"}
    assert not thread_notes(life, "bye", "outside fwbot")


def test_fwbots_own_deletion_is_one_message_with_when(life):
    life.deploy("unused", "--min-replica-count 1 --unused-auto-delete-duration 60s")
    for _ in range(8):
        life.tick(10)  # warned at 36, deleted at 66
    [note] = deletion_notes(life, "unused")
    text = message_text(note)
    assert "fwbot deleted `unused` after 1m without traffic (its unused limit is 1m), at Mon 10:01" in text
    assert action_ids(note) == {"lc_undelete"}
    [warning] = warnings_of(life, "unused")
    assert message_text(life.latest(warning)).count(":wastebasket: fwbot deleted it after 1m without traffic") == 1
    assert not thread_notes(life, "unused", "outside fwbot")


def test_a_deletion_a_click_finds_first_is_still_told(make_life):
    life = make_life(env={"FWBOT_WARN_BEFORE_DELETE": "1m"}, sim_config={"auto_delete_after": 120.0})
    life.deploy("first", "--unused-auto-delete-duration 10m")
    at(life, 64)
    life.tick(0)
    [warning] = warnings_of(life, "first")
    at(life, 125)  # Fireworks deleted it at 120; no sync has run since
    life.click(warning, "lc_keep_warm_1h")
    assert "Nothing was done" in life.ephemeral("Nothing was done")
    life.ws.wait_for(lambda: deletion_notes(life, "first"))
    life.tick(10)
    assert len(deletion_notes(life, "first")) == 1
    assert "Fireworks deleted `first`" in message_text(deletion_notes(life, "first")[0])


# -- 10, 11. App Home and money: only actions that work, times that say what happens now ----------
def home_text(life, user: str = "U_DEV") -> tuple[str, list[str]]:
    life.ws.open_home(user)
    view = life.ws.wait_for(lambda: life.ws.home(user)).view
    ids = [e.get("action_id") for b in view["blocks"] if b.get("type") == "actions" for e in b["elements"]]
    return json.dumps(view), ids


def test_app_home_offers_keep_warm_only_where_it_can_work(life):
    # fwbot refuses to create one that can never serve; made elsewhere, it can still be adopted.
    life.sdk().deployments.create(
        base_model=f"accounts/fireworks/models/{MODEL}", deployment_id="pinned",
        accelerator_type="NVIDIA_H100_80GB", min_replica_count=0, max_replica_count=0)
    life.deploy("usable", "--scale-to-zero-window 30m")
    life.stack.fw("adopt pinned")
    life.ws.wait_for(lambda: life.store.deployment("pinned").owner == "U_DEV")
    life.ws.open_home("U_DEV")
    view = life.ws.wait_for(lambda: life.ws.home("U_DEV")).view
    rows = {}
    current = None
    for b in view["blocks"]:
        if b.get("type") == "section":
            text = b["text"]["text"]
            current = "pinned" if "`pinned`" in text else "usable" if "`usable`" in text else None
        elif b.get("type") == "actions" and current:
            rows[current] = {e["action_id"] for e in b["elements"]}
    assert "home_keep_warm" not in rows.get("pinned", set())
    assert "home_keep_warm" in rows["usable"]
    life.stack.fw("keep pinned 1h")
    assert "max replicas 0" in life.ephemeral("max replicas 0")


def test_a_timer_in_the_past_says_what_is_happening_now_and_the_floor_is_stated(life):
    life.deploy("floor", "--min-replica-count 2 --max-replica-count 3")
    life.tick(2 * H)  # 2h after it came up: the idle-paying report
    [report] = warnings_of(life, "floor")
    text = message_text(report)
    assert "with min replicas 2 it pays at least $16.00/h while idle" in text
    life.tick(79)
    home, _ = home_text(life)
    assert " ago" not in home
    assert "Now: idle but paying $16.00/h" in home and "its idle-paying report came due at" in home
    assert "$16.00/h (min 2: paid even while idle)" in home
    assert "Next: auto-delete in" in home
