"""What the workspace sends for a command a person types, as Slack does: control characters
escaped always, and with ``should_escape`` (the manifest's "escape channels, users and links")
``#channel``, ``@user``, user groups and links turned into entities. Also Slack's own ``/archive``
in the composer, and the workspace's state kept in a file across restarts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

from bot.app.dev import manifest_commands
from sims.slack import SlackWorkspace
from sims.slack.mentions import as_sent

USERS = {"dana": "U0DEV", "avi": "U0APPROVER"}
CHANNELS = {"ml-platform": ("C0MLPLAT", "ml-platform"), "fw-alerts": ("C0ALERTS", "fw-alerts")}
GROUPS = {"approvers": "S0APPROVERS"}


def sent(text: str, should_escape: bool = True) -> str:
    return as_sent(text, should_escape=should_escape, user=lambda n: USERS.get(n.lower()),
                   channel=lambda n: CHANNELS.get(n.lower()), usergroup=lambda n: GROUPS.get(n.lower()))


@pytest.mark.parametrize(("typed", "wire"), [
    ("budget #ml-platform 100", "budget <#C0MLPLAT|ml-platform> 100"),
    ("owner web-1 @avi", "owner web-1 <@U0APPROVER>"),
    ("owner web-1 @Avi.", "owner web-1 <@U0APPROVER>."),
    ("owner web-1 @nobody", "owner web-1 @nobody"),
    ("budget #no-such-channel 5", "budget #no-such-channel 5"),
    ("query x tell @here and @approvers", "query x tell <!here> and <!subteam^S0APPROVERS>"),
    ("query x see https://fireworks.ai/pricing.", "query x see <https://fireworks.ai/pricing>."),
    ("query x mail ops@example.com", "query x mail <mailto:ops@example.com|ops@example.com>"),
    ("query x a<b & c>d", "query x a&lt;b &amp; c&gt;d"),
    ("query x <@U0DEV> is typed, not a mention", "query x &lt;@U0DEV&gt; is typed, not a mention"),
    ("query x email@avi stays and a#ml-platform too", "query x email@avi stays and a#ml-platform too"),
    ("(#ml-platform)", "(<#C0MLPLAT|ml-platform>)"),
])
def test_typed_text_is_sent_as_slack_sends_it(typed, wire):
    assert sent(typed) == wire


def test_without_should_escape_only_control_characters_are_escaped():
    assert sent("budget #ml-platform 100 @avi <x>", should_escape=False) == "budget #ml-platform 100 @avi &lt;x&gt;"


def test_the_manifest_escapes_fw():
    assert manifest_commands()["/fw"] is True


class RecordingApp:
    """Acks every slash command with nothing and keeps what it was sent."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                form = dict(parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
                outer.texts.append(form.get("text", ""))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def ws(monkeypatch) -> Iterator[SlackWorkspace]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    workspace = SlackWorkspace(signing_secret="s")
    workspace.start()
    seed(workspace)
    app = RecordingApp()
    workspace.events_url = app.url
    workspace.app = app  # type: ignore[attr-defined]
    yield workspace
    workspace.stop()
    app.server.shutdown()
    app.server.server_close()


def seed(workspace: SlackWorkspace) -> None:
    workspace.add_user("U0DEV", "dana", real_name="Dana Developer")
    workspace.add_user("U0APPROVER", "avi", real_name="Avi Approver", display_name="Avi")
    workspace.add_channel("C0MLPLAT", "ml-platform")
    workspace.add_usergroup("S0APPROVERS", "approvers", users=["U0APPROVER"])


def composer(ws: SlackWorkspace, text: str, channel: str = "C0MLPLAT") -> httpx.Response:
    return httpx.post(ws.url + "/_ui/command", json={"user": "U0DEV", "channel": channel, "text": text})


def test_the_composer_sends_a_command_as_slack_would(ws):
    ws.register_command("/fw", should_escape=True)
    assert composer(ws, "/fw budget #ml-platform 100").json()["status"] == 200
    assert composer(ws, "/fw owner web-1 @avi & @nobody").json()["status"] == 200
    assert ws.app.texts == ["budget <#C0MLPLAT|ml-platform> 100", "owner web-1 <@U0APPROVER> &amp; @nobody"]
    # What the app was sent is also what a test or the payload log sees.
    assert ws.deliveries[-1][1].payload["text"] == "owner web-1 <@U0APPROVER> &amp; @nobody"


