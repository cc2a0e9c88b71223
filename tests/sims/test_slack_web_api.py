"""The local workspace's Web API, through slack_sdk's real WebClient."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.core.clock import FakeClock
from sims.slack import BOT_USER_ID, SlackWorkspace


class RecordingApp:
    """An app that acks everything with an empty 200 and keeps what it got."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                outer.received.append(dict(parse_qsl(raw)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def ws(clock, monkeypatch) -> Iterator[SlackWorkspace]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    workspace = SlackWorkspace(signing_secret="s3cret", clock=clock)
    workspace.start()
    workspace.add_user("U_DEV", "dev", real_name="Dana Dev", tz="Europe/Berlin")
    workspace.add_user("U_APPROVER", "approver", is_admin=True)
    workspace.add_channel("C_ML", "ml-platform")
    workspace.add_channel("C_PRIV", "small", members=["U_APPROVER"])
    workspace.add_usergroup("S_APPROVERS", "approvers", users=["U_APPROVER"])
    app = RecordingApp()
    workspace.events_url = app.url
    workspace.app = app  # type: ignore[attr-defined]
    yield workspace
    workspace.stop()
    app.server.shutdown()
    app.server.server_close()


@pytest.fixture
def client(ws) -> WebClient:
    return WebClient(token=ws.bot_token, base_url=ws.api_url)


def error_of(call) -> str:
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value.response["error"]


def test_auth(ws, client):
    me = client.auth_test()
    assert (me["user_id"], me["bot_id"], me["team_id"]) == (BOT_USER_ID, "B0FWBOT", "T0LOCAL")
    assert error_of(lambda: WebClient(base_url=ws.api_url).auth_test()) == "not_authed"
    assert error_of(lambda: WebClient(token="xoxb-wrong", base_url=ws.api_url).auth_test()) == "invalid_auth"
    assert error_of(lambda: client.api_call("fw.nothing")) == "unknown_method"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_post_message_targets_and_errors(ws, client):
    by_id = client.chat_postMessage(channel="C_ML", text="one")
    by_name = client.chat_postMessage(channel="#ml-platform", text="two")
    to_user = client.chat_postMessage(channel="U_DEV", text="psst")
    assert by_id["channel"] == by_name["channel"] == "C_ML"
    assert to_user["channel"] == ws.dm_channel("U_DEV") and to_user["channel"].startswith("D")
    assert float(by_id["ts"]) < float(by_name["ts"])
    assert by_id["message"]["bot_id"] == "B0FWBOT"
    assert [m.text for m in ws.messages("C_ML")] == ["one", "two"]

    assert error_of(lambda: client.chat_postMessage(channel="C_NOPE", text="x")) == "channel_not_found"
    assert error_of(lambda: client.chat_postMessage(channel="C_ML")) == "no_text"
    assert error_of(lambda: client.chat_postMessage(channel="C_ML", text="x" * 40_001)) == "msg_too_long"
    too_many = [{"type": "divider"}] * 51
    assert error_of(lambda: client.chat_postMessage(channel="C_ML", blocks=too_many)) == "invalid_blocks"
    bad_json = lambda: client.api_call("chat.postMessage", params={"channel": "C_ML", "blocks": "[{"})  # noqa: E731
    assert error_of(bad_json) == "invalid_blocks_format"


def test_form_and_json_bodies_are_both_understood(ws, client):
    blocks = '[{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]'
    client.api_call("chat.postMessage", params={"channel": "C_ML", "blocks": blocks})
    client.api_call("chat.postMessage", json={"channel": "C_ML", "blocks": [{"type": "divider"}]})
    first, second = ws.messages("C_ML")
    assert first.blocks[0]["text"]["text"] == "*hi*" and first.blocks[0]["block_id"]
    assert second.blocks[0]["type"] == "divider"
    assert ws.calls_to("chat.postMessage")[1].params["blocks"] == [{"type": "divider"}]


