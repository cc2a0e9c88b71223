"""fwbot as a separate process that a test can SIGKILL and start again on the same SQLite file.

The simulator and the Slack stand-in stay in the test process (they are the outside world and
survive the bot's death); only ``python -m bot.app.cli run`` dies. Several may run at once on one
file, as replicas (``name`` keeps their logs apart).

The leader lease lasts 3 s here (``FWBOT_LEADER_LEASE``): a process started after a SIGKILL runs
the scheduled work once its predecessor's lease has run out, as a replica taking over would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from sims.fireworks import FireworksSimulator, SimConfig
from sims.slack import SlackWorkspace
from storage.db import Database
from tests.fixtures.databases import database_setting, database_url
from tests.harness import ALERTS, BOT_TOKEN, SIGNING_SECRET, seed_workspace

REPO = Path(__file__).resolve().parents[2]


class BotProcess:
    """One ``fwbot run`` at a time, restartable; its log is kept across restarts."""

    def __init__(self, tmp: Path, sim: FireworksSimulator, ws: SlackWorkspace, env: dict[str, str] | None = None,
                 *, name: str = "fwbot", db_path: Path | None = None):
        self.tmp, self.sim, self.ws = tmp, sim, ws
        self.name = name
        self.db_path = db_path or database_url(tmp)  # a SQLite file, or a PostgreSQL database's URL
        self._db: Database | None = None
        self.log_path = tmp / f"{name}.log"
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": ws.api_url,
            "FIREWORKS_API_KEY": sim.config.api_key,
            "FIREWORKS_ACCOUNT_ID": sim.config.account_id,
            "FIREWORKS_BASE_URL": sim.url,
            database_setting(self.db_path): str(self.db_path),
            "FWBOT_ADMINS": "U_ADMIN",
            "FWBOT_ALERT_CHANNEL": ALERTS,
            "FWBOT_SYNC_INTERVAL": "1s",
            "FWBOT_LEADER_LEASE": "3s",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.starts = 0
        self.kills = 0

    def start(self, timeout: float = 30.0) -> str:
        log = open(self.log_path, "a")  # noqa: SIM115 - handed to the child, closed after it exits
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.app.cli", "run", "--host", "127.0.0.1", "--port", "0"],
            cwd=self.tmp, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()
        found: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                if line.startswith("fwbot listening on ") and not ready.is_set():
                    found.append(line.split("fwbot listening on ", 1)[1].strip())
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(timeout):
            self.proc.kill()
            raise AssertionError(f"fwbot did not start:\n{self.log()[-3000:]}")
        self.url = found[0]
        self.ws.events_url = f"{found[0]}/slack/events"
        self.starts += 1
        return found[0]

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed, the process is simply gone."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def _database(self) -> Database:
        if self._db is None:
            self._db = Database(self.db_path)
        return self._db

    def db(self, sql: str, params: dict | None = None) -> list[tuple]:
        """Read the bot's database as an outsider would (the bot may be dead or alive)."""
        return [tuple(r) for r in self._database().rows(sql, params)]

    def write(self, sql: str, params: dict | None = None) -> None:
        """Change the bot's database behind its back (a test moving time along)."""
        self._database().execute(sql, params)

    def wait_db(self, sql: str, params: dict | None = None, timeout: float = 20.0) -> list[tuple]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                rows = self.db(sql, params)
            except DBAPIError:  # not created yet
                rows = []
            if rows:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"no rows for {sql} {params} within {timeout}s\n{self.log()[-2000:]}")
            time.sleep(0.02)


def outside_world(clock=None, **sim_config) -> tuple[FireworksSimulator, SlackWorkspace]:
    sim = FireworksSimulator(SimConfig(account_id="demo", api_key="sim-key", **sim_config), clock=clock)
    sim.start(host="127.0.0.1", port=0)
    ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    ws.start(host="127.0.0.1", port=0)
    seed_workspace(ws)
    return sim, ws


class SlackHold:
    """A pass-through in front of the Slack stand-in that can hold one chosen Web API call.

    ``hold_when(method, body)`` picks the call; it is held either before Slack sees it
    (``after_slack=False``) or after Slack has acted on it but before the bot hears back, so a
    kill can land in either gap.
    """

    def __init__(self, ws: SlackWorkspace) -> None:
        self.ws = ws
        self.hold_when = None
        self.after_slack = True
        self.holding = threading.Event()
        self.release = threading.Event()
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                method = self.path.rsplit("/", 1)[-1]
                hold = proxy.hold_when is not None and proxy.hold_when(method, body)
                if hold:
                    proxy.hold_when = None
                    if not proxy.after_slack:
                        proxy.holding.set()
                        proxy.release.wait(30)
                        return  # the bot died first: this call never reaches Slack
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(ws.url + self.path, data=body, headers=headers, method="POST")
                try:
                    with direct.open(request, timeout=30) as resp:
                        status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
                except urllib.error.HTTPError as e:
                    status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
                if hold and proxy.after_slack:
                    proxy.holding.set()
                    proxy.release.wait(30)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype or "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the bot died while we held its call
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address[:2]
        self.api_url = f"http://{host}:{port}/api/"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
