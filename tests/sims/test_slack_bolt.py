"""A real Bolt app, served over HTTP, driven by the local Slack workspace with signed requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient

from sims.slack import BOT_USER_ID, SlackWorkspace

SECRET = "local-signing-secret"

DEPLOY_MODAL = {
    "type": "modal",
    "callback_id": "deploy_form",
    "title": {"type": "plain_text", "text": "Deploy"},
    "submit": {"type": "plain_text", "text": "Deploy"},
    "notify_on_close": True,
    "blocks": [
        {"type": "input", "block_id": "model", "label": {"type": "plain_text", "text": "Model"},
         "element": {"type": "plain_text_input", "action_id": "value"}},
        {"type": "input", "block_id": "gpu", "label": {"type": "plain_text", "text": "GPU"},
         "element": {"type": "static_select", "action_id": "value", "options": [
             {"text": {"type": "plain_text", "text": "H100"}, "value": "NVIDIA_H100_80GB"},
             {"text": {"type": "plain_text", "text": "A100"}, "value": "NVIDIA_A100_80GB"}]}},
        {"type": "input", "block_id": "replicas", "optional": True, "label": {"type": "plain_text", "text": "Replicas"},
         "element": {"type": "number_input", "action_id": "value", "is_decimal_allowed": False}},
    ],
}


def build_app(client: WebClient) -> App:
    app = App(client=client, signing_secret=SECRET)

    @app.command("/fw")
    def fw(ack, command, client, respond):
        text = command["text"]
        if text == "modal":
            client.views_open(trigger_id=command["trigger_id"], view=DEPLOY_MODAL)
            ack()
        elif text.startswith("deploy"):
            ack(text=f"Requesting {text.split()[-1]}…")
            client.chat_postMessage(channel=command["channel_id"], text="Approve?", blocks=[
                {"type": "section", "text": {"type": "mrkdwn", "text": f"<@{command['user_id']}> wants a deployment"}},
                {"type": "actions", "block_id": "decide", "elements": [
                    {"type": "button", "action_id": "approve", "value": "dep-1", "style": "primary",
                     "text": {"type": "plain_text", "text": "Approve"}},
                    {"type": "button", "action_id": "reject", "value": "dep-1", "style": "danger",
                     "text": {"type": "plain_text", "text": "Reject"}}]}])
        elif text == "public":
            ack(response_type="in_channel", text="everyone sees this")
        elif text == "later":
            ack()
            respond(text="done, later")
        else:
            ack(text=f"unknown: {text}")

    @app.action("approve")
    def approve(ack, body, client, action):
        ack()
        client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"],
                           text=f"approved {action['value']} by <@{body['user']['id']}>", blocks=[])

    @app.action("reject")
    def reject(ack, respond):
        ack()
        respond(replace_original=True, text="rejected")

    @app.view("deploy_form")
    def submit(ack, view, body, client):
        values = view["state"]["values"]
        replicas = values["replicas"]["value"]["value"]
        if replicas is not None and int(replicas) > 4:
            ack(response_action="errors", errors={"replicas": "At most 4 replicas."})
            return
        ack()
        gpu = values["gpu"]["value"]["selected_option"]["value"]
        client.chat_postMessage(channel=body["user"]["id"],
                                text=f"deploying {values['model']['value']['value']} on {gpu}")

    @app.view_closed("deploy_form")
    def closed(ack, body, client):
        ack()
        client.chat_postMessage(channel=body["user"]["id"], text="cancelled")

    @app.event("app_home_opened")
    def home(event, client):
        client.views_publish(user_id=event["user"], view={"type": "home", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Your deployments"}}]})

    return app


class BoltHTTP:
    """The smallest HTTP adapter: raw body and headers straight into ``app.dispatch``."""

    def __init__(self, app: App) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                headers = {k.lower(): [v] for k, v in self.headers.items()}
                response = outer.app.dispatch(BoltRequest(body=raw, query=urlsplit(self.path).query, headers=headers))
                body = (response.body or "").encode()
                self.send_response(response.status)
                for key, values in response.headers.items():
                    for value in values:
                        if key.lower() != "content-length":
                            self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.app = app
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ws(monkeypatch) -> Iterator[SlackWorkspace]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    workspace = SlackWorkspace(signing_secret=SECRET)
    workspace.start()
    workspace.add_user("U_DEV", "dev", real_name="Dana Dev", tz="Europe/Berlin")
    workspace.add_user("U_APPROVER", "approver", real_name="Alex Approver")
    workspace.add_channel("C_ML", "ml-platform")
    yield workspace
    workspace.stop()


@pytest.fixture
def bolt(ws: SlackWorkspace) -> Iterator[BoltHTTP]:
    server = BoltHTTP(build_app(WebClient(token=ws.bot_token, base_url=ws.api_url)))
    ws.events_url = server.url
    yield server
    server.stop()


def test_app_construction_calls_auth_test(ws, bolt):
    assert [c.method for c in ws.calls] == ["auth.test"]
    assert ws.calls[0].token == "xoxb-local"


def test_slash_command_is_verified_and_its_ack_is_shown_ephemerally(ws, bolt):
    r = ws.slash_command(user="U_DEV", channel="C_ML", text="frobnicate")
    assert r.status == 200
    assert r.body == "unknown: frobnicate"  # Bolt acks plain text as text/plain
    assert r.elapsed < 3
    [shown] = ws.messages("C_ML")
    assert shown.ephemeral_to == "U_DEV"
    assert shown.text == "unknown: frobnicate"
    assert shown.user == BOT_USER_ID


def test_in_channel_ack_is_public(ws, bolt):
    ws.slash_command(user="U_DEV", channel="C_ML", text="public")
    [shown] = ws.messages("C_ML")
    assert shown.ephemeral_to is None and shown.text == "everyone sees this"


def test_button_click_reaches_the_app_and_it_updates_the_message(ws, bolt):
    ws.slash_command(user="U_DEV", channel="C_ML", text="deploy llama-v3p1-8b-instruct")
    request = ws.wait_for(lambda: [m for m in ws.messages("C_ML") if m.blocks])[0]
    assert "<@U_DEV>" in request.blocks[0]["text"]["text"]

    r = ws.click(user="U_APPROVER", channel="C_ML", ts=request.ts, action_id="approve")
    assert r.status == 200
    payload = r.payload
    assert payload["type"] == "block_actions"
    assert payload["actions"][0] | {"action_ts": None} == {
        "action_id": "approve", "block_id": "decide", "type": "button", "value": "dep-1", "style": "primary",
        "text": {"type": "plain_text", "text": "Approve"}, "action_ts": None}
    assert payload["container"]["message_ts"] == request.ts
    assert payload["message"]["ts"] == request.ts
    assert payload["response_url"].startswith(ws.url + "/webhook/")

    updated = ws.wait_for(lambda: ws.message("C_ML", request.ts).edited and ws.message("C_ML", request.ts))
    assert updated.text == "approved dep-1 by <@U_APPROVER>"
    assert updated.blocks == []


def test_respond_replace_original_goes_through_the_response_url(ws, bolt):
    ws.slash_command(user="U_DEV", channel="C_ML", text="deploy x")
    request = ws.wait_for(lambda: [m for m in ws.messages("C_ML") if m.blocks])[0]
    ws.click(user="U_APPROVER", channel="C_ML", ts=request.ts, action_id="reject")
    assert ws.wait_for(lambda: ws.message("C_ML", request.ts).text == "rejected")


def test_respond_after_ack_posts_an_ephemeral_follow_up(ws, bolt):
    ws.slash_command(user="U_DEV", channel="C_ML", text="later")
    shown = ws.wait_for(lambda: [m for m in ws.messages("C_ML") if m.text == "done, later"])[0]
    assert shown.ephemeral_to == "U_DEV"


def test_modal_validation_errors_keep_it_open_then_a_good_submit_closes_it(ws, bolt):
    ws.slash_command(user="U_DEV", channel="C_ML", text="modal")
    [modal] = ws.views_for("U_DEV")
    assert modal.view["callback_id"] == "deploy_form"
    assert modal.id.startswith("V")

    r = ws.submit_view(user="U_DEV", view_id=modal.id, values={"model": {"value": "llama"}})
    assert r.status == 0 and r.errors == {"gpu": "Please complete this required field."}  # never sent

    r = ws.submit_view(user="U_DEV", view_id=modal.id, values={
        "model": {"value": "llama"}, "gpu": {"value": "NVIDIA_H100_80GB"}, "replicas": {"value": "9"}})
    assert r.status == 200
    assert r.json == {"response_action": "errors", "errors": {"replicas": "At most 4 replicas."}}
    assert ws.view(modal.id).errors == {"replicas": "At most 4 replicas."}
    assert [v.id for v in ws.views_for("U_DEV")] == [modal.id]

    r = ws.submit_view(user="U_DEV", view_id=modal.id, values={"replicas": {"value": "2"}})
    assert r.status == 200 and r.body == ""
    assert ws.views_for("U_DEV") == []
    dm = ws.dm_channel("U_DEV")
    assert ws.wait_for(lambda: [m.text for m in ws.messages(dm)]) == ["deploying llama on NVIDIA_H100_80GB"]


def test_closing_a_modal_sends_view_closed(ws, bolt):
    ws.slash_command(user="U_DEV", channel="C_ML", text="modal")
    [modal] = ws.views_for("U_DEV")
    r = ws.close_view("U_DEV", modal.id)
    assert r is not None and r.status == 200
    assert ws.views_for("U_DEV") == []
    assert ws.wait_for(lambda: [m.text for m in ws.messages("U_DEV")]) == ["cancelled"]


def test_app_home_opened_event_publishes_home(ws, bolt):
    r = ws.open_home("U_DEV")
    assert r is not None and r.status == 200
    home = ws.wait_for(lambda: ws.home("U_DEV"))
    assert home.view["blocks"][0]["text"]["text"] == "Your deployments"


def test_wrong_signing_secret_is_rejected_by_bolt(ws, bolt):
    impostor = SlackWorkspace(signing_secret="not-the-secret")
    impostor.start()
    try:
        impostor.add_user("U_DEV", "dev")
        impostor.add_channel("C_ML", "ml-platform")
        impostor.events_url = bolt.url
        r = impostor.slash_command(user="U_DEV", channel="C_ML", text="deploy x")
        assert r.status == 401
        assert r.json == {"error": "invalid request"}
        [failure] = impostor.messages("C_ML")
        assert failure.text == '/fw failed with the error "dispatch_failed"'
    finally:
        impostor.stop()


@pytest.mark.parametrize("tamper", ["unsigned", "altered", "old", "other_secret"])
def test_forged_requests_get_401(ws, bolt, tamper):
    body = b"token=x&team_id=T0LOCAL&user_id=U_DEV&command=%2Ffw&text=public&channel_id=C_ML&trigger_id=1.2.3"
    headers = ws.signed_headers(body)
    if tamper == "unsigned":
        headers = {"Content-Type": headers["Content-Type"]}
    elif tamper == "altered":
        body = body.replace(b"public", b"deploy")
    elif tamper == "old":
        headers = ws.signed_headers(body, timestamp=int(time.time()) - 600)
    else:
        headers = ws.signed_headers(body, secret="guess")
    assert ws.send_raw(body, headers).status == 401
    assert ws.send_raw(body, ws.signed_headers(body)).status == 200  # the genuine one passes


def test_events_are_sent_as_json_envelopes(ws, bolt):
    r = ws.open_home("U_DEV")
    envelope = r.payload
    assert envelope["type"] == "event_callback"
    assert envelope["event"]["type"] == "app_home_opened"
    assert envelope["event"]["channel"] == ws.dm_channel("U_DEV")
    assert json.loads(json.dumps(envelope)) == envelope


def test_app_down_shows_dispatch_failed(ws):
    ws.events_url = "http://127.0.0.1:9/slack/events"
    r = ws.slash_command(user="U_DEV", channel="C_ML", text="x")
    assert r.status == 0 and r.error == "dispatch_failed"
    assert "failed with the error" in ws.messages("C_ML")[0].text
