"""Cached daily rollups: ``costs_between`` against the reference integration over every raw point.

Real SQLite files; the history is written the way any writer would (the Store, or plain SQL
from another connection), and the figures must equal :func:`bot.core.costs.integrate` over all the
stored points exactly, whether the days came from the cache or were integrated afresh.
"""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.clock import FakeClock, iso
from bot.core.costs import DayCost, Pricer, _day_cost, _figures, _split_day_cost, integrate, local_midnight
from bot.core.settings import Settings
from bot.services import costs as cost_data
from bot.services.container import Services
from storage.db import Database
from storage.store import Store

H100, A100, B200 = "NVIDIA_H100_80GB", "NVIDIA_A100_80GB", "NVIDIA_B200_180GB"  # A100: no list price
UTC_DAY = datetime(2026, 11, 1, tzinfo=UTC)


def services(path: Path, now: datetime, tz: str = "UTC") -> Services:
    db = Database(path / "fwbot.db")
    db.migrate()
    env = {"FWBOT_TIMEZONE": tz, "FWBOT_DB": str(path / "fwbot.db")}
    return Services(settings=Settings(_env_file=None, **env), store=Store(db), gateway=None,  # type: ignore[arg-type]
                    clock=FakeClock(now), poster=None, simulated=False)  # type: ignore[arg-type]


def reference(s: Services, start: datetime, end: datetime):
    return integrate(s.store.replica_history(), s.store.traffic_history(), start, end,
                     prices=s.prices, tz=s.settings.tz, now=s.clock.now())


def assert_same(s: Services, start: datetime, end: datetime) -> dict:
    got, want = cost_data.costs_between(s, start, end), reference(s, start, end)
    assert list(got) == list(want)  # the same deployments, in the same order
    for dep, w in want.items():
        g = got[dep]
        assert (g.gpu_seconds, g.serving_gpu_seconds, g.idle_gpu_seconds) == (
            w.gpu_seconds, w.serving_gpu_seconds, w.idle_gpu_seconds), dep
        assert [d.day for d in g.days] == [d.day for d in w.days], dep
        for gd, wd in zip(g.days, w.days, strict=True):
            assert gd == wd, (dep, wd.day)
        assert g == w, dep  # every figure, dollars included, to the last bit
    return got


def rollup_rows(s: Services, **where) -> list[dict]:
    sql = "SELECT * FROM cost_rollups"
    if where:
        sql += " WHERE " + " AND ".join(f"{k} = :{k}" for k in where)
    return s.store.db.query(sql + " ORDER BY tz, deployment_id, day", where)


def days_cached(s: Services, dep: str, tz: str = "UTC") -> list[str]:
    return sorted({r["day"] for r in rollup_rows(s, deployment_id=dep, tz=tz)})


def assert_dropped_from(s: Services, dep: str, at: str, before: list[str]) -> None:
    """The UTC days of ``dep`` ending after ``at`` are gone, the ones ending by then are kept."""
    def ends(day: str) -> str:
        return iso(local_midnight(date.fromisoformat(day) + timedelta(days=1), UTC))
    assert days_cached(s, dep) == [d for d in before if ends(d) <= at]


def write(s: Services, replicas=(), traffic=()) -> None:
    """History rows as any writer might store them: plain SQL, an upsert."""
    db = s.store.db
    with db.write():
        db.executemany(REPLACE_REPLICA_POINT,
                       [{"d": d, "at": iso(t), "r": r, "a": a, "c": c, "s": int(sr)} for d, t, r, a, c, sr in replicas])
        db.executemany(REPLACE_SERVING_POINT, [{"d": d, "at": iso(t), "s": int(v)} for d, t, v in traffic])


REPLACE_REPLICA_POINT = """
    INSERT INTO replica_history (deployment_id, at, replicas, accelerator_type, accelerator_count, single_region)
    VALUES (:d, :at, :r, :a, :c, :s)
    ON CONFLICT (deployment_id, at) DO UPDATE SET replicas = excluded.replicas,
        accelerator_type = excluded.accelerator_type, accelerator_count = excluded.accelerator_count,
        single_region = excluded.single_region"""
REPLACE_SERVING_POINT = """INSERT INTO traffic_history (deployment_id, at, serving) VALUES (:d, :at, :s)
    ON CONFLICT (deployment_id, at) DO UPDATE SET serving = excluded.serving"""


