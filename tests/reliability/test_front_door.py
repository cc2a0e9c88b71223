"""The HTTP front door under hostile and broken clients, over real sockets on 127.0.0.1.

Each class of problem has the case that was reproduced plus adversarial variants of it:

- slow clients (slowloris): a half-sent request must neither hold a thread forever nor count as
  a request being answered (which holds back the work after every other request's ack);
- request framing (desync): a body the server did not read must never be parsed as further
  requests on a kept-alive connection;
- nesting: a signed body nested 50,000 deep must be answered 400, never crash the handler;
- Slack's probes: ``ssl_check`` and ``url_verification`` answered as Bolt answers them;
- teams: a request signed with the right secret but from another team or organisation is
  refused 403 and runs nothing;
- re-deliveries: the same command, click or event delivered again (re-signed, with
  ``X-Slack-Retry-Num``) runs once, also across a restart.

Timeouts are lowered per test (``monkeypatch``), so no test waits out a real window.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from urllib.parse import quote, urlencode

import pytest

from storage.db import Database
from tests.harness import CHANNEL, SIGNING_SECRET, start_stack

MODEL = "llama-v3p1-8b-instruct"
SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 2  # two requests hidden in a body
_ids = itertools.count(1)


# -- building requests ----------------------------------------------------------------------------

def new_trigger() -> str:
    return f"{time.time_ns()}.{next(_ids)}.frontdoor"


def command_body(ws, text: str, user: str = "U_DEV", team: str | None = None,
                 enterprise: str | None = None, trigger: str | None = None) -> tuple[bytes, str]:
    """A slash command as Slack sends it; ``team=""`` leaves the team out."""
    response_url = ws.new_response_url(user, CHANNEL)
    fields = {"token": "x", "team_id": ws.team_id if team is None else team, "team_domain": "local",
              "channel_id": CHANNEL, "channel_name": "ml-platform", "user_id": user, "user_name": "dev",
              "command": "/fw", "text": text, "response_url": response_url,
              "trigger_id": trigger or new_trigger()}
    if enterprise:
        fields["enterprise_id"] = enterprise
    return urlencode({k: v for k, v in fields.items() if v}).encode(), response_url


def click_payload(ws, action_id: str = "confirm_cancel", value: str = "x", user: str = "U_DEV",
                  team: str | None = None, user_team: str | None = None, **extra) -> dict:
    payload = {"type": "block_actions", "user": {"id": user, "name": "dev", "team_id": user_team or ws.team_id},
               "team": {"id": team or ws.team_id, "domain": "local"}, "api_app_id": "A0FWBOT", "token": "x",
               "trigger_id": new_trigger(), "response_url": ws.new_response_url(user, CHANNEL),
               "channel": {"id": CHANNEL}, "container": {"type": "message", "channel_id": CHANNEL,
                                                         "message_ts": "1.0", "is_ephemeral": True},
               "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value,
                            "action_ts": str(time.time())}]}
    payload.update(extra)
    return payload


def form(payload: dict | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return ("payload=" + quote(text)).encode()


def event_body(ws, event: dict, team: str | None = None, event_id: str | None = None, **extra) -> bytes:
    envelope = {"token": "x", "team_id": team or ws.team_id, "api_app_id": "A0FWBOT", "event": event,
                "type": "event_callback", "event_id": event_id or f"Ev{time.time_ns()}", "event_time": int(time.time()),
                "authorizations": [{"enterprise_id": None, "team_id": team or ws.team_id, "user_id": "U0FWBOT",
                                    "is_bot": True, "is_enterprise_install": False}]}
    envelope.update(extra)
    return json.dumps(envelope).encode()


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def http(body: bytes = b"", headers: list[tuple[str, str]] | dict | None = None, *, method: str = "POST",
         path: str = "/slack/events", length: bool = True) -> bytes:
    """One HTTP/1.1 request, exactly as written (duplicate headers allowed)."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in items]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Conn:
    """A raw keep-alive connection to the bot; reads responses one at a time."""

    def __init__(self, stack, timeout: float = 2.0) -> None:
        host, port = stack.bot.http.server_address[:2]
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, dict[str, str], bytes] | None:
        """The next response; ``None`` when the server closed the connection."""
        line = self.reader.readline()
        if not line:
            return None
        fields = line.split()
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else -1  # -1: not a status line
        headers: dict[str, str] = {}
        while (h := self.reader.readline()) not in (b"\r\n", b"\n", b""):
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length") or 0)
        return status, headers, self.reader.read(n) if n else b""

    def all_responses(self) -> tuple[list[tuple[int, dict[str, str], bytes]], bool]:
        """Every response until the server closes (True) or goes quiet for the timeout (False)."""
        out = []
        try:
            while (r := self.response()) is not None:
                out.append(r)
        except (TimeoutError, ConnectionResetError):
            return out, False
        return out, True

    def closed_within(self, seconds: float) -> bool:
        """Whether the server closes this connection within ``seconds`` (reading what it sends)."""
        self.sock.settimeout(seconds)
        try:
            while self.sock.recv(4096):
                pass
            return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def signed(ws, body: bytes, **kw) -> dict[str, str]:
    return {k: v for k, v in ws.signed_headers(body, **kw).items() if k != "User-Agent"}


