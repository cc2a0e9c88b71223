"""The browser workspace: page, static files and the /_ui/ JSON endpoints."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import httpx
import pytest

from sims.slack import SlackWorkspace

BUTTONS = [{"type": "actions", "block_id": "b", "elements": [
    {"type": "button", "action_id": "go", "value": "1", "text": {"type": "plain_text", "text": "Go"}}]}]


class EchoApp:
    """Acks slash commands with blocks holding a button; records interactions."""

    def __init__(self) -> None:
        self.payloads: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                form = dict(parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                if "payload" in form:
                    outer.payloads.append(json.loads(form["payload"]))
                    body = b""
                else:
                    body = json.dumps({"text": f"<script>{form['text']}</script>", "blocks": BUTTONS}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def ws(monkeypatch) -> Iterator[SlackWorkspace]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    workspace = SlackWorkspace(signing_secret="s")
    workspace.start()
    workspace.add_user("U_DEV", "dev", real_name="Dana Dev")
    workspace.add_user("U_OPS", "ops")
    workspace.add_channel("C_ML", "ml-platform")
    app = EchoApp()
    workspace.events_url = app.url
    workspace.app = app  # type: ignore[attr-defined]
    yield workspace
    workspace.stop()
    app.server.shutdown()
    app.server.server_close()


def test_page_and_static_files(ws):
    page = httpx.get(ws.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js">' in page.text
    assert httpx.get(ws.url + "/static/app.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(ws.url + "/static/app.css").status_code == 200
    assert httpx.get(ws.url + "/static/..%2Fworkspace.py").status_code == 404
    assert httpx.get(ws.url + "/static/nope.js").status_code == 404


def test_state_is_per_user(ws):
    ws.slash_command("U_DEV", "C_ML", "hello")
    dev = httpx.get(ws.url + "/_ui/state", params={"user": "U_DEV"}).json()
    ops = httpx.get(ws.url + "/_ui/state", params={"user": "U_OPS"}).json()
    dev_ml = next(c for c in dev["channels"] if c["id"] == "C_ML")
    ops_ml = next(c for c in ops["channels"] if c["id"] == "C_ML")
    assert [m["ephemeral"] for m in dev_ml["messages"]] == [True]
    assert ops_ml["messages"] == []  # someone else's ephemeral message
    assert {u["id"] for u in dev["users"]} >= {"U_DEV", "U_OPS"}
    assert [c["is_im"] for c in dev["channels"]].count(True) == 1  # the bot DM


def test_composer_runs_slash_commands_and_posts_text(ws):
    r = httpx.post(ws.url + "/_ui/command", json={"user": "U_DEV", "channel": "C_ML", "text": "/fw status web-1"})
    assert r.status_code == 200 and r.json()["status"] == 200
    shown = ws.messages("C_ML")[-1]
    assert shown.text == "<script>status web-1</script>"  # stored as sent; the page escapes it
    r = httpx.post(ws.url + "/_ui/command", json={"user": "U_DEV", "channel": "C_ML", "text": "hi all"})
    assert ws.messages("C_ML")[-1].user == "U_DEV"


def test_click_from_the_page_sends_block_actions(ws):
    ws.slash_command("U_DEV", "C_ML", "x")
    ts = ws.messages("C_ML")[-1].ts
    r = httpx.post(ws.url + "/_ui/click", json={"user": "U_DEV", "channel": "C_ML", "ts": ts, "action_id": "go",
                                               "block_id": "b", "value": "1"})
    assert r.json()["status"] == 200
    [payload] = ws.app.payloads
    assert payload["actions"][0]["action_id"] == "go" and payload["container"]["is_ephemeral"] is True


def test_ui_errors_are_json(ws):
    r = httpx.post(ws.url + "/_ui/click", json={"user": "U_DEV", "channel": "C_NOPE", "ts": "1", "action_id": "x"})
    assert r.status_code == 400 and "no channel" in r.json()["error"]
    assert httpx.get(ws.url + "/_ui/nothing").status_code == 404


def test_event_stream_announces_changes(ws):
    with httpx.stream("GET", ws.url + "/_ui/events", timeout=5) as stream:
        lines = stream.iter_lines()
        assert next(lines) == "event: change"
        next(lines), next(lines)
        ws.post_message("U_DEV", "C_ML", "ping")
        assert next(lines) == "event: change"