def random_history(rng: random.Random, first: datetime, last: datetime, deps=("a", "b", "c"), *,
                   special=()) -> tuple[list, list]:
    """A few change points a day per deployment, at random microseconds and at ``special``
    instants (midnights, window edges), with unpriced, unknown and single-region shapes."""
    span_us = int((last - first) / timedelta(microseconds=1))
    replicas, traffic = [], []
    for i, dep in enumerate(deps):
        begin = first + timedelta(hours=rng.randrange(0, 30)) if i else first
        times = {begin} | {first + timedelta(microseconds=rng.randrange(span_us)) for _ in range(rng.randrange(4, 25))}
        times |= {t for t in special if rng.random() < 0.5}
        for t in sorted(t for t in times if t >= begin):
            acc = rng.choice([H100, H100, B200, A100, None])
            replicas.append((dep, t, rng.choice([0, 0, 1, 2, 3]), acc, rng.choice([0, 1, 2, 8]), rng.random() < 0.2))
        for t in sorted({first + timedelta(microseconds=rng.randrange(span_us)) for _ in range(rng.randrange(0, 30))}
                        | {t for t in special if rng.random() < 0.3}):
            traffic.append((dep, t, rng.random() < 0.5))
    return replicas, traffic


def midnights(first: date, n: int, tz) -> list[datetime]:
    return [local_midnight(first + timedelta(days=i), tz) for i in range(n)]


# -- the cache is filled, read and kept right -----------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_cold_then_warm_equal_the_reference_and_the_warm_call_reads_the_cache(tmp_path, seed):
    rng = random.Random(seed)
    now = UTC_DAY + timedelta(days=9, hours=13, minutes=7)
    s = services(tmp_path, now)
    start = UTC_DAY
    write(s, *random_history(rng, start - timedelta(days=2), now + timedelta(hours=5),
                             special=midnights(start.date(), 11, UTC)))
    assert assert_same(s, start, now + timedelta(days=3))  # cold: today's partial day included
    cached = rollup_rows(s)
    assert cached and {r["tz"] for r in cached} == {"UTC"}
    # Only whole days that are over: 1 Nov .. 9 Nov, never today (10 Nov).
    assert {r["day"] for r in cached} <= {f"2026-11-{d:02d}" for d in range(1, 10)}
    assert "2026-11-10" not in {r["day"] for r in cached}
    assert_same(s, start, now + timedelta(days=3))  # warm
    assert rollup_rows(s) == cached  # nothing rewritten
    # The warm call took those days from the cache: doctor one and the figures follow it.
    doctored = s.store.db.execute("UPDATE cost_rollups SET idle_us = idle_us + 3600000000 "
                                  "WHERE deployment_id = 'a' AND day = '2026-11-03'").rowcount
    assert doctored >= 1
    assert (cost_data.costs_between(s, start, now)["a"].gpu_seconds
            == reference(s, start, now)["a"].gpu_seconds + 3600 * doctored)


def test_a_day_with_nothing_running_is_cached_as_a_marker(tmp_path):
    now = UTC_DAY + timedelta(days=3, hours=2)
    s = services(tmp_path, now)
    write(s, [("d", UTC_DAY + timedelta(hours=1), 1, H100, 1, False),
              ("d", UTC_DAY + timedelta(hours=2), 0, H100, 1, False)])
    assert_same(s, UTC_DAY, now)
    rows = rollup_rows(s, deployment_id="d")
    assert [(r["day"], r["serving_us"], r["idle_us"]) for r in rows] == [
        ("2026-11-01", 0, 3600 * 10**6), ("2026-11-02", 0, 0), ("2026-11-03", 0, 0)]
    assert_same(s, UTC_DAY, now)


