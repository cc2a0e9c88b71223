"""The policy core: parsing with line-numbered errors, most specific wins, checks, quotas, time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.policy import (
    EXAMPLE,
    DeploymentAsk,
    PolicyError,
    check_quota,
    check_request,
    effective_policy,
    format_value,
    in_quiet_hours,
    lifetime_due,
    needs_approval,
    next_working_moment,
    parse_policy,
    parse_policy_duration,
)

BERLIN = ZoneInfo("Europe/Berlin")
LA = ZoneInfo("America/Los_Angeles")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
H = 3600.0


def eff(text: str, channel: str | None = None, groups: tuple[str, ...] = (), names=None):
    return effective_policy(parse_policy(text), channel=channel, usergroups=groups, group_names=names)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


# -- the example -----------------------------------------------------------------------------------
def test_example_parses_with_its_defaults_and_rules():
    policy = parse_policy(EXAMPLE)
    assert policy.defaults.values["max_lifetime"] == 14 * 86400
    assert policy.defaults.values["accelerators"] == ("NVIDIA_H100_80GB", "NVIDIA_H200_141GB")
    assert [(r.scope, r.scope_id) for r in policy.rules] == [("channel", "C0MLPLAT"), ("usergroup", "S0MLTEAM")]
    assert policy.rules[0].line == EXAMPLE.splitlines().index("[[policy.rule]]") + 1


def test_example_effective_for_the_team_in_the_platform_channel_names_every_source():
    e = eff(EXAMPLE, "C0MLPLAT", ("S0MLTEAM", "S0OTHER"), {"S0MLTEAM": "ml-team"})
    assert e.max_gpus_per_deployment.value == 16
    assert e.max_gpus_per_deployment.source == "usergroup S0MLTEAM (ml-team)"
    assert (e.max_lifetime.value, e.max_lifetime.source) == (3 * 86400, "channel C0MLPLAT")
    assert (e.max_gpus_per_team.value, e.max_gpus_per_team.source) == (32, "defaults")
    lines = e.describe()
    assert "max_lifetime: 3d (from channel C0MLPLAT)" in lines
    assert "max_usd_per_hour_without_approval: $120.00/h (from usergroup S0MLTEAM (ml-team))" in lines
    assert "quiet_hours: 19:00-08:00 (from defaults)" in lines


def test_other_top_level_keys_belong_to_the_settings_and_an_absent_table_is_no_policy():
    e = eff('SLACK_API_URL = "http://x"\n[fireworks]\nretries = 3\n')
    assert all(not s.is_set for s in e.settings())
    assert check_request(e, DeploymentAsk("anything", None, 99, None, 5, 50)) == []


@pytest.mark.parametrize("text, seconds", [
    ("14d", 14 * 86400), ("1d12h", 36 * H), ("1.5d", 36 * H), ("72h", 72 * H), ("90m", 5400), ("1h30m", 5400),
])
def test_durations_take_days_on_top_of_go_units(text, seconds):
    assert parse_policy_duration(text) == seconds


# -- errors name the line --------------------------------------------------------------------------
BAD_FILES = [
    ("wrong type", """\
[policy]
max_replicas = 2

[[policy.rule]]
channel = "C0MLPLAT"
max_gpus_per_person = "four"
""", 6, 'max_gpus_per_person must be a whole number ≥ 1, not "four"'),
    ("a bool is not a number", "[policy]\nmax_replicas = true\n", 2, "max_replicas must be a whole number ≥ 1, not true"),
    ("a float is not a whole number", "[policy]\n\n\nmax_gpus_per_team = 4.5\n", 4, "not 4.5"),
    ("negative dollars", "[policy]\nmax_usd_per_hour_without_approval = -1\n", 2, "≥ 0"),
    ("unknown key", """\
# guardrails
[policy]
max_gpu_per_person = 4
""", 3, "unknown setting 'max_gpu_per_person' in [policy]; did you mean max_gpus_per_person?"),
    ("unknown key in a rule", """\
[[policy.rule]]
usergroup = "S0ML"
colour = "blue"
""", 3, "unknown setting 'colour' in [[policy.rule]]"),
    ("bad duration", """\
[policy]
max_replicas = 2
max_lifetime = "2 weeks"
""", 3, 'max_lifetime must be a duration such as "90m", "72h" or "14d", not "2 weeks"'),
    ("zero duration", "[policy]\nmax_unused_auto_delete = \"0s\"\n", 2, "must be longer than zero"),
    ("duration as a number", "[policy]\nmax_scale_to_zero_window = 7200\n", 2, "not 7200"),
    ("bad glob, on its own line of a long list", """\