def test_update_delete_permalink_ephemeral(ws, client):
    ts = client.chat_postMessage(channel="C_ML", text="v1")["ts"]
    updated = client.chat_update(channel="C_ML", ts=ts, text="v2")
    assert updated["ts"] == ts and ws.message("C_ML", ts).text == "v2" and ws.message("C_ML", ts).edited
    assert error_of(lambda: client.chat_update(channel="C_ML", ts="1.2", text="x")) == "message_not_found"
    human = ws.post_message("U_DEV", "C_ML", "mine")
    assert error_of(lambda: client.chat_update(channel="C_ML", ts=human.ts, text="x")) == "cant_update_message"
    assert client.chat_getPermalink(channel="C_ML", message_ts=ts)["permalink"].endswith(ts.replace(".", ""))
    client.chat_delete(channel="C_ML", ts=ts)
    assert ws.message("C_ML", ts).deleted
    assert error_of(lambda: client.chat_delete(channel="C_ML", ts=ts)) == "message_not_found"

    eph = client.chat_postEphemeral(channel="C_ML", user="U_DEV", text="just you")
    assert ws.message("C_ML", eph["message_ts"]).ephemeral_to == "U_DEV"
    assert error_of(lambda: client.chat_postEphemeral(channel="C_PRIV", user="U_DEV", text="x")) == "user_not_in_channel"


def test_threads(ws, client):
    parent = client.chat_postMessage(channel="C_ML", text="parent")["ts"]
    client.chat_postMessage(channel="C_ML", text="r1", thread_ts=parent)
    client.chat_postMessage(channel="C_ML", text="r2", thread_ts=parent)
    thread = ws.thread("C_ML", parent)
    assert [m.text for m in thread] == ["parent", "r1", "r2"]
    assert thread[0].reply_count == 2 and all(m.thread_ts == parent for m in thread)


def test_users_conversations_usergroups(ws, client):
    dev = client.users_info(user="U_DEV")["user"]
    assert dev["real_name"] == "Dana Dev" and dev["profile"]["real_name"] == "Dana Dev"
    assert dev["tz"] == "Europe/Berlin" and dev["tz_offset"] == 3600 and dev["deleted"] is False
    assert error_of(lambda: client.users_info(user="U_GHOST")) == "user_not_found"

    pages = [client.users_list(limit=2)]
    while pages[-1]["response_metadata"]["next_cursor"]:
        pages.append(client.users_list(limit=2, cursor=pages[-1]["response_metadata"]["next_cursor"]))
    ids = [u["id"] for p in pages for u in p["members"]]
    assert ids == [BOT_USER_ID, "U_DEV", "U_APPROVER"] and len(pages) == 2

    ws.deactivate_user("U_DEV")
    assert client.users_info(user="U_DEV")["user"]["deleted"] is True

    dm = client.conversations_open(users="U_APPROVER")["channel"]["id"]
    assert dm == ws.dm_channel("U_APPROVER")
    assert client.conversations_info(channel="C_ML")["channel"]["name"] == "ml-platform"
    assert client.conversations_info(channel=dm)["channel"]["is_im"] is True
    assert error_of(lambda: client.conversations_info(channel="C_NOPE")) == "channel_not_found"
    assert client.conversations_members(channel="C_PRIV")["members"] == ["U_APPROVER"]

    assert client.usergroups_users_list(usergroup="S_APPROVERS")["users"] == ["U_APPROVER"]
    assert error_of(lambda: client.usergroups_users_list(usergroup="S_NOPE")) == "no_such_subteam"
    assert client.usergroups_list()["usergroups"][0]["handle"] == "approvers"


def trigger(ws) -> str:
    ws.slash_command(user="U_DEV", channel="C_ML", text="x")
    return ws.app.received[-1]["trigger_id"]


MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "T"},
         "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}


def test_triggers_expire_after_three_seconds_and_are_single_use(ws, client, clock):
    fresh = trigger(ws)
    assert client.views_open(trigger_id=fresh, view=MODAL)["view"]["id"].startswith("V")
    assert error_of(lambda: client.views_open(trigger_id=fresh, view=MODAL)) == "exchanged_trigger_id"
    stale = trigger(ws)
    clock.advance(3.5)
    assert error_of(lambda: client.views_open(trigger_id=stale, view=MODAL)) == "expired_trigger_id"
    assert error_of(lambda: client.views_open(trigger_id="made.up", view=MODAL)) == "invalid_trigger_id"


