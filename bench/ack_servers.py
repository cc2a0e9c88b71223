"""The two apps whose acks are timed, and the outside world they talk to, each in its own process.

The stand-ins for Fireworks and Slack run apart from the apps, as the real services do, so the
work they do answering the bot is not charged to its acks.

``python bench/ack_servers.py outside``: a Fireworks simulator and a Slack stand-in; prints
``{"fireworks": url, "slack_api": url}``, then answers
``{"cmd": "bodies", "text": "...", "senders": 50, "each": 8}`` with
``{"bodies": [[form body, ...] per sender]}`` (one channel per sender, a fresh trigger and
response_url per request, exactly as the stand-in's own slash_command makes them).

``python bench/ack_servers.py fwbot FIREWORKS_URL SLACK_API_URL [DATABASE]``: the real bot
(``create_bot``, real Bolt app) behind its own HTTP server, background jobs off, storing in
DATABASE (a PostgreSQL URL or a SQLite path; a new SQLite file when left out).
``python bench/ack_servers.py bare SLACK_API_URL``: a Bolt app with one ``/fw`` listener that
only acks, behind the same HTTP server class.
Both print ``{"url": events_url}``, answer ``{"cmd": "drain"}`` once the work that followed their
acks has finished, and run until ``{"cmd": "stop"}``.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sims.slack import payloads as slack_payloads  # noqa: E402
from tests.harness import BOT_TOKEN, SIGNING_SECRET, USERS  # noqa: E402

SENDER_CHANNELS = tuple(f"C0SEND{i:03d}" for i in range(64))


def outside() -> tuple[dict, Any]:
    from sims.fireworks import FireworksSimulator, SimConfig
    from sims.slack import SlackWorkspace
    from tests.harness import seed_workspace

    sim = FireworksSimulator(SimConfig(account_id="demo", api_key="sim-key"))
    sim.start(host="127.0.0.1", port=0)
    ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    ws.start(host="127.0.0.1", port=0)
    seed_workspace(ws)
    for channel in SENDER_CHANNELS:
        ws.add_channel(channel, channel.lower(), members=list(USERS))

    def bodies(text: str, senders: int, each: int) -> list[list[str]]:
        out = []
        for s in range(senders):
            channel = SENDER_CHANNELS[s % len(SENDER_CHANNELS)]
            row = []
            for _ in range(each):
                with ws._lock:
                    who, where = ws.user("U_DEV"), ws.resolve_channel(channel)
                    fields = slack_payloads.slash_command(
                        team_id=ws.team_id, domain=ws.domain, user=who, channel=where, command="/fw", text=text,
                        response_url=ws._new_response_url(who.id, where.id), trigger_id=ws._new_trigger(who.id),
                        token=ws.verification_token)
                row.append(slack_payloads.form_body(fields).decode())
            out.append(row)
        return out

    return {"fireworks": sim.url, "slack_api": ws.api_url}, {
        "bodies": lambda msg: {"bodies": bodies(msg["text"], msg["senders"], msg["each"])}}


def fwbot(fireworks_url: str, slack_api: str, database: str = "") -> tuple[dict, Any]:
    from bench.pg import database_setting
    from bot.app.wiring import create_bot, settle_heap
    from bot.core.settings import Settings

    database = database or str(Path(tempfile.mkdtemp(prefix="fwbot-bench-")) / "fwbot.db")
    settings = Settings(_env_file=None, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                        SLACK_API_URL=slack_api, FIREWORKS_API_KEY="sim-key", FIREWORKS_ACCOUNT_ID="demo",
                        FIREWORKS_BASE_URL=fireworks_url, FWBOT_ADMINS="U_ADMIN", FWBOT_ALERT_CHANNEL="C0ALERTS",
                        **{database_setting(database): database})
    bot = create_bot(settings, with_scheduler=False)
    url = f"{bot.serve_http('127.0.0.1', 0)}/slack/events"
    settle_heap()  # as `fwbot run` does once it serves

    def drain(msg: dict) -> dict:
        # The work after the acks (listings, creates, posts) finishes before the next app is
        # timed, so it never competes with that app for the CPUs.
        return {"drained": bot.services.wait_work_done(float(msg.get("timeout", 300)))}

    return {"url": url}, {"drain": drain}


def bare(slack_api: str) -> tuple[dict, Any]:
    from slack_bolt import App

    from bot.adapters.slack import make_web_client
    from bot.app.wiring import BotHTTPServer, Metrics

    app = App(client=make_web_client(BOT_TOKEN, slack_api), signing_secret=SIGNING_SECRET,
              raise_error_for_unhandled_request=False)

    @app.command("/fw")
    def fw(ack) -> None:
        ack()

    server = BotHTTPServer(("127.0.0.1", 0), app, None, Metrics(), signing_secret=SIGNING_SECRET)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    host, port = server.server_address[:2]
    return {"url": f"http://{host}:{port}/slack/events"}, {"drain": lambda msg: {"drained": True}}


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    role, args = sys.argv[1], sys.argv[2:]
    hello, commands = {"outside": outside, "fwbot": fwbot, "bare": bare}[role](*args)
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "stop":
            break
        handler = commands.get(msg["cmd"])
        print(json.dumps(handler(msg) if handler else {"error": f"unknown command {msg['cmd']!r}"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