[policy]
models = [
  "accounts/fireworks/models/llama-*",
  "accounts/fireworks/models/qwen*",
  "accounts/fireworks/models/[llama",
]
""", 5, 'models: the pattern "accounts/fireworks/models/[llama" has a "[" that is never closed'),
    ("a model glob that can never match a full name", '[policy]\nmodels = ["llama-*"]\n', 2,
     'write "accounts/fireworks/models/llama-*"'),
    ("a region glob with a space", '[policy]\nregions = ["US *"]\n', 2, "contains spaces"),
    ("unknown accelerator", '[policy]\naccelerators = ["h100", "h1000"]\n', 2, "unknown accelerator type `h1000`"),
    ("both scopes", """\
[policy]
max_replicas = 2
[[policy.rule]]
channel = "C0MLPLAT"
usergroup = "S0ML"
max_replicas = 3
""", 5, "a rule has both channel and usergroup; give exactly one"),
    ("no scope", """\
[policy]
max_replicas = 2

[[policy.rule]]
max_replicas = 3
""", 4, "this [[policy.rule]] has neither channel nor usergroup; give exactly one"),
    ("a scope in the defaults", '[policy]\nchannel = "C0MLPLAT"\n', 2, "the defaults in [policy] apply everywhere"),
    ("not a channel id", '[[policy.rule]]\nchannel = "#ml-platform"\n', 2, "channel must be a Slack channel id"),
    ("two rules for one group", """\
[[policy.rule]]
usergroup = "S0ML"
max_replicas = 3

[[policy.rule]]
usergroup = "S0ML"
""", 6, "usergroup S0ML already has a rule at line 2"),
    ("bad time range", '[policy]\nquiet_hours = "7pm-8am"\n', 2,
     'quiet_hours must be a range of 24-hour times such as "19:00-08:00", not "7pm-8am"'),
    ("hour out of range", '[policy]\nquiet_hours = "25:00-08:00"\n', 2, "not \"25:00-08:00\""),
    ("empty time range", '[policy]\nquiet_hours = "08:00-08:00"\n', 2, "starts and ends at the same time"),
    ("not a day", '[policy]\nworking_days = ["Mon", "Funday"]\n', 2, '"Funday" is not a day'),
    ("no working days", "[policy]\nworking_days = []\n", 2, "at least one day"),
    ("a schedule that is not one", '[policy]\nmax_replicas = 2\nschedule = "19:00 Mon-Fri"\n', 3,
     'schedule "19:00 Mon-Fri": write it as "down 19:00 Mon-Fri, up 08:00 Mon-Fri"'),
    ("a schedule's bad day, in a rule", '[[policy.rule]]\nchannel = "C0AAA"\nschedule = "down 19:00 Mon-Fry"\n', 3,
     'schedule "down 19:00 Mon-Fry": down: `Fry` is not a day'),
    ("a schedule that is not text", "[policy]\nschedule = 19\n", 2, "schedule must be a string"),
    ("syntax error", """\
[policy]
max_replicas = 2
max_lifetime =
""", 3, "not valid TOML: Invalid value"),
    ("a TOML duplicate key", "[policy]\nmax_replicas = 2\nmax_replicas = 3\n", 3, "not valid TOML"),
    ("a table instead of [[policy.rule]]", '[policy.rule]\nchannel = "C0X1"\n', 1, "rule must be a list of tables"),
    ("a typo in a table name", "[policy]\nmax_replicas = 2\n[policy.rules]\nx = 1\n", 3, "unknown setting 'rules'"),
    ("the second rule's key, not the first's", """\
[[policy.rule]]
channel = "C0AAA"
max_lifetime = "3d"

[[policy.rule]]
channel = "C0BBB"
max_lifetime = "3 days"
""", 7, "max_lifetime must be a duration"),
]


@pytest.mark.parametrize("label, text, line, reason", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_every_error_names_its_line_and_reason(label, text, line, reason):
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "fwbot.toml")
    assert caught.value.line == line, caught.value.message
    assert caught.value.message.startswith(f"fwbot.toml line {line}: ")
    assert reason in caught.value.message


def test_the_message_reads_as_the_file_editor_needs_it():
    with pytest.raises(PolicyError) as caught:
        parse_policy(BAD_FILES[0][1], "fwbot.toml")
    assert caught.value.user_message == 'fwbot.toml line 6: max_gpus_per_person must be a whole number ≥ 1, not "four"'


def test_all_problems_are_reported_in_line_order():
    text = """\
