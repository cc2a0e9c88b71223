"""One benchmark scenario per process, so each peak RSS is its own.

``python bench/scenarios.py NAME JSON-ARGS`` runs one scenario and prints one JSON line with
its figures; ``bench/run.py`` starts these and never imports fwbot itself for measuring.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The measured processes and the idle baseline import the same modules up front, so the
# baseline's RSS is the interpreter plus fwbot's imports and nothing else.
import bot.core.costs  # noqa: E402, F401
import bot.core.lifecycle  # noqa: E402, F401
import bot.services.tracking  # noqa: E402, F401
from bench.fleet import BOT_TOKEN, SIGNING_SECRET, T0, USERS, fleet  # noqa: E402
from bench.pg import database_setting  # noqa: E402
from bot.adapters.fireworks import FireworksGateway  # noqa: E402
from bot.adapters.metrics import Metrics
from bot.adapters.slack import ChannelPacer, Poster, make_web_client  # noqa: E402
from bot.app.wiring import build_outbox  # noqa: E402
from bot.core.clock import FakeClock, iso  # noqa: E402
from bot.core.settings import Settings  # noqa: E402
from bot.services.container import Services  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.store import Store  # noqa: E402


def peak_rss_kb() -> int:
    """VmHWM: the most resident memory this process has had."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def services_for(database: str, fireworks_url: str | None, slack_api: str | None, now: datetime) -> Services:
    """fwbot's services on ``database``: a SQLite file's path or a PostgreSQL URL."""
    settings = Settings(_env_file=None, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                        SLACK_API_URL=slack_api or "http://127.0.0.1:9/api/", FIREWORKS_API_KEY="sim-key",
                        FIREWORKS_ACCOUNT_ID="demo", FIREWORKS_BASE_URL=fireworks_url or "http://127.0.0.1:9",
                        **{database_setting(database): database})
    db = Database(database)
    db.migrate()
    gateway: Any = None
    if fireworks_url:
        gateway = FireworksGateway(api_key="sim-key", account_id="demo", base_url=fireworks_url)
    # The pacer spaces posts a second apart per channel, as it must for real Slack; that is
    # waiting, not work, and it is the same with or without any of the code measured here.
    poster = Poster(make_web_client(BOT_TOKEN, slack_api or "http://127.0.0.1:9/api/"), ChannelPacer(0.0))
    services = Services(settings=settings, store=Store(db), gateway=gateway, clock=FakeClock(now), poster=poster,
                        simulated=False)
    # The bot's own outbox (as create_bot wires it): every post of the sweep goes through it.
    services.outbox = build_outbox(services, Metrics())
    return services


# -- idle baseline --------------------------------------------------------------------------------
def idle(args: dict) -> dict:
    if args.get("engine") == "postgresql":
        # What a process on PostgreSQL loads besides: the driver and SQLAlchemy's dialect for it.
        import psycopg  # noqa: F401
        import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401
    return {"peak_rss_kb": peak_rss_kb()}


# -- sweep ----------------------------------------------------------------------------------------
def sweep_prep(args: dict) -> dict:
    """Untimed: the bot already knows the account and its traffic (a sweep ran before), then some
    news happens."""
    from bot.services.tracking import sync
    from bot.ui.kit import Message

    services = services_for(args["db"], args["fireworks"], args["slack_api"], T0)
    store = services.store
    deps = fleet(args["n"])
    threads = {}
    for dep in deps:
        if dep.news:
            posted = services.poster.post(dep.channel, Message(text=f"tracking {dep.id}"))
            threads[dep.id] = posted["ts"]
    with store.db.write():
        for dep in deps:
            store.claim_deployment(dep.id, f"accounts/demo/deployments/{dep.id}", owner=dep.owner,
                                   channel=dep.channel, now=T0, created_by_bot=True,
                                   thread_ts=threads.get(dep.id))
    started = time.perf_counter()
    first = sync(services)
    first_s = time.perf_counter() - started
    # A running bot has scraped the metrics and swept the timers before, too.
    from bot.services.lifecycle import LifecycleEngine, TrafficScraper

    scraper = TrafficScraper(services)
    scraper.scrape()
    LifecycleEngine(services, scraper=scraper).sweep()
    for dep in deps:
        if dep.news:
            services.gateway.scale_deployment(dep.id, 2)
    return {"first_sync_s": first_s, "seen": first.seen, "news": sum(d.news for d in deps)}