def test_a_command_without_should_escape_gets_names_as_typed(ws):
    ws.register_command("/other", should_escape=False)
    composer(ws, "/other #ml-platform @avi")
    composer(ws, "/unknown #ml-platform")  # not in any manifest: nothing is resolved either
    assert ws.app.texts == ["#ml-platform @avi", "#ml-platform"]


def test_slash_command_from_code_sends_the_text_as_given(ws):
    ws.register_command("/fw", should_escape=True)
    ws.slash_command("U0DEV", "C0MLPLAT", "budget <#C0MLPLAT|ml-platform> 1 #ml-platform")
    assert ws.app.texts == ["budget <#C0MLPLAT|ml-platform> 1 #ml-platform"]


def test_archive_in_the_composer_archives_the_channel_as_slack_does(ws):
    r = composer(ws, "/archive")
    assert r.status_code == 200 and r.json() == {"delivered": False}
    channel = next(c for c in ws.channels if c.id == "C0MLPLAT")
    assert channel.is_archived and ws.messages("C0MLPLAT")[-1].text == "archived the channel"
    refused = httpx.post(ws.api_url + "chat.postMessage", data={"channel": "C0MLPLAT", "text": "hi"},
                         headers={"Authorization": f"Bearer {ws.bot_token}"}).json()
    assert refused == {"ok": False, "error": "is_archived"}
    state = httpx.get(ws.url + "/_ui/state", params={"user": "U0DEV"}).json()
    assert next(c for c in state["channels"] if c["id"] == "C0MLPLAT")["is_archived"] is True
    composer(ws, "/unarchive #ml-platform")
    assert not next(c for c in ws.channels if c.id == "C0MLPLAT").is_archived
    assert ws.app.texts == []  # Slack's own commands never reach the app


# -- state across restarts ----------------------------------------------------------------------
def test_the_workspace_keeps_its_state_in_a_file(tmp_path: Path, monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "slack.json"
    first = SlackWorkspace(signing_secret="s", state_file=path)
    first.start()
    seed(first)
    token = {"Authorization": f"Bearer {first.bot_token}"}
    posted = httpx.post(first.api_url + "chat.postMessage", headers=token,
                        data={"channel": "C0MLPLAT", "text": "tracking web-1"}).json()
    reply = httpx.post(first.api_url + "chat.postMessage", headers=token,
                       data={"channel": "C0MLPLAT", "text": "in the thread", "thread_ts": posted["ts"]}).json()
    dm = httpx.post(first.api_url + "conversations.open", headers=token, data={"users": "U0DEV"}).json()
    first.publish_home("U0DEV", {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                                                           "text": "home"}}]})
    first.set_channel("C0MLPLAT", archived=False)
    first.stop()
    assert json.loads(path.read_text())["version"] == 1

    second = SlackWorkspace(signing_secret="s", state_file=path)
    second.start()
    try:
        assert second.restored
        assert {u.id for u in second.users} >= {"U0DEV", "U0APPROVER"}
        assert second.message("C0MLPLAT", posted["ts"]).text == "tracking web-1"
        assert [m.ts for m in second.thread("C0MLPLAT", posted["ts"])] == [posted["ts"], reply["ts"]]
        assert second.dm_channel("U0DEV") == dm["channel"]["id"]
        assert second.home("U0DEV") is not None
        # Messages made before the restart can be edited after it, and new ones come later.
        edited = httpx.post(second.api_url + "chat.update", headers=token,
                            data={"channel": "C0MLPLAT", "ts": posted["ts"], "text": "web-1 READY"}).json()
        assert edited["ok"], edited
        later = httpx.post(second.api_url + "chat.postMessage", headers=token,
                           data={"channel": "C0MLPLAT", "text": "later"}).json()
        assert float(later["ts"]) > float(reply["ts"])
        assert second.as_sent("/fw", "#ml-platform") == "#ml-platform"  # commands are the app's, not state
    finally:
        second.stop()


def test_changes_are_saved_while_the_workspace_runs(tmp_path: Path):
    path = tmp_path / "slack.json"
    ws = SlackWorkspace(signing_secret="s", state_file=path)
    ws.start()
    try:
        seed(ws)
        ws.add_message("C0MLPLAT", "U0DEV", text="saved without a stop")
        ws.wait_for(lambda: path.exists() and "saved without a stop" in path.read_text(), timeout=5)
    finally:
        ws.stop()