[policy]
max_replicas = 0
max_lifetime = "soon"
[[policy.rule]]
max_replicas = 2
"""
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "team.toml")
    assert [line for line, _ in caught.value.problems] == [2, 3, 4]
    assert caught.value.message.count("\n") == 2
    assert caught.value.message.splitlines()[1].startswith("team.toml line 3: max_lifetime")


# -- most specific wins ----------------------------------------------------------------------------
LIMITS = ("max_gpus_per_deployment", "max_replicas", "max_gpus_per_person", "max_gpus_per_team")
GROUPS = ("S0ONE", "S0TWO")
layer = st.fixed_dictionaries({k: st.none() | st.integers(1, 64) for k in LIMITS})


def _toml(defaults: dict, channel: dict, groups: dict[str, dict]) -> str:
    def body(values: dict) -> str:
        return "".join(f"{k} = {v}\n" for k, v in values.items() if v is not None)
    text = "[policy]\n" + body(defaults)
    text += '\n[[policy.rule]]\nchannel = "C0CHAN"\n' + body(channel)
    for group, values in groups.items():
        text += f'\n[[policy.rule]]\nusergroup = "{group}"\n' + body(values)
    return text


@settings(max_examples=150, deadline=None)
@given(defaults=layer, channel=layer, one=layer, two=layer,
       member_of=st.sets(st.sampled_from((*GROUPS, "S0NORULE"))), in_channel=st.booleans())
def test_usergroup_beats_channel_beats_defaults_and_the_strictest_group_wins(
        defaults, channel, one, two, member_of, in_channel):
    text = _toml(defaults, channel, {"S0ONE": one, "S0TWO": two})
    e = eff(text, "C0CHAN" if in_channel else "C0ELSE", tuple(member_of), {"S0ONE": "one"})
    by_group = {"S0ONE": one, "S0TWO": two}
    for name in LIMITS:
        setting = getattr(e, name)
        from_groups = [(by_group[g][name], g) for g in sorted(member_of & set(GROUPS)) if by_group[g][name]]
        if from_groups:
            value, group = min(from_groups, key=lambda vg: vg[0])
            expected = (value, f"usergroup {group}" + (" (one)" if group == "S0ONE" else ""))
        elif in_channel and channel[name] is not None:
            expected = (channel[name], "channel C0CHAN")
        elif defaults[name] is not None:
            expected = (defaults[name], "defaults")
        else:
            expected = (None, None)
        assert (setting.value, setting.source) == expected


def test_several_groups_intersect_their_allow_lists():
    text = """\
[policy]
models = ["*"]
[[policy.rule]]
usergroup = "S0A"
models = ["accounts/fireworks/models/llama-*"]
accelerators = ["h100", "h200"]
[[policy.rule]]
usergroup = "S0B"
models = ["*8b*"]
accelerators = ["NVIDIA_H200_141GB", "b200"]
"""
    e = eff(text, None, ("S0B", "S0A"), {"S0A": "alpha"})
    assert e.models.source == "usergroup S0A (alpha) and usergroup S0B"
    assert e.models.value.allows("accounts/fireworks/models/llama-v3p1-8b-instruct")
    assert not e.models.value.allows("accounts/fireworks/models/llama-v3p1-70b-instruct")
    assert not e.models.value.allows("accounts/fireworks/models/qwen3-8b")
    assert str(e.accelerators.value) == "h200"
    assert not e.accelerators.value.allows("NVIDIA_H100_80GB")


def test_any_group_requiring_an_idle_policy_requires_it_and_quiet_hours_add_up():
    text = """\