def sweep(args: dict) -> dict:
    """Timed: one reconcile pass, one metrics scrape and one lifecycle sweep, the bot's own jobs."""
    from bot.app.wiring import settle_heap
    from bot.services.lifecycle import LifecycleEngine, TrafficScraper
    from bot.services.tracking import sync

    now = T0 + timedelta(seconds=60)
    services = services_for(args["db"], args["fireworks"], args["slack_api"], now)
    store = services.store
    scraper = TrafficScraper(services)
    engine = LifecycleEngine(services, scraper=scraper)
    store.db.scalar("SELECT 1")  # open the connection outside the measurement
    settle_heap()  # as `fwbot run` does once it serves, before its jobs run
    rss_before = peak_rss_kb()
    cpu0, t0 = time.process_time(), time.perf_counter()
    report = sync(services)
    t1 = time.perf_counter()
    rates = scraper.scrape()
    t2 = time.perf_counter()
    swept = engine.sweep()
    t3 = time.perf_counter()
    cpu = time.process_time() - cpu0
    return {"wall_s": t3 - t0, "cpu_s": cpu, "sync_s": t1 - t0, "scrape_s": t2 - t1, "timers_s": t3 - t2,
            "seen": report.seen, "scraped": len(rates or {}), "warned": len(swept.warned), "posts": swept.posts,
            "peak_rss_kb": peak_rss_kb(), "rss_before_kb": rss_before}


def sweep_floor(args: dict) -> dict:
    """The floor the sweep is compared with: the same pages and scrape fetched and decoded, nothing else."""
    import httpx

    client = httpx.Client(base_url=args["fireworks"], headers={"Authorization": "Bearer sim-key"})
    t0 = time.perf_counter()
    token, seen = "", 0
    while True:
        params = {"pageSize": 200, "showDeleted": "true", **({"pageToken": token} if token else {})}
        page = json.loads(client.get("/v1/accounts/demo/deployments", params=params).content)
        seen += len(page.get("deployments") or [])
        token = page.get("nextPageToken")
        if not token:
            break
    with client.stream("GET", "/v1/accounts/demo/metrics") as resp:
        for _ in resp.iter_bytes():
            pass
    return {"wall_s": time.perf_counter() - t0, "seen": seen, "peak_rss_kb": peak_rss_kb()}


# -- cost summary ---------------------------------------------------------------------------------
REPLICA_CHANGES_PER_DAY = 6
TRAFFIC_CHANGES_PER_DAY = 12


