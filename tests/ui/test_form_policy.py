"""What the deploy form offers and says under a policy (pure: bot/ui/form_policy.py). The form itself,
through signed HTTP: tests/handlers/test_views_policy.py."""

from __future__ import annotations

from bot.core.durations import format_go_duration as as_typed
from bot.core.policy import EXAMPLE, Violation, effective_policy, parse_policy
from bot.ui.form_policy import FIELD_ERROR_MAX, FormPolicy, field_error, lifetime_words

H100, H200, B200 = "NVIDIA_H100_80GB", "NVIDIA_H200_141GB", "NVIDIA_B200_180GB"


def form(text: str, channel: str | None = None, groups: tuple[str, ...] = ()) -> FormPolicy:
    return FormPolicy(effective_policy(parse_policy(text), channel=channel, usergroups=groups))


def test_no_policy_offers_everything_and_says_nothing():
    fp = FormPolicy(None)
    assert not fp.applies
    assert fp.accelerators([H100, B200]) == [H100, B200] and fp.regions(["US_IOWA_1"]) is None
    assert fp.shapes([{"acceleratorType": B200, "acceleratorCount": 8}]) == ([{"acceleratorType": B200,
                                                                              "acceleratorCount": 8}], 0)
    assert fp.nothing_allowed(models=[], accelerators=[], regions=None, offered_accelerators=[]) is None
    assert not any((fp.model_hint(), fp.max_replicas_hint(), fp.idle_hint("unused"), fp.lifetime_line(),
                    fp.approval_line(100.0)))
    assert not form("[policy]\nquiet_hours = \"19:00-08:00\"\n").applies  # nothing the form shows


def test_groups_intersect_what_is_offered():
    text = """\
[policy]
accelerators = ["h100", "h200", "b200"]
[[policy.rule]]
usergroup = "S0A"
accelerators = ["h100", "h200"]
[[policy.rule]]
usergroup = "S0B"
accelerators = ["h200", "b200"]
"""
    assert form(text, groups=("S0A", "S0B")).accelerators([H100, H200, B200]) == [H200]
    both = form(text.replace('"h200", "b200"]\n', '"b200"]\n', 1).replace('["h200", "b200"]', '["b200"]'),
                groups=("S0A", "S0B"))
    assert both.accelerators([H100, H200, B200]) == []
    said = both.nothing_allowed(models=[{"name": "x"}], accelerators=[], regions=None,
                                offered_accelerators=[H100, H200, B200])
    assert said and "No accelerator fwbot offers (H100, H200, B200) is allowed" in said
    assert "usergroup S0A and usergroup S0B" in said


def test_shapes_hidden_by_accelerator_and_by_gpus_per_deployment():
    fp = form(EXAMPLE, channel="C0MLPLAT")  # h100/h200, at most 2 GPUs per deployment here
    shapes = [{"name": "a", "acceleratorType": H100, "acceleratorCount": 1},
              {"name": "b", "acceleratorType": H100, "acceleratorCount": 4},
              {"name": "c", "acceleratorType": B200, "acceleratorCount": 1},
              {"name": "d", "acceleratorType": None}]
    kept, hidden = fp.shapes(shapes)
    assert [s["name"] for s in kept] == ["a"] and hidden == 3


def test_regions_and_models_are_globs_over_full_names():
    fp = form(EXAMPLE, channel="C0MLPLAT")
    assert fp.regions(["US_IOWA_1", "EU_FRANKFURT_1"]) == ["US_IOWA_1"]
    catalog = [{"name": "accounts/fireworks/models/llama-v3p1-8b-instruct"},
               {"name": "accounts/fireworks/models/llama-v3p1-70b-instruct"}, {"name": "llama-v3p1-8b-instruct"}]
    assert fp.models(catalog) == catalog[:1]


def test_field_errors_keep_the_rule_and_its_source_however_long():
    long = Violation("models", "channel C0LONG", "`x` is not an allowed model here (models: "
                     + ", ".join(f"accounts/fireworks/models/m{i}*" for i in range(40)) + ", from channel C0LONG)")
    text = field_error([long])
    assert text.startswith("`x` is not an allowed model here (models: accounts/fireworks/models/m0*")
    assert text.endswith("(models, from channel C0LONG)") and len(text) <= FIELD_ERROR_MAX
    short = Violation("max_replicas", "defaults", "at most 2 replicas are allowed here, not 3 (max_replicas, from "
                      "defaults)")
    assert field_error([short]) == "At most 2 replicas are allowed here, not 3 (max_replicas, from defaults)"


def test_lifetimes_and_bounds_in_the_words_people_type():
    assert lifetime_words(14 * 86400) == "14 days" and lifetime_words(86400) == "1 day"
    assert lifetime_words(36 * 3600) == "36 hours" and lifetime_words(5400) == "1h30m"
    assert (as_typed(72 * 3600), as_typed(5400), as_typed(45)) == ("72h", "90m", "45s")
    line = form(EXAMPLE).lifetime_line()
    assert line and "deleted after 14 days unless someone renews it (`max_lifetime`, from defaults)" in line


def test_the_approval_line_says_whether_this_worst_case_waits():
    fp = form(EXAMPLE)
    assert fp.approval_line(30.0).endswith("from defaults).")
    assert fp.approval_line(50.0).endswith("*this one will*.")
    assert "cannot price" in fp.approval_line(None)