def test_a_late_point_in_a_past_day_drops_that_day_and_every_later_one(tmp_path):
    now = UTC_DAY + timedelta(days=6, hours=10)
    s = services(tmp_path, now)
    rng = random.Random(11)
    write(s, *random_history(rng, UTC_DAY - timedelta(days=1), now, deps=("a", "b")))
    before = assert_same(s, UTC_DAY, now)
    before_b = rollup_rows(s, deployment_id="b")
    assert days_cached(s, "a") == [f"2026-11-0{d}" for d in range(1, 7)]
    # Through the Store, as the reconcile loop writes: a point in the middle of 3 Nov.
    late = UTC_DAY + timedelta(days=2, hours=15, microseconds=17)
    assert s.store.record_replicas("a", late, 7, B200, 2, single_region=True)
    assert days_cached(s, "a") == ["2026-11-01", "2026-11-02"]
    assert rollup_rows(s, deployment_id="b") == before_b  # another deployment keeps its days
    got = assert_same(s, UTC_DAY, now)
    assert got["a"].days[:2] == before["a"].days[:2] and got["a"].days[2] != before["a"].days[2]
    assert got["a"].days[2].usd > before["a"].days[2].usd  # 7 × 2 B200s, single region, from 15:00
    assert days_cached(s, "a") == [f"2026-11-0{d}" for d in range(1, 7)]  # filled again
    assert_same(s, UTC_DAY, now)


def test_a_point_exactly_at_a_day_end_keeps_that_day(tmp_path):
    now = UTC_DAY + timedelta(days=4)
    s = services(tmp_path, now)
    write(s, [("d", UTC_DAY - timedelta(hours=3), 1, H100, 1, False)], [("d", UTC_DAY, True)])
    assert_same(s, UTC_DAY, now)
    write(s, [("d", UTC_DAY + timedelta(days=2), 3, H100, 1, False)])  # the midnight 2 → 3 Nov
    assert days_cached(s, "d") == ["2026-11-01", "2026-11-02"]
    assert_same(s, UTC_DAY, now)


def test_a_point_a_hair_before_a_whole_second_counts_to_the_microsecond(tmp_path):
    # SQLite keeps times in milliseconds: read whole, …:53.999950 would round to 54 s.
    now = UTC_DAY + timedelta(days=2)
    s = services(tmp_path, now)
    write(s, [("d", UTC_DAY, 1, H100, 1, True),
              ("d", UTC_DAY + timedelta(hours=2, seconds=53, microseconds=999_950), 1, H100, 1, False),
              ("d", UTC_DAY + timedelta(hours=5, seconds=7, microseconds=999_500), 0, H100, 1, False)])
    got = assert_same(s, UTC_DAY, now)["d"]
    assert got.gpu_seconds == 5 * 3600 + 7.9995
    assert got.known_usd == pytest.approx((7200 + 53.99995) / 3600 * 12 + (3 * 3600 + 7.9995 - 53.99995) / 3600 * 8)


def test_update_and_delete_of_history_rows_drop_the_days_they_change(tmp_path):
    now = UTC_DAY + timedelta(days=8, hours=1)
    s = services(tmp_path, now)
    write(s, *random_history(random.Random(5), UTC_DAY - timedelta(days=1), now, deps=("a", "b", "c")))
    assert_same(s, UTC_DAY, now)
    before = {dep: days_cached(s, dep) for dep in "abc"}
    assert all(len(days) >= 6 for days in before.values())
    db = s.store.db
    with db.write():
        at = db.scalar("SELECT at FROM replica_history WHERE deployment_id = 'a' AND at >= :t "
                       "ORDER BY at LIMIT 1", {"t": iso(UTC_DAY + timedelta(days=4))})
        db.execute("UPDATE replica_history SET replicas = replicas + 5 WHERE deployment_id = 'a' AND at = :at",
                   {"at": at})
    assert_dropped_from(s, "a", at, before["a"])
    assert days_cached(s, "b") == before["b"]
    assert_same(s, UTC_DAY, now)
    with db.write():
        at = db.scalar("SELECT at FROM traffic_history WHERE deployment_id = 'b' AND at >= :t "
                       "ORDER BY at LIMIT 1", {"t": iso(UTC_DAY + timedelta(days=2))})
        db.execute("DELETE FROM traffic_history WHERE deployment_id = 'b' AND at = :at", {"at": at})
    assert_dropped_from(s, "b", at, before["b"])
    assert_same(s, UTC_DAY, now)
    # An update that moves a point to another deployment and another time drops both.
    with db.write():
        at = db.scalar("SELECT at FROM replica_history WHERE deployment_id = 'c' AND at >= :t "
                       "ORDER BY at LIMIT 1", {"t": iso(UTC_DAY + timedelta(days=5))})
        moved_to = iso(UTC_DAY + timedelta(days=1, hours=1))
        db.execute("UPDATE replica_history SET deployment_id = 'b', at = :to WHERE deployment_id = 'c' AND at = :at",
                   {"to": moved_to, "at": at})
    assert_dropped_from(s, "c", at, before["c"])
    assert_dropped_from(s, "b", moved_to, before["b"])
    assert_same(s, UTC_DAY, now)


