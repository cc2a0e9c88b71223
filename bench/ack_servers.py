"""The two apps whose acks are timed, each served in a process of its own.

``python bench/ack_servers.py fwbot|bare``: ``fwbot`` is the real bot from ``tests.harness``
(real Bolt app, SQLite, a Fireworks simulator and a Slack stand-in); ``bare`` is a Bolt app with
one ``/fw`` listener that only acks, behind the same HTTP server class. The first line printed
is ``{"url": events_url}``; then, per line on stdin:

    {"cmd": "bodies", "text": "...", "senders": 50, "each": 8}
        -> {"bodies": [[form body, ...] per sender]}  (one channel per sender)
    {"cmd": "stop"}
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

from sims.slack import SlackWorkspace  # noqa: E402
from sims.slack import payloads as slack_payloads  # noqa: E402
from sims.slack.model import Channel, User  # noqa: E402

SENDER_CHANNELS = tuple(f"C0SEND{i:03d}" for i in range(64))


def serve_fwbot() -> tuple[str, Any]:
    from tests.harness import USERS, start_stack

    stack = start_stack(Path(tempfile.mkdtemp(prefix="fwbot-bench-")))
    for channel in SENDER_CHANNELS:
        stack.ws.add_channel(channel, channel.lower(), members=list(USERS))
    ws = stack.ws

    def bodies(text: str, senders: int, each: int) -> list[list[str]]:
        out = []
        for s in range(senders):
            channel = SENDER_CHANNELS[s % len(SENDER_CHANNELS)]
            row = []
            for _ in range(each):
                # A fresh trigger and response_url per request, exactly as the stand-in's own
                # slash_command makes them, so the work after the ack can answer.
                with ws._lock:
                    who, where = ws.user("U_DEV"), ws.resolve_channel(channel)
                    fields = slack_payloads.slash_command(
                        team_id=ws.team_id, domain=ws.domain, user=who, channel=where, command="/fw", text=text,
                        response_url=ws._new_response_url(who.id, where.id), trigger_id=ws._new_trigger(who.id),
                        token=ws.verification_token)
                row.append(slack_payloads.form_body(fields).decode())
            out.append(row)
        return out

    return f"{stack.bot.url}/slack/events", (stack, bodies)


def serve_bare() -> tuple[str, Any]:
    from slack_bolt import App

    from bot.app import BotHTTPServer, Metrics
    from bot.slack import make_web_client
    from tests.harness import BOT_TOKEN, SIGNING_SECRET

    # A workspace only so that the app's startup token check (auth.test) has something to ask,
    # as fwbot's does.
    ws = SlackWorkspace(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN)
    ws.start(host="127.0.0.1", port=0)
    app = App(client=make_web_client(BOT_TOKEN, ws.api_url), signing_secret=SIGNING_SECRET,
              raise_error_for_unhandled_request=False)

    @app.command("/fw")
    def fw(ack) -> None:
        ack()

    server = BotHTTPServer(("127.0.0.1", 0), app, None, Metrics(), signing_secret=SIGNING_SECRET)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    host, port = server.server_address[:2]
    user, channels = User("U_DEV", "dev"), [Channel(c, c.lower()) for c in SENDER_CHANNELS]

    def bodies(text: str, senders: int, each: int) -> list[list[str]]:
        return [[slack_payloads.form_body(slack_payloads.slash_command(
            team_id="T0LOCAL", domain="local", user=user, channel=channels[s % len(channels)], command="/fw",
            text=text, response_url=f"{ws.url}/webhook/none", trigger_id=f"1.{s}.{i}",
            token="local-verification-token")).decode() for i in range(each)] for s in range(senders)]

    return f"http://{host}:{port}/slack/events", (server, bodies)


def main() -> int:
    logging.basicConfig(level=logging.ERROR)
    url, (_, bodies) = serve_fwbot() if sys.argv[1] == "fwbot" else serve_bare()
    print(json.dumps({"url": url}), flush=True)
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "bodies":
            print(json.dumps({"bodies": bodies(msg["text"], msg["senders"], msg["each"])}), flush=True)
        elif msg["cmd"] == "stop":
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
