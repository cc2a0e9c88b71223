"""Guardrails end to end: a policy file, signed HTTP into the bot, the Fireworks simulator over HTTP,
a real database (SQLite file, or PostgreSQL with FWBOT_TEST_ENGINE=postgresql).

H100s cost $8/GPU-hour; every deploy here asks for H100s.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.policy import EXAMPLE, parse_policy
from tests.fixtures.policies import write_policy
from tests.harness import ALERTS, CHANNEL, message_text, start_stack

MODEL = "llama-v3p1-8b-instruct"
BIG = "U0BIGGER"  # in the S0BIGTEAM user group
POLICY = """\
[policy]
models = ["accounts/fireworks/models/llama-v3p1-8b*"]
accelerators = ["h100"]
max_replicas = 2
max_gpus_per_person = 4
max_gpus_per_team = 6

[[policy.rule]]
usergroup = "S0BIGTEAM"
max_replicas = 4
max_gpus_per_person = 8
"""


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.toml"
    write_policy(path, POLICY)
    return path


@pytest.fixture
def guarded(tmp_path, policy_file):
    s = start_stack(tmp_path, env={"FWBOT_POLICY_FILE": str(policy_file)})
    s.ws.add_user(BIG, "bigger", real_name="Bo Bigger", tz="UTC")
    s.ws.add_usergroup("S0BIGTEAM", "big-team", users=[BIG])
    yield s
    s.stop()


def deployments(stack):
    return list(stack.sdk().deployments.list())


def answer(stack, text, user="U_DEV", channel=CHANNEL):
    """Run ``/fw text`` and return the text of what it answered: the next reply only ``user`` sees,
    or the next message posted for everyone (a deploy's tracking message)."""
    def seen():
        return [m for m in stack.ws.messages(channel) if m.ephemeral_to in (None, user)]

    before = len(seen())
    r = stack.fw(text, user=user, channel=channel)
    assert r.status == 200
    return stack.ws.wait_for(lambda: [message_text(m) for m in seen()[before:]] or None, timeout=15)[-1]


def deploy(stack, flags, user="U_DEV", model=MODEL):
    return answer(stack, f"deploy {model} --accelerator-type h100 {flags}", user=user)


# -- /fw policy ------------------------------------------------------------------------------------
def test_policy_shows_the_rules_in_force_and_where_each_comes_from(guarded):
    text = answer(guarded, "policy")
    assert "Max replicas:* 2" in text and "(`max_replicas`, from defaults)" in text
    assert "GPU quota per person:* 4" in text
    # A member of the group sees the group's values, named as such.
    other = answer(guarded, f"policy <@{BIG}>")
    assert "Max replicas:* 4" in other and "from usergroup S0BIGTEAM" in other
    assert "GPU quota per team:* 6" in other and "from defaults" in other


def test_without_a_policy_nothing_is_guarded(stack):
    assert "No team policy is set" in answer(stack, "policy")
    assert "Creating" in deploy(stack, "--max-replica-count 5") or len(deployments(stack)) == 1


# -- refusals ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("flags", "model", "needle"), [
    ("--max-replica-count 3 --accelerator-type h100", MODEL, "at most 2 replicas are allowed here, not 3 (max_replicas, from defaults)"),
    ("--max-replica-count 1 --accelerator-type h100", "qwen3-8b", "is not an allowed model here"),
    ("--max-replica-count 1 --accelerator-type h200", MODEL, "`h200` is not an allowed accelerator"),
])
def test_a_request_the_policy_forbids_is_refused_naming_the_rule_and_nothing_is_created(guarded, flags, model,
                                                                                          needle):
    text = answer(guarded, f"deploy {model} {flags}")
    assert "the team policy does not allow this" in text, text
    assert needle in text, text
    assert "Nothing was changed" in text
    assert deployments(guarded) == []
    assert guarded.services.store.deployments() == []


def test_quota_exceeded_is_refused_clearly_and_nothing_is_created(guarded):
    deploy(guarded, "--max-replica-count 2 --accelerator-count 2")  # 4 GPUs: the whole personal quota
    guarded.ws.wait_for(lambda: len(deployments(guarded)) == 1 or None, timeout=15)
    text = deploy(guarded, "--max-replica-count 1")
    assert "this would run 5 GPUs for you at once; your limit is 4 (max_gpus_per_person, from defaults)" in text
    assert len(deployments(guarded)) == 1
    quota = answer(guarded, "quota")
    assert "4 of 4 GPUs used, 0 left" in quota and "4 of 6 GPUs used" in quota