# -- timezones, windows, partial days ------------------------------------------------------------
@pytest.mark.parametrize("first_day", [date(2026, 10, 28), date(2026, 3, 5)])
def test_new_york_days_across_a_dst_change(tmp_path, first_day):
    ny = ZoneInfo("America/New_York")
    start = local_midnight(first_day, ny)
    now = local_midnight(first_day + timedelta(days=7), ny) + timedelta(hours=5, minutes=30)
    s = services(tmp_path, now, tz="America/New_York")
    write(s, *random_history(random.Random(first_day.toordinal()), start - timedelta(days=1), now,
                             special=midnights(first_day, 8, ny)))
    got = assert_same(s, start, now)
    lengths = {(local_midnight(d + timedelta(days=1), ny) - local_midnight(d, ny)) / timedelta(hours=1)
               for d in (day.day for day in got["a"].days)}
    assert lengths == {23.0, 24.0} or lengths == {24.0, 25.0}  # one day of the window is not 24 h
    days = {r["day"] for r in rollup_rows(s, tz="America/New_York")}
    assert days == {(first_day + timedelta(days=i)).isoformat() for i in range(7)}
    ends = {r["day"]: r["day_end"] for r in rollup_rows(s, tz="America/New_York")}
    assert all(ends[d] == iso(local_midnight(date.fromisoformat(d) + timedelta(days=1), ny)) for d in ends)
    assert_same(s, start, now)
    # The same history by UTC days is cached apart and equally right.
    utc = services(tmp_path, now, tz="UTC")
    assert_same(utc, start, now)
    assert {r["tz"] for r in rollup_rows(utc)} == {"UTC", "America/New_York"}
    assert_same(s, start, now)


def test_windows_that_start_and_end_mid_day_reuse_what_overlaps(tmp_path):
    now = UTC_DAY + timedelta(days=12, hours=16, minutes=45)
    s = services(tmp_path, now)
    write(s, *random_history(random.Random(3), UTC_DAY - timedelta(days=3), now + timedelta(days=1),
                             deps=("a", "b", "c", "d"), special=midnights(UTC_DAY.date(), 13, UTC)))
    windows = [
        (UTC_DAY + timedelta(days=2, hours=7), UTC_DAY + timedelta(days=6, hours=3)),  # mid-day to mid-day
        (UTC_DAY + timedelta(hours=23, minutes=59), now + timedelta(hours=2)),  # includes today so far
        (UTC_DAY - timedelta(days=2), UTC_DAY + timedelta(days=9)),  # whole days, some before history
        (UTC_DAY + timedelta(days=4, hours=1), UTC_DAY + timedelta(days=4, hours=2)),  # inside one day
        (UTC_DAY + timedelta(days=5), UTC_DAY + timedelta(days=5)),  # empty
        (now - timedelta(hours=1), now + timedelta(days=2)),  # only today
        (now + timedelta(hours=1), now + timedelta(days=1)),  # after now: nothing yet
        (UTC_DAY + timedelta(days=1), now),
    ]
    for start, end in windows + windows[::-1]:
        assert_same(s, start, end)
    # Two days of one deployment are missing: the rest still comes from the cache.
    s.store.db.execute("DELETE FROM cost_rollups WHERE deployment_id = 'c' AND day IN ('2026-11-04', '2026-11-08')")
    for start, end in windows:
        assert_same(s, start, end)


@pytest.mark.parametrize(("hour", "read"), [(5, "before the window"), (19, "the window's part")])
def test_a_window_starting_mid_day_caches_that_whole_day_and_reads_the_shorter_part(tmp_path, hour, read):
    now = UTC_DAY + timedelta(days=6, hours=12)
    s = services(tmp_path, now)
    write(s, *random_history(random.Random(hour), UTC_DAY - timedelta(days=2), now,
                             special=midnights(UTC_DAY.date(), 7, UTC)))
    start = UTC_DAY + timedelta(days=1, hours=hour, minutes=17)
    assert_same(s, start, now)
    assert days_cached(s, "a")[0] == "2026-11-02"  # the window's first day, whole
    assert_same(s, start, now)
    # Doctor the cached 2 Nov: the window's part of it follows only when it is derived from it.
    doctored = s.store.db.execute("UPDATE cost_rollups SET idle_us = idle_us + 3600000000 "
                                  "WHERE deployment_id = 'a' AND day = '2026-11-02'").rowcount
    got, want = cost_data.costs_between(s, start, now)["a"], reference(s, start, now)["a"]
    extra = 3600 * doctored if read == "before the window" else 0
    assert got.days[0].gpu_seconds == want.days[0].gpu_seconds + extra
    assert got.days[1:] == want.days[1:]