def test_view_stack_hash_and_home(ws, client):
    root = client.views_open(trigger_id=trigger(ws), view=MODAL)["view"]
    client.views_push(trigger_id=trigger(ws), view=MODAL)
    client.views_push(trigger_id=trigger(ws), view=MODAL)
    assert error_of(lambda: client.views_push(trigger_id=trigger(ws), view=MODAL)) == "push_limit_reached"
    assert len(ws.views_for("U_DEV")) == 3

    new = dict(MODAL, title={"type": "plain_text", "text": "T2"})
    updated = client.views_update(view_id=root["id"], hash=root["hash"], view=new)["view"]
    assert updated["id"] == root["id"] and updated["hash"] != root["hash"]
    assert error_of(lambda: client.views_update(view_id=root["id"], hash=root["hash"], view=new)) == "hash_conflict"

    home = {"type": "home", "blocks": [{"type": "divider"}]}
    client.views_publish(user_id="U_DEV", view=home)
    assert ws.home("U_DEV").blocks[0]["type"] == "divider"
    too_big = {"type": "home", "blocks": [{"type": "divider"}] * 101}
    assert error_of(lambda: client.views_publish(user_id="U_DEV", view=too_big)) == "invalid_arguments"


def test_rate_limit_is_retried_by_slack_sdk(ws):
    client = WebClient(token=ws.bot_token, base_url=ws.api_url,
                       retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    ws.script("chat.postMessage", status=429, retry_after=0, times=1)
    started = time.monotonic()
    assert client.chat_postMessage(channel="C_ML", text="eventually")["ok"]
    assert time.monotonic() - started < 2
    assert [c.status for c in ws.calls_to("chat.postMessage")] == [429, 200]

    ws.script("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as info:
        WebClient(token=ws.bot_token, base_url=ws.api_url).chat_postMessage(channel="C_ML", text="x")
    assert info.value.response.status_code == 429 and info.value.response.headers["Retry-After"] == "7"

    ws.script("views.open", error="expired_trigger_id")
    assert error_of(lambda: client.views_open(trigger_id="whatever", view=MODAL)) == "expired_trigger_id"


def test_rapid_posts_are_flagged_not_refused(ws, client):
    client.chat_postMessage(channel="C_ML", text="a")
    client.chat_postMessage(channel="C_ML", text="b")
    assert [v.channel for v in ws.rate_violations] == ["C_ML"]


def test_files_upload_v2_end_to_end(ws, client):
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    result = client.files_upload_v2(channel="C_ML", content=png, filename="spend.png", title="Spend",
                                    initial_comment="daily spend")
    assert result["file"]["title"] == "Spend" and result["file"]["mimetype"] == "image/png"
    [posted] = ws.messages("C_ML")
    assert posted.text == "daily spend" and posted.files[0]["id"] == result["file"]["id"]
    with urllib.request.urlopen(result["file"]["url_private"]) as fetched:
        assert fetched.read() == png
    assert [c.method for c in ws.calls] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


def test_response_url_limits(ws, clock):
    ws.slash_command(user="U_DEV", channel="C_ML", text="x")
    hook = WebhookClient(ws.app.received[-1]["response_url"])
    for i in range(5):
        assert hook.send(text=f"update {i}").status_code == 200
    used = hook.send(text="one too many")
    assert (used.status_code, used.body) == (404, "used_url")
    assert [m.ephemeral_to for m in ws.messages("C_ML")] == ["U_DEV"] * 5

    ws.slash_command(user="U_DEV", channel="C_ML", text="x")
    late = WebhookClient(ws.app.received[-1]["response_url"])
    assert late.send(text="public", response_type="in_channel").status_code == 200
    assert ws.messages("C_ML")[-1].ephemeral_to is None
    clock.advance(minutes=31)
    expired = late.send(text="too late")
    assert (expired.status_code, expired.body) == (404, "expired_url")


def test_calls_record_params_and_token(ws, client):
    client.chat_postMessage(channel="C_ML", text="hello")
    [call] = ws.calls_to("chat.postMessage")
    assert call.params == {"channel": "C_ML", "text": "hello"} and call.token == "xoxb-local"
    assert call.response["ok"] is True


def test_wait_for_explains_a_timeout(ws):
    with pytest.raises(AssertionError, match="wait_for timed out"):
        ws.wait_for(lambda: ws.messages("C_ML"), timeout=0.1)


def test_httpx_get_with_query_params(ws):
    r = httpx.get(f"{ws.api_url}users.info", params={"user": "U_DEV", "token": ws.bot_token})
    assert r.json()["user"]["name"] == "dev"
