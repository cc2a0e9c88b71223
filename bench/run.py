"""fwbot's benchmarks: ``python bench/run.py [--quick]`` prints one table (see bench/README.md).

Every figure has a baseline measured in the same run on the same machine, and the ratio is
what to read: these machines are noisy. ``--quick`` runs everything small, to show the
benchmark works; it never fails on a figure, only when the benchmark itself breaks.
``--engines`` picks the databases fwbot stores in (SQLite and PostgreSQL, each row per engine).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg import PostgresServer  # noqa: E402
from sims.slack.signing import signed_headers  # noqa: E402

PY = sys.executable
FORM = "application/x-www-form-urlencoded"
DEPLOY = "deploy llama-v3p1-8b-instruct --min-replica-count 0 --max-replica-count 1 --accelerator-type h100"


@dataclass
class Sizes:
    senders: int
    each: int
    rounds: int
    sweep: tuple[int, ...]
    summary_deployments: int
    summary_days: int


FULL = Sizes(senders=50, each=8, rounds=5, sweep=(100, 1000, 10000), summary_deployments=1000, summary_days=30)
QUICK = Sizes(senders=10, each=2, rounds=1, sweep=(100,), summary_deployments=50, summary_days=3)
ENGINES = ("sqlite", "postgresql")


@dataclass
class Engine:
    """A database fwbot stores in: SQLite files, or databases on a PostgreSQL server."""

    name: str
    server: PostgresServer | None = None

    @property
    def tag(self) -> str:
        return f"[{self.name}]"

    def database(self, tmp: str) -> str:
        """A fresh, empty database: a file in ``tmp``, or a new database on the server (its URL)."""
        return self.server.fresh_database() if self.server else f"{tmp}/fwbot.db"


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, what: str, fwbot: str, baseline: str, ratio: str, target: str) -> None:
        self.rows.append((what, fwbot, baseline, ratio, target))
        print(f"  {what}: {fwbot} (baseline {baseline}, {ratio}) {target}", file=sys.stderr, flush=True)

    def render(self) -> str:
        head = ("measure", "fwbot", "baseline", "ratio", "target")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(5)]
        line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([line(head), sep, *(line(r) for r in self.rows)])


def verdict(ok: bool, quick: bool) -> str:
    return "(quick: not judged)" if quick else ("met" if ok else "MISSED")


# -- helper processes ---------------------------------------------------------------------------
class Child:
    """A helper process spoken to one JSON line at a time."""

    def __init__(self, *argv: str) -> None:
        self.proc = subprocess.Popen([PY, *argv], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.hello = self.read()

    def read(self) -> dict:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError(f"{self.proc.args} stopped (exit {self.proc.poll()})")
        return json.loads(line)

    def ask(self, cmd: str, **args) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        try:
            if self.proc.poll() is None and self.proc.stdin:
                self.proc.stdin.write(json.dumps({"cmd": "stop"}) + "\n")
                self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def scenario(name: str, **args) -> dict:
    """Run one scenario in a fresh process and return its figures."""
    out = subprocess.run([PY, "bench/scenarios.py", name, json.dumps(args)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"scenario {name} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- 1. ack latency -----------------------------------------------------------------------------
def send_all(url: str, bodies: list[list[str]], secret: str) -> tuple[list[float], int]:
    """Every sender posts its bodies one after another, all senders at once; seconds to each ack."""
    parts = urlsplit(url)
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    start = threading.Barrier(len(bodies))
    reasons: dict[str, int] = {}

    def sender(mine: list[str]) -> None:
        nonlocal failures
        start.wait()
        for body in mine:
            data = body.encode()
            headers = {**signed_headers(secret, data, FORM), "Connection": "close"}
            began = time.perf_counter()
            try:
                # A new connection per request and no keep-alive, as Slack sends them.
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                conn.request("POST", parts.path, body=data, headers=headers)
                resp = conn.getresponse()
                resp.read()
                conn.close()
                ok = resp.status == 200
                why = f"HTTP {resp.status}"
            except OSError as e:
                ok, why = False, type(e).__name__
            took = time.perf_counter() - began
            with lock:
                latencies.append(took)
                failures += not ok
                if not ok:
                    reasons[why] = reasons.get(why, 0) + 1

    threads = [threading.Thread(target=sender, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if reasons:
        print(f"  {url}: {reasons}", file=sys.stderr)
    return latencies, failures


def quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def ack_latency(table: Table, sizes: Sizes, quick: bool, engines: list[Engine]) -> None:
    from tests.harness import SIGNING_SECRET

    children: list[Child] = []
    tmp = tempfile.TemporaryDirectory(prefix="fwbot-ack-")
    try:
        world = Child("bench/ack_servers.py", "outside")
        children.append(world)
        # One fwbot per engine, all against the same outside world and timed in the same rounds
        # as the one bare app, so every engine's ratio has the same baseline.
        apps = [("bare", Child("bench/ack_servers.py", "bare", world.hello["slack_api"]))]
        children.append(apps[0][1])
        for engine in engines:
            apps.append((engine.name, Child("bench/ack_servers.py", "fwbot", world.hello["fireworks"],
                                            world.hello["slack_api"], engine.database(tmp.name))))
            children.append(apps[-1][1])
        for label, text in (("/fw list", "list all"), ("/fw deploy", DEPLOY)):
            for _, child in apps:
                # Warm up with the command measured: the first requests pay for imports, parser
                # tables and connection set-up in the app, once per process, not per request.
                send_all(child.hello["url"], world.ask("bodies", text=text, senders=2, each=2)["bodies"],
                         SIGNING_SECRET)
                child.ask("drain")
            latencies: dict[str, list[float]] = {name: [] for name, _ in apps}
            failures = dict.fromkeys(latencies, 0)
            n = sizes.senders * sizes.each
            # The apps take turns, burst by burst, and each app's figures pool its bursts: a
            # moment when the machine is busy falls on both apps, not on one app's only burst.
            for _ in range(sizes.rounds):
                for name, child in apps:
                    bodies = world.ask("bodies", text=text, senders=sizes.senders, each=sizes.each)["bodies"]
                    burst, failed = send_all(child.hello["url"], bodies, SIGNING_SECRET)
                    if not child.ask("drain").get("drained"):
                        raise RuntimeError(f"{name} {label}: the work after the acks did not finish")
                    if len(burst) != n:
                        raise RuntimeError(f"{name} {label}: {len(burst)} answers to {n} requests")
                    latencies[name] += burst
                    failures[name] += failed
            figures = {name: (quantile(lat, 50), quantile(lat, 99), failures[name]) for name, lat in latencies.items()}
            bp50, bp99, bfail = figures["bare"]
            n *= sizes.rounds
            for engine in engines:
                fp50, fp99, ffail = figures[engine.name]
                note = f" ({ffail} of {n} not acked)" if ffail else ""
                table.add(f"{label} {engine.tag} ack p50, {sizes.senders} senders", f"{fp50 * 1000:.1f} ms{note}",
                          f"bare Bolt {bp50 * 1000:.1f} ms", f"{fp50 / bp50:.2f}×", "")
                table.add(f"{label} {engine.tag} ack p99, {sizes.senders} senders", f"{fp99 * 1000:.1f} ms",
                          f"bare Bolt {bp99 * 1000:.1f} ms" + (f" ({bfail} failed)" if bfail else ""),
                          f"{fp99 / bp99:.2f}×", f"≤ 1.3× {verdict(fp99 / bp99 <= 1.3 and not ffail, quick)}")
    finally:
        for child in reversed(children):
            child.close()
        tmp.cleanup()


# -- 2. sweep cost ------------------------------------------------------------------------------
def sweep_cost(table: Table, sizes: Sizes, quick: bool, idle_kb: dict[str, int], engines: list[Engine]) -> None:
    for n in sizes.sweep:
        for engine in engines:
            sweep_one(table, n, quick, idle_kb[engine.name], engine)


def sweep_one(table: Table, n: int, quick: bool, idle_kb: int, engine: Engine) -> None:
    # A fresh simulator for each engine: the setup changes its deployments (the news).
    standins = Child("bench/standins.py", str(n))
    try:
        with tempfile.TemporaryDirectory(prefix="fwbot-sweep-") as tmp:
            args = {"db": engine.database(tmp), "fireworks": standins.hello["fireworks"],
                    "slack_api": standins.hello["slack_api"], "n": n}
            scenario("sweep-prep", **args)
            standins.ask("freeze")
            floor = scenario("sweep-floor", **args)
            standins.ask("mark")
            result = scenario("sweep", **args)
            stats = standins.ask("stats")
    finally:
        standins.close()
    if stats["memo_misses"]:
        raise RuntimeError(f"the frozen simulator missed {stats['memo_misses']} reads")
    fw_calls = sum(stats["fireworks"].values())
    fw_floor = math.ceil(n / 200) + 1
    slack_calls = sum(stats["slack"].values())
    slack_floor = len(stats["slack_channels"])
    rss_mb, idle_mb = result["peak_rss_kb"] / 1024, idle_kb / 1024
    big = n >= 10000
    table.add(f"sweep {n:>5} {engine.tag}: wall", f"{result['wall_s'] * 1000:.0f} ms "
              f"(sync {result['sync_s'] * 1000:.0f}, scrape {result['scrape_s'] * 1000:.0f}, "
              f"timers {result['timers_s'] * 1000:.0f})",
              f"fetch only {floor['wall_s'] * 1000:.0f} ms", f"{result['wall_s'] / floor['wall_s']:.1f}×",
              f"< 1 s {verdict(result['wall_s'] < 1, quick)}" if big else "")
    table.add(f"sweep {n:>5} {engine.tag}: peak RSS", f"{rss_mb:.0f} MB", f"idle {idle_mb:.0f} MB",
              f"{rss_mb / idle_mb:.2f}× (+{rss_mb - idle_mb:.0f} MB)",
              f"≤ 150 MB {verdict(rss_mb <= 150, quick)}" if big else "")
    table.add(f"sweep {n:>5} {engine.tag}: Fireworks calls", f"{fw_calls} ({_calls(stats['fireworks'])})",
              f"floor {fw_floor}", f"{fw_calls / fw_floor:.2f}×",
              verdict(fw_calls <= fw_floor and not stats["fireworks_failed"], quick) if big else "")
    table.add(f"sweep {n:>5} {engine.tag}: Slack calls", f"{slack_calls} ({_calls(stats['slack'])})",
              f"floor {slack_floor} (channels with news)",
              f"{slack_calls / slack_floor:.2f}×" if slack_floor else "-", "")


def _calls(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.split('/')[-1] if '/' in k else k}" for k, v in sorted(counts.items()))


# -- 3. cost summary ----------------------------------------------------------------------------
def cost_summaries(table: Table, sizes: Sizes, quick: bool, engines: list[Engine]) -> None:
    for engine in engines:
        cost_summary(table, sizes, quick, engine)


def cost_summary(table: Table, sizes: Sizes, quick: bool, engine: Engine) -> None:
    with tempfile.TemporaryDirectory(prefix="fwbot-summary-") as tmp:
        args = {"db": engine.database(tmp), "n": sizes.summary_deployments, "days": sizes.summary_days}
        prep = scenario("summary-prep", **args)  # writes the history, then times the first (cold) summary
        floor = scenario("summary-floor", **args)
        result = scenario("summary", **args)
    if not prep["rollups_after"] or not result["rollups_before"]:
        raise RuntimeError(f"the first summary cached no rollups: {prep}")
    what = (f"cost summary {engine.tag} {sizes.summary_deployments} × {sizes.summary_days} d "
            f"({prep['replica_points'] + prep['traffic_points']} points)")
    table.add(f"{what}, rollups cached", f"{result['wall_s'] * 1000:.0f} ms",
              f"read rows {floor['wall_s'] * 1000:.0f} ms", f"{result['wall_s'] / floor['wall_s']:.2f}×",
              f"< 300 ms {verdict(result['wall_s'] < 0.3, quick)}")
    table.add(f"{what}, first call (fills the cache)", f"{prep['cold_wall_s'] * 1000:.0f} ms",
              f"read rows {floor['wall_s'] * 1000:.0f} ms", f"{prep['cold_wall_s'] / floor['wall_s']:.2f}×", "")


# -- 4. startup ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> float:
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return time.perf_counter() - began
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} was not healthy within {timeout:.0f} s")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fwbot_startup(quick: bool, engine: Engine) -> tuple[float, int]:
    """``fwbot run`` on a fresh database: seconds from spawn to healthy, and its RSS a while later."""
    from bench.pg import database_setting
    from sims.slack import SlackWorkspace
    from tests.harness import BOT_TOKEN, SIGNING_SECRET

    ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    ws.start(host="127.0.0.1", port=0)
    tmp = tempfile.mkdtemp(prefix="fwbot-startup-")
    database = engine.database(tmp)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "FIREWORKS_", "FWBOT_"))}
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=ws.api_url,
               PORT=str(port), FWBOT_HOST="127.0.0.1", FWBOT_LOG_LEVEL="WARNING")
    env[database_setting(database)] = database
    proc = subprocess.Popen([PY, "-m", "bot.app.cli", "run"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        took = wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        time.sleep(1.0 if quick else 5.0)
        idle_rss = rss_kb(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        ws.stop()
    return took, idle_rss


def startup(table: Table, quick: bool, idle_kb: dict[str, int], engines: list[Engine]) -> None:
    from sims.slack import SlackWorkspace
    from tests.harness import BOT_TOKEN, SIGNING_SECRET

    figures = {engine.name: fwbot_startup(quick, engine) for engine in engines}
    # The baseline: the bare Bolt app in its own process, started the same way until it serves.
    ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    ws.start(host="127.0.0.1", port=0)
    began = time.perf_counter()
    bare = Child("bench/ack_servers.py", "bare", ws.api_url)
    bare_took = time.perf_counter() - began
    bare_rss = rss_kb(bare.proc.pid)
    bare.close()
    ws.stop()
    for engine in engines:
        took, idle_rss = figures[engine.name]
        table.add(f"startup {engine.tag}: `fwbot run` to healthy", f"{took * 1000:.0f} ms",
                  f"bare Bolt {bare_took * 1000:.0f} ms", f"{took / bare_took:.2f}×", "")
        table.add(f"startup {engine.tag}: idle RSS", f"{idle_rss / 1024:.0f} MB", f"bare Bolt {bare_rss / 1024:.0f} MB",
                  f"{idle_rss / bare_rss:.2f}×", "")
    for engine in engines:
        table.add(f"(idle Python with fwbot's imports {engine.tag})", f"{idle_kb[engine.name] / 1024:.0f} MB peak",
                  "", "", "")


def engine_names(value: str) -> list[str]:
    names = [n.strip().lower() for n in value.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ENGINES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(ENGINES)}, "
                                         f"got {value!r}")
    return list(dict.fromkeys(names))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI: checks it works")
    parser.add_argument("--only", choices=("ack", "sweep", "summary", "startup"), action="append",
                        help="run only these sections (repeatable)")
    parser.add_argument("--engines", type=engine_names, default=list(ENGINES), metavar="sqlite,postgresql",
                        help="the databases fwbot stores in, each measured in its own rows (default: both); "
                             "PostgreSQL is the server FWBOT_BENCH_POSTGRES_URL names, else a throw-away one "
                             "(scripts/pg)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    only = set(args.only or ("ack", "sweep", "summary", "startup"))
    table = Table()
    began = time.perf_counter()
    server = PostgresServer.open() if "postgresql" in args.engines else None
    try:
        engines = [Engine(name, server if name == "postgresql" else None) for name in args.engines
                   if name != "postgresql" or server is not None]
        if not engines:
            print("no database to measure on", file=sys.stderr)
            return 1
        idle_kb = {e.name: scenario("idle", engine=e.name)["peak_rss_kb"] for e in engines}
        sections: list[tuple[str, Callable[[], None]]] = [
            ("ack", lambda: ack_latency(table, sizes, args.quick, engines)),
            ("sweep", lambda: sweep_cost(table, sizes, args.quick, idle_kb, engines)),
            ("summary", lambda: cost_summaries(table, sizes, args.quick, engines)),
            ("startup", lambda: startup(table, args.quick, idle_kb, engines)),
        ]
        for name, run in sections:
            if name in only:
                print(f"{name}…", file=sys.stderr, flush=True)
                run()
    finally:
        if server is not None:
            server.close()
    print(table.render())
    print(f"\n{'quick' if args.quick else 'full'} run in {time.perf_counter() - began:.0f} s on "
          f"{os.cpu_count()} CPUs; ratios are fwbot ÷ baseline, measured in this run.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