def test_the_day_before_cached_days_is_cached_whole_when_a_window_starts_in_it(tmp_path):
    now = UTC_DAY + timedelta(days=7, hours=8)
    s = services(tmp_path, now)
    write(s, *random_history(random.Random(17), UTC_DAY - timedelta(days=1), now, deps=("a", "b")))
    assert_same(s, UTC_DAY + timedelta(days=3), now)  # caches 4 Nov on
    assert days_cached(s, "a")[0] == "2026-11-04"
    assert_same(s, UTC_DAY + timedelta(days=2, hours=5), now)  # 3 Nov is read whole and cached
    assert days_cached(s, "a")[0] == "2026-11-03"
    for hour in (4, 6, 20, 23):  # then the window's part of it is derived from it
        assert_same(s, UTC_DAY + timedelta(days=2, hours=hour, seconds=1), now)


def test_a_deployment_that_starts_mid_window_needs_no_rollups_before_it_started(tmp_path):
    now = UTC_DAY + timedelta(days=10, hours=4)
    s = services(tmp_path, now)
    write(s, [("old", UTC_DAY - timedelta(days=5), 1, H100, 1, False),
              ("new", UTC_DAY + timedelta(days=6, hours=20), 2, H100, 1, False),
              ("later", now + timedelta(days=3), 1, H100, 1, False)],
          [("new", UTC_DAY + timedelta(days=7, hours=1), True)])
    got = assert_same(s, UTC_DAY, now)
    assert got["new"].gpu_seconds == 2 * (4 + 3 * 24 + 4) * 3600
    assert got["later"].gpu_seconds == 0 and len(got["later"].days) == 11  # listed, as the reference does
    assert days_cached(s, "new") == ["2026-11-07", "2026-11-08", "2026-11-09", "2026-11-10"]
    assert days_cached(s, "later") == []
    assert len(days_cached(s, "old")) == 10
    assert_same(s, UTC_DAY, now)
    # An earlier first point makes the days before 7 Nov count: they are computed, not taken as empty.
    s.store.record_replicas("new", UTC_DAY + timedelta(days=2, hours=12), 1, A100, 1)
    got = assert_same(s, UTC_DAY, now)
    assert got["new"].unpriced_gpu_seconds > 0 and got["new"].usd is None
    assert days_cached(s, "new")[0] == "2026-11-03"


def test_inside_an_outer_write_transaction_it_reads_and_caches_in_it(tmp_path):
    now = UTC_DAY + timedelta(days=3, hours=3)
    s = services(tmp_path, now)
    write(s, *random_history(random.Random(2), UTC_DAY, now))
    with s.store.db.write():
        got = cost_data.costs_between(s, UTC_DAY, now)
    assert got == reference(s, UTC_DAY, now)
    assert days_cached(s, "a") == ["2026-11-01", "2026-11-02", "2026-11-03"]


# -- a change between the read and the write ------------------------------------------------------
def test_nothing_is_cached_when_the_history_changed_after_the_read(tmp_path, monkeypatch):
    now = UTC_DAY + timedelta(days=5, hours=6)
    s = services(tmp_path, now)
    write(s, *random_history(random.Random(8), UTC_DAY - timedelta(days=1), now))
    expected = reference(s, UTC_DAY, now)  # what the read will see

    def another_writer(_services):
        # Another process stores a late point between our read and our write.
        other = Database(tmp_path / "fwbot.db")
        other.execute(REPLACE_REPLICA_POINT, {"d": "a", "at": iso(UTC_DAY + timedelta(days=1, hours=3)), "r": 7,
                                              "a": H100, "c": 1, "s": 0})
        other.close()

    monkeypatch.setattr(cost_data, "_after_read", another_writer)
    got = cost_data.costs_between(s, UTC_DAY, now)
    assert got == expected  # right as of its snapshot
    assert rollup_rows(s) == []  # but what it computed may be stale now: not cached
    monkeypatch.setattr(cost_data, "_after_read", lambda _services: None)
    after = assert_same(s, UTC_DAY, now)
    assert after["a"] != expected["a"] and rollup_rows(s)
    assert_same(s, UTC_DAY, now)


