"""Fuzzing the front door: strategies and the judge shared by the three fuzz modules.

Every case is a signed request into the running bot (never a call to the parser), from a user
seen for the first time (with a generated name), in a channel with a generated name. A case
passes when the bot answered below 500, logged nothing at ERROR, and the user got an answer they
can read: the ack itself, a post to the response_url, or a Web API call addressed to them.
Across test_fuzz_commands, test_fuzz_clicks and test_fuzz_views: at least 10,000 cases.
"""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from sims.slack.model import SLACKBOT_USER_ID
from tests.harness import message_text
from tests.reliability.conftest import ErrorWatcher

# How many cases each fuzz module runs; together at least 10,000 (the bar).
CASES = {"commands": 4000, "clicks": 3200, "submissions": 2800}
FIGURES: dict[str, int] = {}
BATCH = 8  # cases sent together per hypothesis example

# Fixed examples (derandomize) so CI is stable; no shrinking, so a failure costs seconds, not minutes
# (the failing case and its reproduce blob are printed as found).
FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))

VERBS = ["deploy", "list", "get", "status", "update", "scale", "delete", "undelete", "lora", "keep", "owner",
         "adopt", "cost", "budget", "audit", "models", "query", "help", "approvals", "load", "unload", "mine",
         "all", "DEPLOY", "Deploy", "dépl", "--help", "-h"]
FLAGS = ["--deployment-id", "--display-name", "--deployment-shape", "--min-replica-count", "--max-replica-count",
         "--accelerator-type", "--accelerator-count", "--world-size", "--scale-up-window", "--scale-down-window",
         "--scale-to-zero-window", "--unused-auto-delete-duration", "--load-targets", "--enable-addons",
         "--dry-run", "--hard", "--deployment", "--by", "--", "-", "--deployment-id=", "--min-replica-count=-1"]
NASTY = ["", "0", "-1", "1", "8", "201", "99999999999999999999999", "1e9", "NaN", "inf", "0x10", "10m", "1h30m",
         "-5s", "168h", "0s", "9999999h", "1ns", "h100", "NVIDIA_B200_180GB", "b200", "minimal", "throughput",
         "llama-v3p1-8b-instruct", "accounts/fireworks/models/llama-v3p1-8b-instruct",
         "accounts/x/models/../../y", "<@U_ADMIN>", "<@U_DEV|dana>", "<!channel>", "<!here>", "<#C0MLPLAT|ml>",
         "&lt;", "&amp;", "a" * 300, "\"", "'", "\"unterminated", "\\", "\n", "\t", "—", "🔥", "\u202e", "\u200b",
         "%s%s", "{}", "[]", "today", "week", "month", "owner", "channel", "deployment", "model", "k=v",
         "requests_per_second=", "x" * 64, "payload", "payload={}", "payload-api", "a-", "-a", "1abc", "dep-" + "z" * 60, "*bold*", "`code`", "```"]

token = st.one_of(
    st.sampled_from(VERBS), st.sampled_from(FLAGS), st.sampled_from(NASTY),
    st.text(max_size=24), st.from_regex(r"[a-z][a-z0-9-]{0,70}", fullmatch=True),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
)
command_text = st.one_of(
    st.text(max_size=300),
    st.lists(token, max_size=14).map(" ".join),
    st.tuples(st.sampled_from(VERBS), st.lists(token, max_size=12)).map(lambda t: " ".join([t[0], *t[1]])),
)
slack_name = st.one_of(st.text(min_size=1, max_size=80), st.sampled_from(
    ["x" * 80, "<script>", "&amp;<>", "@here", "#general", "🔥" * 20, "\u202eevil", "a b", ".", "payload",
     "payload=1"]))
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