[[policy.rule]]
usergroup = "S0A"
require_idle_policy = false
quiet_hours = "22:00-06:00"
working_days = ["Mon", "Tue", "Wed"]
[[policy.rule]]
usergroup = "S0B"
require_idle_policy = true
quiet_hours = "12:00-13:00"
working_days = ["tuesday", "Wed", "Thu"]
"""
    e = eff(text, None, ("S0A", "S0B"))
    assert (e.require_idle_policy.value, e.require_idle_policy.source) == (True, "usergroup S0B")
    assert e.working_days.value == frozenset({1, 2})
    tue = datetime(2026, 11, 3, tzinfo=BERLIN)
    assert in_quiet_hours(e, tue.replace(hour=12, minute=30), BERLIN)
    assert in_quiet_hours(e, tue.replace(hour=23), BERLIN)
    assert not in_quiet_hours(e, tue.replace(hour=15), BERLIN)


# -- checks ----------------------------------------------------------------------------------------
def ask(**kw) -> DeploymentAsk:
    base = dict(model="llama-v3p1-8b-instruct", accelerator_type="h100", accelerator_count=1, region="US_IOWA_1",
                min_replicas=0, max_replicas=1, unused_auto_delete_s=None, scale_to_zero_s=None, usd_per_hour=8.0)
    return DeploymentAsk(**{**base, **kw})


def test_a_request_within_the_rules_passes_and_a_short_id_means_the_public_catalog():
    e = eff(EXAMPLE, "C0MLPLAT")
    assert check_request(e, ask()) == []
    assert check_request(e, ask(model="accounts/fireworks/models/qwen3-8b", accelerator_type="NVIDIA_H200_141GB",
                                region="us-texas-1", max_replicas=2)) == []


def test_each_violation_names_its_rule_and_source():
    e = eff(EXAMPLE, "C0MLPLAT")
    found = check_request(e, ask(model="llama-v3p1-405b", accelerator_type="b200", accelerator_count=8,
                                 region="EU_FRANKFURT_1", min_replicas=1, max_replicas=3))
    assert [(v.rule, v.source) for v in found] == [
        ("models", "channel C0MLPLAT"), ("accelerators", "defaults"), ("regions", "defaults"),
        ("max_gpus_per_deployment", "channel C0MLPLAT"), ("max_replicas", "defaults"),
        ("require_idle_policy", "defaults"),
    ]
    messages = [v.message for v in found]
    assert messages[0] == ("`llama-v3p1-405b` is not an allowed model here (models: "
                           "accounts/fireworks/models/llama-v3p1-8b*, accounts/fireworks/models/qwen*, "
                           "from channel C0MLPLAT)")
    assert messages[1] == "`b200` is not an allowed accelerator here (accelerators: h100, h200, from defaults)"
    assert messages[2] == "`EU_FRANKFURT_1` is not an allowed region here (regions: US_*, from defaults)"
    assert messages[3] == ("this deployment could run 24 GPUs (3 replicas × 8 GPUs); the limit here is 2 "
                           "(max_gpus_per_deployment, from channel C0MLPLAT)")
    assert messages[4] == "at most 2 replicas are allowed here, not 3 (max_replicas, from defaults)"
    assert "`--unused-auto-delete-duration` of 72h or less here" in messages[5]
    assert "(require_idle_policy, max_unused_auto_delete and max_scale_to_zero_window, from defaults)" in messages[5]


def test_unnamed_accelerator_or_region_is_outside_an_allow_list():
    e = eff(EXAMPLE)
    rules = [v.rule for v in check_request(e, ask(accelerator_type=None, region=None))]
    assert rules == ["accelerators", "regions"]


@pytest.mark.parametrize("min_replicas, unused, scale, ok", [
    (0, None, None, True),           # scales to zero after Fireworks' default hour (within 2h)
    (0, None, 2 * H, True),
    (0, None, 3 * H, False),         # idles 3h before it scales to zero
    (0, 48 * H, 3 * H, True),        # ...unless it deletes itself within 72h
    (1, 48 * H, None, True),         # deletes itself within 72h
    (1, 72 * H, None, True),
    (1, 96 * H, None, False),        # too late
    (1, None, 1 * H, False),         # min replicas 1 never scales to zero, whatever the window
    (1, 96 * H, 1 * H, False),
    (2, None, None, False),
])
def test_required_idle_policy(min_replicas, unused, scale, ok):
    e = eff(EXAMPLE)
    found = check_request(e, ask(min_replicas=min_replicas, max_replicas=2, unused_auto_delete_s=unused,
                                 scale_to_zero_s=scale))
    assert (found == []) is ok, found


def test_required_idle_policy_without_bounds_takes_any_unused_auto_delete():
    e = eff("[policy]\nrequire_idle_policy = true\n")
    assert check_request(e, ask(min_replicas=1, unused_auto_delete_s=30 * 86400)) == []
    assert check_request(e, ask(min_replicas=0, scale_to_zero_s=30 * 86400)) == []
    [v] = check_request(e, ask(min_replicas=1))
    assert v.message == ("a deployment that keeps 1 replica up never scales to zero, so it needs an "
                         "`--unused-auto-delete-duration` here, or min replicas 0 with a scale-to-zero window "
                         "(require_idle_policy, from defaults)")


def test_a_scale_to_zero_window_over_the_bound_is_named_with_the_default_when_not_given():
    e = eff("[policy]\nrequire_idle_policy = true\nmax_scale_to_zero_window = \"30m\"\n")
    [v] = check_request(e, ask(min_replicas=0))
    assert v.message.startswith("its scale-to-zero window, 1h (Fireworks' default), is longer than allowed here: "
                                "give a `--scale-to-zero-window` of 30m or less or an `--unused-auto-delete-duration` "
                                "(require_idle_policy and max_scale_to_zero_window, from defaults)")


def test_quota_messages_name_rule_and_source():
    e = eff(EXAMPLE, "C0MLPLAT")
    found = check_quota(e, person_gpus_running=4, team_gpus_running=30, asking_gpus=8)
    assert [v.message for v in found] == [
        "this would run 12 GPUs for you at once; your limit is 8 (max_gpus_per_person, from defaults)",
        "this would run 38 GPUs for the team at once; the team's limit is 32 (max_gpus_per_team, from defaults)",
    ]
    assert [(v.rule, v.source) for v in found] == [("max_gpus_per_person", "defaults"),
                                                    ("max_gpus_per_team", "defaults")]


@given(person=st.integers(0, 40), team=st.integers(0, 80), asking=st.integers(-16, 40))
def test_quota_is_arithmetic_and_never_blocks_giving_gpus_back(person, team, asking):
    e = eff(EXAMPLE)
    rules = {v.rule for v in check_quota(e, person_gpus_running=person, team_gpus_running=team, asking_gpus=asking)}
    assert ("max_gpus_per_person" in rules) == (asking > 0 and person + asking > 8)
    assert ("max_gpus_per_team" in rules) == (asking > 0 and team + asking > 32)


def test_needs_approval_uses_the_policy_threshold_or_defers():
    assert needs_approval(eff(EXAMPLE), 40.0) is False
    assert needs_approval(eff(EXAMPLE), 40.01) is True
    assert needs_approval(eff(EXAMPLE), None) is True  # an unknown price cannot be bounded
    assert needs_approval(eff(EXAMPLE, None, ("S0MLTEAM",)), 100.0) is False
    assert needs_approval(eff("[policy]\nmax_replicas = 2\n"), 1000.0) is None


# -- time ------------------------------------------------------------------------------------------
def test_lifetime_due():
    assert lifetime_due(eff(EXAMPLE), T0) == T0 + timedelta(days=14)
    assert lifetime_due(eff(EXAMPLE, "C0MLPLAT"), T0) == T0 + timedelta(days=3)
    assert lifetime_due(eff(""), T0) is None


@pytest.mark.parametrize("when, quiet", [
    (berlin(2026, 11, 2, 12, 0), False),            # Monday noon
    (berlin(2026, 11, 2, 18, 59), False),
    (berlin(2026, 11, 2, 19, 0), True),             # quiet from 19:00 ...
    (berlin(2026, 11, 3, 7, 59), True),             # ... across midnight ...
    (berlin(2026, 11, 3, 8, 0), False),             # ... until 08:00
    (berlin(2026, 11, 2, 7, 0), True),              # Monday morning: Sunday night's window
    (berlin(2026, 11, 7, 12, 0), True),             # Saturday: quiet all day
    (berlin(2026, 11, 8, 23, 0), True),             # Sunday
    (datetime(2026, 11, 2, 11, 0, tzinfo=UTC), False),   # 12:00 in Berlin
    (datetime(2026, 11, 2, 18, 30, tzinfo=UTC), True),   # 19:30 in Berlin
])
def test_quiet_hours_in_the_teams_zone(when, quiet):
    assert in_quiet_hours(eff(EXAMPLE), when, BERLIN) is quiet


def test_the_zone_decides_the_day():
    e = eff(EXAMPLE)
    monday_utc = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)  # Monday 09:00 in Los Angeles
    assert not in_quiet_hours(e, monday_utc, LA)
    early_monday_utc = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # Sunday 22:00 in Los Angeles
    assert in_quiet_hours(e, early_monday_utc, LA)
    assert not in_quiet_hours(eff(EXAMPLE), datetime(2026, 11, 2, 6, 0, tzinfo=UTC), ZoneInfo("Asia/Tokyo"))


@pytest.mark.parametrize("when, expected", [
    (berlin(2026, 11, 2, 12, 0), berlin(2026, 11, 2, 12, 0)),   # not quiet: now
    (berlin(2026, 11, 2, 19, 30), berlin(2026, 11, 3, 8, 0)),   # evening: next morning
    (berlin(2026, 11, 3, 2, 0), berlin(2026, 11, 3, 8, 0)),     # small hours: this morning
    (berlin(2026, 11, 6, 20, 0), berlin(2026, 11, 9, 8, 0)),    # Friday night: Monday morning
    (berlin(2026, 11, 7, 12, 0), berlin(2026, 11, 9, 8, 0)),    # Saturday
])
def test_next_working_moment(when, expected):
    got = next_working_moment(eff(EXAMPLE), when, BERLIN)
    assert got == expected and got.tzinfo == BERLIN


def test_working_days_without_quiet_hours_start_at_midnight():
    e = eff('[policy]\nworking_days = ["Mon", "Tue", "Wed", "Thu", "Fri"]\n')
    assert not in_quiet_hours(e, berlin(2026, 11, 2, 3, 0), BERLIN)
    assert next_working_moment(e, berlin(2026, 11, 8, 15, 0), BERLIN) == berlin(2026, 11, 9, 0, 0)


def test_quiet_hours_ending_in_a_dst_gap_end_when_the_clocks_jump():
    e = eff('[policy]\nquiet_hours = "00:00-02:30"\n')
    # 2026-03-29: Berlin's clocks jump from 02:00 CET to 03:00 CEST; 02:30 never happens.
    got = next_working_moment(e, berlin(2026, 3, 29, 1, 30), BERLIN)
    assert got == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert (got.hour, got.minute) == (3, 0)


def test_no_quiet_settings_means_never_quiet_and_naive_times_are_refused():
    e = eff("")
    assert not in_quiet_hours(e, berlin(2026, 11, 7, 3, 0), BERLIN)
    with pytest.raises(ValueError):
        in_quiet_hours(eff(EXAMPLE), datetime(2026, 11, 2, 12, 0), BERLIN)


def test_groups_leaving_no_working_moment_get_none():
    text = """\