# -- the fast builders are the dataclass --------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    acc=st.sampled_from([H100, A100, B200, None, "h100"]),
    single=st.booleans(),
    serving_us=st.integers(0, 10**13),
    idle_us=st.integers(0, 10**13),
    other=st.one_of(st.none(), st.tuples(st.sampled_from([H100, A100, None]), st.booleans(), st.booleans(),
                                         st.integers(1, 10**12))),
)
def test_fast_day_builders_equal_the_dataclass(acc, single, serving_us, idle_us, other):
    prices = {H100: 8.0, B200: 13.0}
    day = date(2026, 11, 1)
    tally = {k: v for k, v in {(acc, single, True): serving_us, (acc, single, False): idle_us}.items() if v}
    whole: dict = {}
    split = _split_day_cost(day, (acc, single, serving_us, idle_us), Pricer(prices), whole)
    assert split == DayCost(day=day, **_figures(tally, prices)) == _day_cost(day, tally, Pricer(prices))
    assert whole == tally
    if other is not None:
        o_acc, o_single, o_serving, o_us = other
        tally[(o_acc, o_single, o_serving)] = tally.get((o_acc, o_single, o_serving), 0) + o_us
        assert _day_cost(day, tally, Pricer(prices)) == DayCost(day=day, **_figures(tally, prices))
        # The dollars do not depend on the order the keys were added in.
        backwards = dict(reversed(list(tally.items())))
        assert _day_cost(day, backwards, Pricer(prices)) == _day_cost(day, tally, Pricer(prices))


# -- any history, any window, any change ---------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    tz=st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
    start_h=st.integers(-30, 200),
    length_h=st.integers(0, 260),
    now_h=st.integers(0, 240),
    change_h=st.integers(-24, 240),
    change=st.sampled_from(["insert", "update", "delete", "traffic"]),
)
def test_any_history_any_window_any_change(seed, tz, start_h, length_h, now_h, change_h, change):
    rng = random.Random(seed)
    base = datetime(2026, 10, 29, tzinfo=UTC)  # New York's DST ends on 1 Nov 2026
    now = base + timedelta(hours=now_h, minutes=rng.randrange(60))
    start = base + timedelta(hours=start_h)
    end = start + timedelta(hours=length_h, microseconds=rng.choice([0, 1, 999_999]))
    with tempfile.TemporaryDirectory() as tmp:
        s = services(Path(tmp), now, tz=tz)
        zone = s.settings.tz
        write(s, *random_history(rng, base - timedelta(days=2), base + timedelta(days=11),
                                 special=[start, end, now, *midnights((base - timedelta(days=1)).date(), 13, zone)]))
        assert_same(s, start, end)
        assert_same(s, start, end)
        when = iso(base + timedelta(hours=change_h, microseconds=rng.randrange(3600 * 10**6)))
        db = s.store.db
        with db.write():
            if change == "insert":
                db.execute(REPLACE_REPLICA_POINT, {"d": "b", "at": when, "r": 3, "a": H100, "c": 2, "s": 0})
            elif change == "traffic":
                db.execute(REPLACE_SERVING_POINT, {"d": "a", "at": when, "s": 1})
            else:
                row = db.one("SELECT deployment_id, at FROM replica_history WHERE at >= :t ORDER BY at LIMIT 1",
                             {"t": when})
                if row is not None and change == "update":
                    db.execute("UPDATE replica_history SET replicas = 2 - replicas % 2, accelerator_type = :type "
                               "WHERE deployment_id = :d AND at = :at", {"type": B200, "d": row["deployment_id"],
                                                                         "at": row["at"]})
                elif row is not None:
                    db.execute("DELETE FROM replica_history WHERE deployment_id = :d AND at = :at",
                               {"d": row["deployment_id"], "at": row["at"]})
        assert_same(s, start, end)
        s.clock.set(now + timedelta(days=1, hours=rng.randrange(48)))  # more days close
        assert_same(s, start, end)
        assert_same(s, start - timedelta(days=1), end + timedelta(days=1))
        s.store.db.close()