def effects(stack) -> dict[str, int]:
    with stack.sim.state.lock:
        fireworks_calls = len(stack.sim.state.requests)
    return {"fireworks calls": fireworks_calls, "slack calls": len(stack.ws.calls),
            "audit rows": stack.services.store.db.scalar("SELECT COUNT(*) FROM audit")}


@pytest.fixture
def door(module_stack, monkeypatch):
    """The module's stack with short connection limits (restored after the test)."""
    http_server = module_stack.bot.http
    for name, value in (("idle_timeout_s", 0.6), ("header_timeout_s", 0.6), ("body_timeout_s", 0.6)):
        monkeypatch.setattr(http_server, name, value, raising=False)
    return module_stack


# -- 9. slow clients ------------------------------------------------------------------------------

def test_a_half_sent_body_neither_counts_as_being_answered_nor_slows_replies(door, errors):
    """Headers sent, the body never finished: other people's replies come at once, not after the
    ack gate's 1 s wait, because the body is read before the request counts as being answered."""
    door.bot.http.body_timeout_s = 30  # the slow client stays for the whole test
    slow = Conn(door)
    slow.send(http(b"x" * 10, {"Content-Length": "1000", "Content-Type": "application/json"}, length=False))
    try:
        time.sleep(0.15)  # the server has the headers and waits for the body
        assert door.services.acks._acking == 0
        took = []
        for _ in range(3):
            seen = len(door.ephemerals("U_ADMIN"))
            started = time.monotonic()
            assert door.fw("list mine", user="U_ADMIN").status == 200
            door.ws.wait_for(lambda s=seen: len(door.ephemerals("U_ADMIN")) > s, timeout=5, interval=0.005)
            took.append(time.monotonic() - started)
        assert min(took) < 0.7, took  # the old front door: every one >= 1 s
    finally:
        slow.close()
    assert errors.take() == []


def test_a_trickled_body_is_cut_off_at_the_body_deadline(door):
    conn = Conn(door, timeout=3)
    started = time.monotonic()
    conn.send(http(b"", {"Content-Length": "100", "Content-Type": "application/json"}, length=False))
    for _ in range(15):  # a byte every 0.1 s: each read is quick, the whole body never is
        try:
            conn.send(b"{")
        except OSError:
            break
        time.sleep(0.1)
    status, headers, _ = conn.response()
    assert status == 408 and headers.get("connection") == "close"
    assert conn.closed_within(1.0)
    assert time.monotonic() - started < 2.5
    conn.close()