class Fuzzer:
    """Drives one case at a time into the module's bot and judges the answer."""

    def __init__(self, stack, watcher: ErrorWatcher) -> None:
        self.stack, self.ws, self.watcher = stack, stack.ws, watcher
        self._ids = itertools.count(1)
        self.action_ids, self.callback_ids = listener_ids(stack.bot.app)
        self.pool = ThreadPoolExecutor(max_workers=BATCH, thread_name_prefix="fuzz")

    def new_user(self, name: str) -> str:
        uid = f"UF{next(self._ids):07d}"
        self.ws.add_user(uid, name, real_name=name)
        return uid

    def new_channel(self, name: str) -> str:
        cid = f"CF{next(self._ids):07d}"
        self.ws.add_channel(cid, name)
        return cid

    def send_interaction(self, payload: dict):
        body = ("payload=" + quote(json.dumps(payload, separators=(",", ":")))).encode()
        return self.ws.send_raw(body, self.ws.signed_headers(body))

    def judge(self, delivery, user: str, channel: str | None, response_url: str | None, calls_before: int,
              marks: tuple[str, ...] = ()) -> None:
        """``marks``: besides the user id, what a Web API answer to this case would carry (a trigger_id)."""
        assert delivery.status != 0, f"no answer within Slack's 3 s ({delivery.error})"
        assert delivery.status < 500, f"HTTP {delivery.status}: {delivery.body[:300]}"
        if delivery.status == 200 and delivery.body.strip():
            ack = delivery.json
            if isinstance(ack, dict) and (ack.get("text") or ack.get("blocks") or ack.get("errors")):
                readable = ack.get("text") or json.dumps(ack.get("errors") or ack.get("blocks"))
                assert readable.strip() and "Traceback" not in readable
                self.no_errors()
                return
        if delivery.status == 200:
            # The answer comes after the ack: wait for it, addressed to this user.
            def answered():
                if response_url and self.ws.response_url_uses(response_url):
                    return True
                for call in self.ws.calls[calls_before:]:
                    params = json.dumps(call.params, default=str)
                    if any(mark in params for mark in (user, *marks)):
                        return True
                return False

            self.ws.wait_for(answered, timeout=10, interval=0.003)
        if channel:
            for m in self.ws.messages(channel):
                if m.ephemeral_to == user:
                    text = message_text(m)
                    assert m.user != SLACKBOT_USER_ID, f"Slack showed an error: {text}"
                    assert text.strip() and ":boom:" not in text and "Traceback" not in text, text
        self.no_errors()

    def run_batch(self, kind: str, one, cases: list) -> None:
        """Send a batch of cases at once (as many people would), then judge every one."""
        FIGURES[kind] = FIGURES.get(kind, 0) + len(cases)
        def named(case):
            try:
                one(case)
            except AssertionError as e:
                raise AssertionError(f"case {json.dumps(case, default=repr)[:1500]}\n{e}") from None

        list(self.pool.map(named, cases))  # re-raises the first failing case's assertion

    def no_errors(self) -> None:
        logged = self.watcher.take()
        assert logged == [], logged


def listener_ids(app) -> tuple[list[str], list[str]]:
    """The action ids and callback ids the bot registered (read from Bolt's matchers)."""
    found: list[str] = []
    for listener in app._listeners:
        for matcher in listener.matchers:
            for cell in getattr(getattr(matcher, "func", None), "__closure__", None) or ():
                try:
                    value = cell.cell_contents
                except ValueError:
                    continue
                if isinstance(value, str) and not value.startswith("/") and value not in found:
                    found.append(value)
    return found, found


def action_value(draw) -> str | None:
    dep = draw(st.sampled_from(["", "x", "no-such-dep", "a" * 64, "../etc", "UPPER", "dep-1", "🔥"]))
    return draw(st.one_of(
        st.none(), st.text(max_size=60), st.just(dep),
        st.builds(json.dumps, st.fixed_dictionaries({"d": st.one_of(st.just(dep), anything)},
                                                    optional={"h": anything, "r": anything, "t": anything})),
        st.builds(json.dumps, anything),
        st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True),
    ))


@st.composite
def clicks(draw, action_ids):
    action_id = draw(st.one_of(st.sampled_from(action_ids), st.text(min_size=1, max_size=30)))
    action: dict = {"action_id": action_id, "block_id": draw(st.one_of(
        st.sampled_from(["model", "shape", "max", "b1"]), st.text(min_size=1, max_size=20))),
        "type": draw(st.sampled_from(["button", "static_select", "overflow", "plain_text_input"])),
        "action_ts": "1.2"}
    value = action_value(draw)
    if value is not None:
        action["value"] = value
    if draw(st.booleans()):
        action["selected_option"] = {"value": draw(st.text(max_size=30)), "text": {"type": "plain_text", "text": "x"}}
    in_view = draw(st.integers(0, 9)) == 0
    return action, in_view


form_text = st.one_of(st.sampled_from(NASTY), st.text(max_size=80),
                      st.integers(min_value=-10**20, max_value=10**20).map(str))


@st.composite
def deploy_form(draw) -> dict:
    """state.values as Slack sends them for the deploy modal, each field possibly hostile."""
    def select(options):
        value = draw(st.one_of(st.sampled_from(options), form_text))
        return {"type": "static_select", "selected_option": draw(st.one_of(
            st.just({"value": value}), st.none(), st.just({}), st.just({"value": None})))}

    def typed(kind):
        return {"type": kind, "value": draw(st.one_of(st.none(), form_text))}

    fields = {
        "model": select(["accounts/fireworks/models/llama-v3p1-8b-instruct", "accounts/fireworks/models/nope"]),
        "shape": select(["none", "minimal", "accounts/fireworks/deploymentShapes/x/versions/y"]),
        "acc_type": select(["NVIDIA_H100_80GB", "NVIDIA_B200_180GB", "TPU"]),
        "acc_count": typed("number_input"), "min": typed("number_input"), "max": typed("number_input"),
        "stz": typed("plain_text_input"), "unused": typed("plain_text_input"),
        "display_name": typed("plain_text_input"), "deployment_id": typed("plain_text_input"),
    }
    keep = draw(st.sets(st.sampled_from(sorted(fields))))
    return {block: {"v": entry} for block, entry in fields.items() if block in keep}