def test_a_group_rule_loosens_the_channel_and_defaults_for_its_members(guarded):
    text = deploy(guarded, "--max-replica-count 4", user=BIG)
    assert "the team policy does not allow this" not in text
    guarded.ws.wait_for(lambda: len(deployments(guarded)) == 1 or None, timeout=15)


def test_an_update_that_breaks_a_rule_is_refused_and_one_within_it_goes_on(guarded):
    deploy(guarded, "--max-replica-count 1 --deployment-id small")
    guarded.ws.wait_for(lambda: len(deployments(guarded)) == 1 or None, timeout=15)
    text = answer(guarded, "update small --max-replica-count 3")
    assert "at most 2 replicas are allowed here, not 3" in text
    assert guarded.sdk().deployments.get("small").max_replica_count == 1
    text = answer(guarded, "update small --max-replica-count 2 --accelerator-count 4")
    assert "this would run 8 GPUs for you at once; your limit is 4" in text
    assert guarded.sdk().deployments.get("small").max_replica_count == 1
    answer(guarded, "update small --max-replica-count 2")
    assert guarded.sdk().deployments.get("small").max_replica_count == 2


def test_an_admin_may_override_with_a_reason_and_it_is_audited(guarded):
    refused = answer(guarded, f"deploy {MODEL} --accelerator-type h100 --max-replica-count 3", user="U_ADMIN")
    assert '--override "<reason>"' in refused
    not_admin = deploy(guarded, '--max-replica-count 3 --override "launch day"')
    assert "`--override` is for fwbot admins" in not_admin and deployments(guarded) == []
    answer(guarded, f'deploy {MODEL} --accelerator-type h100 --max-replica-count 3 --override "launch day"',
           user="U_ADMIN")
    guarded.ws.wait_for(lambda: len(deployments(guarded)) == 1 or None, timeout=15)
    rows = [r for r in guarded.services.store.audit_trail(limit=20) if r["action"] == "policy-override"]
    assert len(rows) == 1 and rows[0]["actor"] == "U_ADMIN"
    request = json.loads(rows[0]["request"])
    assert request["reason"] == "launch day" and request["rules"] == [{"rule": "max_replicas", "source": "defaults"}]
    trail = answer(guarded, f"audit {rows[0]['deployment_id']}")
    assert ('*policy-override* of the deploy: "launch day" — at most 2 replicas are allowed here, not 3 '
            "(max_replicas, from defaults)") in trail, trail


# -- the file --------------------------------------------------------------------------------------
def test_a_changed_file_is_read_again_and_a_bad_one_refused_while_the_last_good_stays(guarded, policy_file):
    write_policy(policy_file, POLICY.replace("max_replicas = 2", "max_replicas = 1"))
    assert "not 2 (max_replicas, from defaults)" in deploy(guarded, "--max-replica-count 2")
    write_policy(policy_file, POLICY.replace("max_replicas = 2", "max_replicas = 1\nmax_gpus = 3"))
    text = answer(guarded, "policy")
    assert "refused" in text and "line 5" in text and "max_gpus" in text
    assert "Max replicas:* 1" in text  # the last good one
    assert "not 2 (max_replicas, from defaults)" in deploy(guarded, "--max-replica-count 2")
    alert = guarded.ws.wait_for(lambda: [m for m in guarded.ws.messages(ALERTS)
                                         if "refused the policy file" in message_text(m)] or None, timeout=10)
    assert len(alert) == 1 and "line 5" in message_text(alert[0])
    deploy(guarded, "--max-replica-count 1")  # the last good policy still lets this through
    guarded.ws.wait_for(lambda: len(deployments(guarded)) == 1 or None, timeout=15)