[[policy.rule]]
usergroup = "S0A"
working_days = ["Mon"]
[[policy.rule]]
usergroup = "S0B"
working_days = ["Tue"]
"""
    e = eff(text, None, ("S0A", "S0B"))
    assert next_working_moment(e, berlin(2026, 11, 2, 12, 0), BERLIN) is None


def test_a_schedule_is_set_by_the_most_specific_rule_and_the_first_group_of_several():
    text = """\
[policy]
schedule = "down 19:00 Mon-Fri, up 08:00 Mon-Fri"
[[policy.rule]]
channel = "C0NIGHT"
schedule = "down 22:00 daily"
[[policy.rule]]
usergroup = "S0B"
schedule = "down 20:00 Mon-Fri, up 07:00 Mon-Fri (min 2)"
[[policy.rule]]
usergroup = "S0A"
schedule = "down 18:00 Fri"
[[policy.rule]]
channel = "C0OTHER"
max_replicas = 2
"""
    def shown(channel=None, groups=()):
        s = eff(text, channel, groups).schedule
        return format_value("schedule", s.value), s.source

    assert shown() == ("down 19:00 Mon-Fri, up 08:00 Mon-Fri", "defaults")
    assert shown("C0OTHER") == ("down 19:00 Mon-Fri, up 08:00 Mon-Fri", "defaults")  # the rule does not set it
    assert shown("C0NIGHT") == ("down 22:00 daily", "channel C0NIGHT")
    assert shown("C0NIGHT", ("S0B",)) == ("down 20:00 Mon-Fri, up 07:00 Mon-Fri (min 2)", "usergroup S0B")
    assert shown("C0NIGHT", ("S0B", "S0A")) == ("down 18:00 Fri", "usergroup S0A")  # the first by id
    assert "schedule: down 22:00 daily (from channel C0NIGHT)" in eff(text, "C0NIGHT").describe()
    assert eff("[policy]\nmax_replicas = 2\n").schedule.is_set is False