def summary_prep(args: dict) -> dict:
    """``n`` deployments with ``days`` of replica and serving change points (untimed), then the
    first summary over them, timed apart: it integrates every day and fills the rollup cache,
    so :func:`summary` measures the steady state."""
    import random

    services = services_for(args["db"], None, None, T0)
    store, n, days = services.store, args["n"], args["days"]
    rng = random.Random(7)
    start = T0 - timedelta(days=days)
    replica_rows, traffic_rows = [], []
    for i, dep in enumerate(fleet(n)):
        t = start
        step = timedelta(days=1) / REPLICA_CHANGES_PER_DAY
        while t < T0:
            replica_rows.append({"id": dep.id, "at": iso(t + timedelta(seconds=rng.randrange(600))),
                                 "replicas": rng.randrange(0, 4),
                                 "type": "NVIDIA_H100_80GB" if i % 3 else "NVIDIA_A100_80GB",
                                 "count": 1 + i % 2, "single": int(i % 5 == 0)})
            t += step
        t = start
        step = timedelta(days=1) / TRAFFIC_CHANGES_PER_DAY
        serving = 0
        while t < T0:
            serving = 1 - serving
            traffic_rows.append({"id": dep.id, "at": iso(t + timedelta(seconds=rng.randrange(300))),
                                 "serving": serving})
            t += step
    with store.db.write():
        for dep in fleet(n):
            store.claim_deployment(dep.id, f"accounts/demo/deployments/{dep.id}", owner=dep.owner,
                                   channel=dep.channel, now=start, created_by_bot=True)
        store.db.executemany(
            """INSERT INTO replica_history (deployment_id, at, replicas, accelerator_type, accelerator_count,
                                            single_region)
               VALUES (:id, :at, :replicas, :type, :count, :single)
               ON CONFLICT (deployment_id, at) DO UPDATE SET replicas = excluded.replicas,
                 accelerator_type = excluded.accelerator_type, accelerator_count = excluded.accelerator_count,
                 single_region = excluded.single_region""", replica_rows)
        store.db.executemany(
            """INSERT INTO traffic_history (deployment_id, at, serving) VALUES (:id, :at, :serving)
               ON CONFLICT (deployment_id, at) DO UPDATE SET serving = excluded.serving""", traffic_rows)
    points = {"replica_points": len(replica_rows), "traffic_points": len(traffic_rows)}
    del replica_rows, traffic_rows
    store.db.close()
    # The first summary, with a connection of its own (the history is on disk, not in its cache).
    cold = timed_summary(args)
    return {**points, "cold_wall_s": cold["wall_s"], "cold_rollups_before": cold["rollups_before"],
            "rollups_after": cold["rollups_after"]}


def summary_floor(args: dict) -> dict:
    """The floor the summary is compared with: reading the same history rows from the database."""
    services = services_for(args["db"], None, None, T0)
    store = services.store
    store.db.scalar("SELECT 1")
    t0 = time.perf_counter()
    rows = len(store.replica_history(since=T0 - timedelta(days=args["days"]))) + len(store.traffic_history())
    return {"wall_s": time.perf_counter() - t0, "rows": rows, "peak_rss_kb": peak_rss_kb()}


def timed_summary(args: dict) -> dict:
    """The month-to-date cost summary by owner, from the stored history: the timed part."""
    from bot.core import costs
    from bot.services.costs import costs_between, deployment_meta

    services = services_for(args["db"], None, None, T0)
    store = services.store
    rollups_before = store.db.scalar("SELECT count(*) FROM cost_rollups")  # also opens the connection
    start, end = T0 - timedelta(days=args["days"]), T0
    t0 = time.perf_counter()
    results = costs_between(services, start, end)
    meta = deployment_meta(store)
    report = costs.cost_report(results, meta, "owner", label="last 30 days")
    wall = time.perf_counter() - t0
    assert len(report.groups) == len({d.owner for d in fleet(args["n"])} & set(USERS))
    return {"wall_s": wall, "deployments": len(results), "rollups_before": rollups_before,
            "rollups_after": store.db.scalar("SELECT count(*) FROM cost_rollups")}


def summary(args: dict) -> dict:
    """Timed: the summary in the steady state, after :func:`summary_prep` has run the first one
    (whole past days come from the rollup cache; the partial first day and today are integrated)."""
    return {**timed_summary(args), "peak_rss_kb": peak_rss_kb()}


SCENARIOS = {"idle": idle, "sweep-prep": sweep_prep, "sweep": sweep, "sweep-floor": sweep_floor,
             "summary-prep": summary_prep, "summary": summary, "summary-floor": summary_floor}


def main() -> int:
    name, args = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    if args.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
        result = SCENARIOS[name](args)
        profiler.stop()
        Path(args["profile"]).write_text(profiler.output_text(unicode=False, color=False))
    else:
        result = SCENARIOS[name](args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