def test_headers_never_finished_are_cut_off_at_the_header_deadline(door):
    conn = Conn(door, timeout=3)
    conn.send(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    for _ in range(5):  # header lines trickled, never the blank line
        conn.send(b"X-Slow: 1\r\n")
        time.sleep(0.1)
    assert conn.closed_within(1.5)
    conn.close()


def test_an_idle_keep_alive_connection_is_closed(door):
    conn = Conn(door, timeout=3)
    conn.send(http(method="GET", path="/healthz", length=False))
    status, _, _ = conn.response()
    assert status == 200
    assert conn.closed_within(1.5)
    conn.close()


def test_connections_past_the_limit_are_answered_503_at_once(door, monkeypatch):
    http_server = door.bot.http
    door.ws.wait_for(lambda: getattr(http_server, "_open", 0) == 0, timeout=5)
    monkeypatch.setattr(http_server, "idle_timeout_s", 5.0, raising=False)
    monkeypatch.setattr(http_server, "max_connections", 3, raising=False)
    idle = [Conn(door) for _ in range(3)]
    try:
        door.ws.wait_for(lambda: getattr(http_server, "_open", 3) == 3, timeout=2)
        extra = Conn(door)
        extra.send(http(method="GET", path="/healthz", length=False))
        status, headers, _ = extra.response()
        assert status == 503 and headers.get("connection") == "close"
        extra.close()
    finally:
        for c in idle:
            c.close()
    door.ws.wait_for(lambda: getattr(http_server, "_open", 0) == 0, timeout=3)
    again = Conn(door)
    again.send(http(method="GET", path="/healthz", length=False))
    assert again.response()[0] == 200
    again.close()


def test_slow_clients_do_not_delay_acks(door):
    door.bot.http.body_timeout_s = 30
    door.bot.http.header_timeout_s = 30
    slow = [Conn(door) for _ in range(4)]
    for i, c in enumerate(slow):
        c.send(http(b"x", {"Content-Length": "50"}, length=False) if i % 2 else b"POST /slack/events HTTP/1.1\r\n")
    try:
        delivery = door.fw("help")
        assert delivery.status == 200 and delivery.elapsed < 1.0
    finally:
        for c in slow:
            c.close()


# -- 10. framing and desync -----------------------------------------------------------------------

DESYNC_CASES = {
    "body too large (413)": ([("Content-Length", "2000000")], SMUGGLED, 413),
    "negative Content-Length": ([("Content-Length", "-5")], SMUGGLED, 400),
    "non-numeric Content-Length": ([("Content-Length", "abc")], SMUGGLED, 400),
    "Content-Length with an underscore (int() takes 1_0)": ([("Content-Length", "1_0")], SMUGGLED, 400),
    "two Content-Lengths": ([("Content-Length", "0"), ("Content-Length", str(len(SMUGGLED)))], SMUGGLED, 400),
    "no Content-Length": ([], SMUGGLED, 411),
    "chunked": ([("Transfer-Encoding", "chunked")],
                f"{len(SMUGGLED):x}\r\n".encode() + SMUGGLED + b"\r\n0\r\n\r\n", 411),
    "chunked and Content-Length 0 (CL.TE)": ([("Content-Length", "0"), ("Transfer-Encoding", "chunked")],
                                             f"{len(SMUGGLED):x}\r\n".encode() + SMUGGLED + b"\r\n0\r\n\r\n", 411),
    "Expect 100-continue, too large": ([("Content-Length", "2000000"), ("Expect", "100-continue")], SMUGGLED, 413),
}


@pytest.mark.parametrize("case", list(DESYNC_CASES))
def test_a_refused_body_is_never_read_as_further_requests(door, case):
    headers, body, status = DESYNC_CASES[case]
    conn = Conn(door, timeout=1.5)
    conn.send(http(body, headers, length=False))
    responses, closed = conn.all_responses()
    conn.close()
    assert [r[0] for r in responses] == [status], case
    assert responses[0][1].get("connection") == "close" and closed


@pytest.mark.parametrize("method, path", [("POST", "/elsewhere"), ("GET", "/healthz")])
def test_a_body_on_a_request_that_does_not_read_one_closes_the_connection(door, method, path):
    conn = Conn(door, timeout=1.5)
    conn.send(http(SMUGGLED, method=method, path=path))
    responses, closed = conn.all_responses()
    conn.close()
    assert len(responses) == 1 and closed


def test_pipelined_requests_on_one_connection_are_answered_in_order(door):
    """Content-Length is honoured on keep-alive: what follows a body is the next request."""
    ws = door.ws
    first, _ = command_body(ws, "help")
    second, _ = command_body(ws, "help lora")
    conn = Conn(door)
    conn.send(http(first, signed(ws, first)) + http(second, signed(ws, second))
              + http(method="GET", path="/healthz", length=False))
    answers = [conn.response() for _ in range(3)]
    conn.close()
    assert [a[0] for a in answers] == [200, 200, 200]
    assert b"lora" in answers[1][2] and json.loads(answers[2][2])["ok"] is True


# -- 11. nesting ----------------------------------------------------------------------------------

def _deep_cases(ws) -> dict[str, tuple[bytes, int]]:
    click = click_payload(ws)
    escaped = json.dumps(click)[:-1] + ',"x":"\\\\","y":' + nested(65) + "}"
    return {
        "JSON event nested 50,000 deep": (('{"type":"event_callback","x":' + nested(50_000) + "}").encode(), 400),
        "form payload nested 50,000 deep": (form(nested(50_000)), 400),
        "click nested 65 deep": (form({**click, "extra": json.loads(nested(64))}), 400),
        "a button value that is JSON nested 50,000 deep": (
            form({**click, "actions": [{**click["actions"][0], "action_id": "confirm_delete",
                                        "value": nested(50_000)}]}), 400),
        "view private_metadata nested 50,000 deep": (form({
            "type": "view_submission", "user": {"id": "U_DEV", "team_id": ws.team_id}, "team": {"id": ws.team_id},
            "trigger_id": new_trigger(), "view": {"id": "V0DEEP", "type": "modal", "callback_id": "deploy_modal",
                                                  "private_metadata": nested(50_000), "state": {"values": {}}}}), 400),
        "an escaped backslash before the nesting": (form(escaped), 400),
        "a JSON body sent as a form": (('{"type":"event_callback","x":' + nested(10_000) + "}").encode(), 400),
        "nested exactly 64 deep (allowed)": (form({**click, "extra": json.loads(nested(63))}), 200),
        "brackets inside strings (allowed)": (form({**click, "note": "x" + "[{" * 5000}), 200),
    }


@pytest.mark.parametrize("case", ["JSON event nested 50,000 deep", "form payload nested 50,000 deep",
                                  "click nested 65 deep",
                                  "a button value that is JSON nested 50,000 deep",
                                  "view private_metadata nested 50,000 deep",
                                  "an escaped backslash before the nesting", "a JSON body sent as a form",
                                  "nested exactly 64 deep (allowed)", "brackets inside strings (allowed)"])
def test_deeply_nested_signed_bodies_are_answered_400(door, errors, case):
    ws = door.ws
    body, status = _deep_cases(ws)[case]
    headers = signed(ws, body)
    if case == "a JSON body sent as a form":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = Conn(door, timeout=5)
    conn.send(http(body, headers))
    answer = conn.response()
    conn.close()
    assert answer is not None, "no answer at all"
    assert answer[0] == status, (case, answer)
    if status == 400:
        assert json.loads(answer[2]) == {"error": "malformed request"}
    time.sleep(0.2)  # a listener that raised would have logged by now
    assert errors.take() == []


# -- 12. Slack's probes ---------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["unsigned", "signed", "wrong signature"])
def test_ssl_check_is_answered_200_as_bolt_does(door, how):
    ws = door.ws
    body = b"ssl_check=1&token=x"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if how == "signed":
        headers = signed(ws, body)
    elif how == "wrong signature":
        headers = signed(ws, body, secret="not-the-secret")
    before = effects(door)
    delivery = ws.send_raw(body, headers)
    assert (delivery.status, delivery.body) == (200, "")
    assert effects(door) == before


def test_url_verification_is_answered_with_its_challenge_when_signed(door):
    ws = door.ws
    body = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"}).encode()
    delivery = ws.send_raw(body, signed(ws, body))
    assert delivery.status == 200
    assert delivery.json == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert delivery.headers.get("Content-Type", "").startswith("application/json")
    assert ws.send_raw(body, {"Content-Type": "application/json"}).status == 401


# -- 13. teams ------------------------------------------------------------------------------------

def _foreign_requests(ws) -> dict[str, bytes]:
    return {
        "/fw list all from another team": command_body(ws, "list all", team="T0STRANGER")[0],
        "/fw deploy from another team": command_body(
            ws, f"deploy {MODEL} --deployment-id stranger-{time.time_ns() % 10**6}", team="T0STRANGER")[0],
        "/fw with no team": command_body(ws, "list all", team="")[0],
        "/fw from an enterprise not allowed": command_body(ws, "list all", team="T0STRANGER",
                                                          enterprise="E0STRANGER")[0],
        "click from another team": form(click_payload(ws, team="T0STRANGER", user_team="T0STRANGER")),
        "click by a user of another team": form(click_payload(ws, user_team="T0STRANGER")),
        "click with no team": form({k: v for k, v in click_payload(ws).items() if k != "team"}
                                   | {"user": {"id": "U_DEV"}}),
        "event from another team": event_body(ws, {"type": "app_home_opened", "user": "U_DEV", "tab": "home"},
                                              team="T0STRANGER"),
    }


def test_requests_from_other_teams_are_refused_403_and_run_nothing(door, errors):
    ws = door.ws
    door.services.wait_work_done(5)
    statuses = {}
    before = effects(door)
    for name, body in _foreign_requests(ws).items():
        statuses[name] = ws.send_raw(body, signed(ws, body)).status
    time.sleep(0.3)  # anything a request had started would have reached Slack or Fireworks by now
    assert {k: v for k, v in statuses.items() if v != 403} == {}
    assert effects(door) == before
    assert errors.take() == []
    # the installed team, learned from auth.test, is served
    body, _ = command_body(ws, "help")
    assert ws.send_raw(body, signed(ws, body)).status == 200


@pytest.fixture(scope="module")
def org_stack(tmp_path_factory):
    """A bot serving its own team and one whole Enterprise Grid organisation (FWBOT_ALLOWED_TEAMS)."""
    from tests.harness import clean_env

    clean_env()
    s = start_stack(tmp_path_factory.mktemp("org"), env={"FWBOT_ALLOWED_TEAMS": "T0LOCAL, E0ALLOWED"})
    yield s
    s.stop()


@pytest.mark.parametrize("team, enterprise, status", [
    ("T0OTHER", "E0ALLOWED", 200),  # any workspace of an allowed organisation
    ("T0OTHER", "E0EVIL", 403),  # an organisation not allowed
    ("T0OTHER", None, 403),  # a team not allowed
    ("", "E0EVIL", 403),  # an org-wide request of an organisation not allowed
    ("T0LOCAL", "E0GRID", 200),  # an allowed workspace, which is part of an organisation (Grid)
])
def test_the_allow_list_of_teams_and_enterprises(org_stack, team, enterprise, status):
    ws = org_stack.ws
    body, _ = command_body(ws, "help", team=team, enterprise=enterprise)
    assert ws.send_raw(body, signed(ws, body)).status == status


def test_the_allowed_teams_setting_takes_ids_only(monkeypatch, errors):
    """Comma-separated like FWBOT_ADMINS; an entry that is not an id (a domain, a name) allows
    nothing and is said so at start-up, loudly."""
    from bot.app.http import TeamGate
    from bot.core.settings import Settings

    monkeypatch.delenv("FWBOT_ALLOWED_TEAMS", raising=False)
    assert Settings(_env_file=None, FWBOT_ALLOWED_TEAMS=" T012AB, E0ORG ,").allowed_teams == ["T012AB", "E0ORG"]
    assert Settings(_env_file=None).allowed_teams == []
    gate = TeamGate(Settings(_env_file=None, FWBOT_ALLOWED_TEAMS="T012AB,acme.slack.com").allowed_teams)
    assert "acme.slack.com" in " ".join(errors.take())
    assert gate.refusal({"team_id": "T012AB"}) is None
    assert gate.refusal({"team_id": "acme.slack.com"}) is not None
    nothing = TeamGate(["acme"])
    assert not nothing.known and nothing.refusal({"team_id": "acme"}) is not None
    assert len(errors.take()) == 2


def test_when_auth_test_fails_at_start_nothing_is_served_until_it_answers(module_stack, monkeypatch, errors):
    from bot.app.http import BotHTTPServer, TeamGate

    monkeypatch.setattr(TeamGate, "retry_first_s", 0.8)
    ws = module_stack.ws
    answers = [RuntimeError("auth.test: service unavailable"), {"ok": True, "team_id": ws.team_id}]

    def auth_test():
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    server = BotHTTPServer(("127.0.0.1", 0), module_stack.bot.app, module_stack.services, module_stack.bot.metrics,
                           signing_secret=SIGNING_SECRET, allowed_teams=[], auth_test=auth_test)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    saved = ws.events_url
    ws.events_url = "http://{}:{}/slack/events".format(*server.server_address[:2])
    try:
        body, _ = command_body(ws, "help")
        assert ws.send_raw(body, signed(ws, body)).status == 403
        logged = errors.take()
        assert len(logged) == 1 and "auth.test" in logged[0] and "refused" in logged[0]
        ws.wait_for(lambda: server.teams.known, timeout=3)
        body, _ = command_body(ws, "help")
        assert ws.send_raw(body, signed(ws, body)).status == 200
    finally:
        ws.events_url = saved
        server.shutdown()
        server.server_close()


# -- 14. re-deliveries ----------------------------------------------------------------------------

def creates(stack) -> int:
    return stack.sim.state.count_requests("POST", r".*/deployments")


def retry_headers(ws, body: bytes, n: int) -> dict[str, str]:
    """What a retrying sender adds: a fresh signature (another timestamp than the first delivery's,
    which was signed within the last minute) and the retry's number."""
    return {**signed(ws, body, timestamp=int(time.time()) - 60 - n), "X-Slack-Retry-Num": str(n),
            "X-Slack-Retry-Reason": "http_timeout"}


def test_a_slash_command_re_delivered_runs_once(door, errors):
    ws = door.ws
    dep_id = f"retried-{time.time_ns() % 10**8}"
    body, response_url = command_body(ws, f"deploy {MODEL} --deployment-id {dep_id} --max-replica-count 1")
    assert ws.send_raw(body, signed(ws, body)).status == 200
    ws.wait_for(lambda: door.services.store.deployment(dep_id))
    door.services.wait_work_done(5)
    before, answers = creates(door), ws.response_url_uses(response_url)
    for n in (1, 2):  # two retries, each with its own number and signature
        again = ws.send_raw(body, retry_headers(ws, body, n))
        assert (again.status, again.body) == (200, "")
    time.sleep(0.4)
    door.services.wait_work_done(5)
    assert (creates(door), ws.response_url_uses(response_url)) == (before, answers)
    assert errors.take() == []


def test_a_click_re_delivered_runs_once(door):
    ws = door.ws
    payload = click_payload(ws, action_id="confirm_cancel")
    body = form(payload)
    assert ws.send_raw(body, signed(ws, body)).status == 200
    ws.wait_for(lambda: ws.response_url_uses(payload["response_url"]) >= 1)
    again = ws.send_raw(body, retry_headers(ws, body, 1))
    assert (again.status, again.body) == (200, "")
    time.sleep(0.3)
    assert ws.response_url_uses(payload["response_url"]) == 1


def test_an_event_re_delivered_with_the_same_event_id_runs_once(door):
    ws = door.ws
    publishes = lambda: len([c for c in ws.calls_to("views.publish") if c.params.get("user_id") == "U_ADMIN"])  # noqa: E731
    before = publishes()
    event = {"type": "app_home_opened", "user": "U_ADMIN", "channel": "D0ADMIN", "tab": "home",
             "event_ts": str(time.time())}
    body = event_body(ws, event, event_id=f"Ev{time.time_ns()}")
    assert ws.send_raw(body, signed(ws, body)).status == 200
    ws.wait_for(lambda: publishes() > before)
    for n in (1, 2):
        again = ws.send_raw(body, retry_headers(ws, body, n))
        assert (again.status, again.body) == (200, "")
    # the same event id in a different envelope (another event_time): still the same event
    other = event_body(ws, event, event_id=json.loads(body)["event_id"], event_time=1)
    assert ws.send_raw(other, signed(ws, other)).body == ""
    time.sleep(0.4)
    assert publishes() == before + 1


def test_a_request_without_ids_is_recognised_by_its_body(door):
    """No event id, no trigger id: the same body again (re-signed) is the same request."""
    ws = door.ws
    payload = {k: v for k, v in click_payload(ws, action_id="confirm_cancel").items() if k != "trigger_id"}
    body = form(payload)
    assert ws.send_raw(body, signed(ws, body)).status == 200
    ws.wait_for(lambda: ws.response_url_uses(payload["response_url"]) >= 1)
    again = ws.send_raw(body, retry_headers(ws, body, 1))
    assert (again.status, again.body) == (200, "")
    time.sleep(0.3)
    assert ws.response_url_uses(payload["response_url"]) == 1


def test_distinct_requests_with_the_same_text_both_run(door):
    """Two people (or one, twice) asking the same thing are two requests: each has its own trigger."""
    ws = door.ws
    seen = len(door.ephemerals("U_OTHER"))
    for _ in range(2):
        body, _ = command_body(ws, "list mine", user="U_OTHER")
        delivery = ws.send_raw(body, signed(ws, body))
        assert delivery.status == 200
    ws.wait_for(lambda: len(door.ephemerals("U_OTHER")) >= seen + 2, timeout=5)


def test_receipts_are_durable_across_a_restart(tmp_path, errors):
    first = start_stack(tmp_path)
    ws = first.ws
    try:
        dep_id = "after-restart"
        body, _ = command_body(ws, f"deploy {MODEL} --deployment-id {dep_id} --max-replica-count 1")
        assert ws.send_raw(body, signed(ws, body)).status == 200
        ws.wait_for(lambda: first.services.store.deployment(dep_id))
        first.services.wait_work_done(5)
        before = creates(first)
        first.bot.stop()
        db = Database(first.db_path)
        keys = [k for (k,) in db.rows("SELECT key FROM request_receipts")]
        db.close()
        assert any(k.startswith("trigger:") for k in keys)
        second = start_stack(tmp_path, sim=first.sim, ws=ws, db_path=first.db_path)
        try:
            again = ws.send_raw(body, retry_headers(ws, body, 1))
            assert (again.status, again.body) == (200, "")
            time.sleep(0.3)
            assert creates(second) == before
        finally:
            second.bot.stop()
    finally:
        ws.stop()
        first.sim.stop()
    assert errors.take() == []