def test_a_bad_policy_file_stops_fwbot_from_starting(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\nmax_replicas = "two"\n')
    with pytest.raises(SystemExit, match="line 2"):
        start_stack(tmp_path, env={"FWBOT_POLICY_FILE": str(bad)})


def test_the_readme_policy_example_is_the_one_fwbot_documents_and_it_loads():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = (Path(__file__).resolve().parents[2] / "examples" / "policy.toml").read_text()
    assert example.strip() in readme
    assert example == EXAMPLE
    policy = parse_policy(example, "examples/policy.toml")
    assert policy.defaults.values["max_gpus_per_person"] == 8


# -- approvals ----------------------------------------------------------------------------------------
def test_the_policy_threshold_gates_and_an_approval_is_checked_again_before_it_runs(tmp_path, policy_file):
    write_policy(policy_file, POLICY + "\n".join(["", "[[policy.rule]]", 'channel = "C0MLPLAT"',
                                                  "max_usd_per_hour_without_approval = 10.0", ""]))
    s = start_stack(tmp_path, env={"FWBOT_POLICY_FILE": str(policy_file), "FWBOT_APPROVERS": "U_APPROVER"})
    try:
        text = deploy(s, "--max-replica-count 2")  # $16/h: above the channel's $10
        assert "Waiting for approval" in text or "approval" in text.lower()
        assert deployments(s) == []
        token = next(r for r in s.services.store.approvals() if r.status == "pending").id
        # Meanwhile the team tightens the policy: the approved request must obey the new one.
        write_policy(policy_file, POLICY.replace("max_replicas = 2", "max_replicas = 1"))
        msg = next(m for m in s.ws.messages(CHANNEL) if not m.ephemeral_to and "approval" in message_text(m).lower())
        s.ws.click("U_APPROVER", msg.channel, msg.ts, "approval_approve", token, block_id="approval")
        record = s.ws.wait_for(lambda: (r := s.services.store.approval(token)).result and r or None, timeout=15)
        assert not record.result["ok"] and "(max_replicas, from defaults)" in record.result["text"]
        assert deployments(s) == []
    finally:
        s.stop()


# -- concurrency ------------------------------------------------------------------------------------
CONCURRENT_POLICY = """\
[policy]
max_gpus_per_person = 3
max_gpus_per_team = 8
"""


@pytest.mark.parametrize("replicas", [1, 2], ids=["one-replica", "two-replicas"])
def test_fifty_concurrent_deploys_never_exceed_a_quota(tmp_path, replicas):
    """50 deploys of 1 GPU each from 10 people, sent at once over signed HTTP (to one fwbot, or
    split between two sharing the database and the Fireworks account): the team's 8 and each
    person's 3 hold, and every request is either created or refused with the quota's sentence."""
    path = tmp_path / "policy.toml"
    write_policy(path, CONCURRENT_POLICY)
    env = {"FWBOT_POLICY_FILE": str(path)}
    first = start_stack(tmp_path, env=env)
    stacks = [first] + [start_stack(tmp_path / f"r{n}", env=env, sim=first.sim, db_path=first.db_path)
                        for n in range(1, replicas)]
    people = [f"U0P{i:02d}" for i in range(10)]
    try:
        for s in stacks:
            for p in people:
                s.ws.add_user(p, p.lower(), real_name=p, tz="UTC")
        barrier = threading.Barrier(50)

        def send(i: int) -> None:
            barrier.wait()
            r = stacks[i % len(stacks)].fw(f"deploy {MODEL} --accelerator-type h100 --max-replica-count 1 "
                                           f"--accelerator-count 1 --deployment-id burst-{i:02d}",
                                           user=people[i % 10])
            assert r.status == 200

        threads = [threading.Thread(target=send, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(s.services.wait_work_done(120) for s in stacks)

        created = deployments(first)
        owners = Counter(r.owner for r in first.services.store.deployments())
        assert len(created) == 8, [d.name for d in created]
        assert sum(owners.values()) == 8 and max(owners.values()) <= 3
        refusals = [message_text(m) for s in stacks for p in people for m in s.ephemerals(p)
                    if "the team policy does not allow" in message_text(m)]
        assert len(refusals) == 42
        assert all("limit is 8 (max_gpus_per_team, from defaults)" in t or "your limit is 3" in t for t in refusals)
    finally:
        for s in reversed(stacks):
            s.bot.stop()
            s.ws.stop()
        first.sim.stop()


def test_an_idle_policy_cannot_be_left_out_at_create_time(guarded, policy_file):
    write_policy(policy_file, POLICY + '\n'.join(["", "[[policy.rule]]", 'channel = "C0MLPLAT"',
                                                  "require_idle_policy = true", 'max_unused_auto_delete = "24h"',
                                                  'max_scale_to_zero_window = "30m"', ""]))
    kept_up = deploy(guarded, "--min-replica-count 1 --max-replica-count 1 --scale-to-zero-window 10m")
    assert "never scales to zero, so it needs an `--unused-auto-delete-duration` of 24h or less here" in kept_up
    assert ("(require_idle_policy, max_unused_auto_delete and max_scale_to_zero_window, from channel C0MLPLAT)"
            in kept_up)
    slow = deploy(guarded, "--max-replica-count 1")  # min 0, but Fireworks' default hour is over 30m
    assert "1h (Fireworks' default), is longer than allowed here" in slow
    assert deployments(guarded) == []
    deploy(guarded, "--min-replica-count 1 --max-replica-count 1 --unused-auto-delete-duration 12h")
    guarded.ws.wait_for(lambda: len(deployments(guarded)) == 1 or None, timeout=15)


def test_an_undelete_that_would_go_over_a_quota_is_refused(guarded):
    deploy(guarded, "--max-replica-count 2 --accelerator-count 2 --deployment-id first")  # 4 GPUs: the quota
    guarded.ws.wait_for(lambda: len(deployments(guarded)) == 1 or None, timeout=15)
    guarded.sdk().deployments.delete("first")
    guarded.sync()
    deploy(guarded, "--max-replica-count 1 --accelerator-count 2 --deployment-id second")
    guarded.ws.wait_for(lambda: len(deployments(guarded)) == 1 and deployments(guarded)[0].name.endswith("second")
                        or None, timeout=15)
    text = answer(guarded, "undelete first")
    assert "this would run 6 GPUs for you at once; your limit is 4 (max_gpus_per_person, from defaults)" in text
    assert guarded.sdk().deployments.get("first").state == "DELETED"


def test_concurrent_undeletes_never_exceed_a_quota(guarded, policy_file):
    write_policy(policy_file, POLICY.replace("max_gpus_per_person = 4", "max_gpus_per_person = 8", 1))
    for name in ("one", "two", "three"):
        deploy(guarded, f"--max-replica-count 1 --accelerator-count 2 --deployment-id {name}")
    guarded.ws.wait_for(lambda: len(deployments(guarded)) == 3 or None, timeout=15)
    for name in ("one", "two", "three"):
        guarded.sdk().deployments.delete(name)
    guarded.sync()
    write_policy(policy_file, POLICY)  # back to 4 GPUs a person: two of the three fit
    barrier = threading.Barrier(3)

    def undelete(name):
        barrier.wait()
        assert guarded.fw(f"undelete {name}").status == 200

    threads = [threading.Thread(target=undelete, args=(n,)) for n in ("one", "two", "three")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert guarded.services.wait_work_done(30)
    back = [d.name for d in guarded.sdk().deployments.list(show_deleted=True) if d.state != "DELETED"]
    assert len(back) == 2, back
    refused = [message_text(m) for m in guarded.ephemerals("U_DEV") if "your limit is 4" in message_text(m)]
    assert len(refused) == 1 and "this would run 6 GPUs for you at once" in refused[0]


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 2), st.integers(1, 3)), min_size=8, max_size=16),
       person=st.integers(1, 6), team=st.integers(2, 10))
def test_property_concurrent_requests_never_exceed_a_quota(tmp_path_factory, sizes, person, team):
    """Whatever the mix (who asks, replicas × GPUs each) and the limits, requests sent at once
    leave every person within their quota and the team within its own, and each request is either
    created or refused with a quota's sentence."""
    tmp = tmp_path_factory.mktemp("quota")
    path = write_policy(tmp / "policy.toml", f"[policy]\nmax_gpus_per_person = {person}\nmax_gpus_per_team = {team}\n")
    s = start_stack(tmp, env={"FWBOT_POLICY_FILE": str(path)})
    people = [f"U0Q{i}" for i in range(4)]
    try:
        for p in people:
            s.ws.add_user(p, p.lower(), real_name=p, tz="UTC")
        barrier = threading.Barrier(len(sizes))

        def send(i, who, replicas, gpus):
            barrier.wait()
            s.fw(f"deploy {MODEL} --accelerator-type h100 --max-replica-count {replicas} --accelerator-count {gpus} "
                 f"--deployment-id q-{i:02d}", user=people[who])

        threads = [threading.Thread(target=send, args=(i, *size)) for i, size in enumerate(sizes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert s.services.wait_work_done(60)
        asked = {f"q-{i:02d}": (people[w], r * g) for i, (w, r, g) in enumerate(sizes)}
        created = [d.name.rsplit("/", 1)[-1] for d in deployments(s)]
        used = Counter()
        for dep in created:
            who, gpus = asked[dep]
            used[who] += gpus
        assert sum(used.values()) <= team and all(v <= person for v in used.values()), (used, person, team)
        refusals = [message_text(m) for p in people for m in s.ephemerals(p)
                    if "the team policy does not allow" in message_text(m)]
        assert len(created) + len(refusals) == len(sizes)
        assert all("max_gpus_per_person" in t or "max_gpus_per_team" in t or "max_gpus_per_deployment" in t
                   for t in refusals)
    finally:
        s.stop()
