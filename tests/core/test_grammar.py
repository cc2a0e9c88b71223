"""The `/fw` grammar (bot/core/grammar.py): tokenizer, parser, validation, generated help."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.grammar import (
    SUBCOMMANDS,
    UsageError,
    help_text,
    parse,
    quote,
    slack_escape,
    slack_to_plain,
    subcommand,
    tokenize,
    usage_line,
)
from bot.core.requests import (
    AdoptCommand,
    AuditCommand,
    BudgetCommand,
    CostCommand,
    CostPeriod,
    DeleteCommand,
    DeployCommand,
    DeployModalCommand,
    GetCommand,
    HelpCommand,
    KeepCommand,
    ListCommand,
    LoraCommand,
    ModelsCommand,
    OwnerCommand,
    ParsedCommand,
    QueryCommand,
    ScaleCommand,
    UndeleteCommand,
    UpdateCommand,
)

ACCOUNT = "acme"
LLAMA = "accounts/fireworks/models/llama-v3p1-8b-instruct"


def p(text: str) -> ParsedCommand:
    return parse(text, account_id=ACCOUNT)


def err(text: str) -> UsageError:
    with pytest.raises(UsageError) as e:
        p(text)
    return e.value


# --- tokenizer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", []),
        ("   ", []),
        ("a b  c", ["a", "b", "c"]),
        ("a\tb\nc\u00a0d", ["a", "b", "c", "d"]),
        ('"a b" c', ["a b", "c"]),
        ("'a b' c", ["a b", "c"]),
        ("“smart quotes” ‘too’", ["smart quotes", "too"]),
        ('“mixed"', ["mixed"]),
        ('x"y z"w', ["xy zw"]),
        ('""', [""]),
        (r"a\ b", ["a b"]),
        (r'"say \"hi\""', ['say "hi"']),
        (r'"back\\slash"', ["back\\slash"]),
        (r'"keep \n"', ["keep \\n"]),
        (r"'no \escapes'", ["no \\escapes"]),
        ('"it\'s"', ["it's"]),
        ("trailing\\", ["trailing\\"]),
        ("--flag=value --flag value", ["--flag=value", "--flag", "value"]),
        ('--display-name="My model"', ["--display-name=My model"]),
        ("a &amp; b &lt;c&gt;", ["a", "&", "b", "<c>"]),
        ("&amp;amp;", ["&amp;"]),
        ("<@U123|bob> <@W9>", ["<@U123>", "<@W9>"]),
        ("<#C123|general> <#G7>", ["<#C123>", "<#G7>"]),
        ("<https://example.com/x|example.com/x>", ["https://example.com/x"]),
        ("<mailto:a@b.c|a@b.c>", ["a@b.c"]),
        ("<!here> <!subteam^S1|@ops>", ["@here", "<!subteam^S1>"]),
        ('"<@U1|x> hi"', ["<@U1> hi"]),
        ("a<b", ["a<b"]),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


@pytest.mark.parametrize("text", ['deploy "x', "it's", "“open", "‘x", 'a "b\\"'])
def test_unbalanced_quote_is_named(text: str) -> None:
    with pytest.raises(UsageError) as e:
        tokenize(text)
    assert "unbalanced quote" in e.value.message.lower()


def test_unbalanced_quote_in_a_command_names_the_subcommand() -> None:
    e = err('deploy x --display-name "oops')
    assert "nbalanced quote" in e.message
    assert e.subcommand == "deploy"
    assert e.usage.startswith("/fw deploy <model>")


@given(st.lists(st.text(), max_size=6))
def test_tokenize_inverts_quote(args: list[str]) -> None:
    assert tokenize(quote(args)) == args


def test_slack_text_helpers() -> None:
    assert slack_escape("a & <b>") == "a &amp; &lt;b&gt;"
    assert slack_to_plain("hi <@U1|bob> in <#C1|ops>: a &lt; b <https://x.y|x.y>") == "hi @bob in #ops: a < b https://x.y"
    assert slack_to_plain("<@U1>") == "<@U1>"


# --- parse: one happy path per subcommand ------------------------------------------------------


def test_empty_text_is_help() -> None:
    assert p("") == HelpCommand(raw="")
    assert isinstance(p("  --help "), HelpCommand)


def test_deploy_without_arguments_opens_the_modal() -> None:
    cmd = p("deploy")
    assert isinstance(cmd, DeployModalCommand)
    assert cmd.verb == "deploy_modal"


def test_deploy_full() -> None:
    cmd = p(
        "deploy llama-v3p1-8b-instruct --deployment-id my-llama --display-name “Team llama” "
        "--min-replica-count 1 --max-replica-count=3 --accelerator-type H100 --accelerator-count 2 "
        "--scale-up-window 1m --scale-down-window 15m --scale-to-zero-window 1h30m "
        "--unused-auto-delete-duration 0 --load-targets default=0.7,requests_per_second=5 --enable-addons --dry-run"
    )
    assert isinstance(cmd, DeployCommand)
    assert cmd.verb == "deploy" and cmd.dry_run and cmd.changes
    s = cmd.spec
    assert s.base_model == LLAMA
    assert s.deployment_id == "my-llama"
    assert s.display_name == "Team llama"
    assert (s.min_replica_count, s.max_replica_count) == (1, 3)
    assert (s.accelerator_type, s.accelerator_count) == ("NVIDIA_H100_80GB", 2)
    assert (s.scale_up_window_s, s.scale_down_window_s, s.scale_to_zero_window_s) == (60, 900, 5400)
    assert s.unused_auto_delete_s == 0
    assert s.load_targets == {"default": 0.7, "requests_per_second": 5.0}
    assert s.enable_addons is True


def test_deploy_defaults() -> None:
    cmd = p("deploy accounts/acme/models/custom")
    assert isinstance(cmd, DeployCommand)
    assert not cmd.dry_run
    assert cmd.spec.base_model == "accounts/acme/models/custom"
    assert (cmd.spec.min_replica_count, cmd.spec.max_replica_count) == (0, 1)
    assert cmd.spec.unused_auto_delete_s is None and cmd.spec.enable_addons is False


def test_world_size_is_accelerator_count_and_flags_in_any_order() -> None:
    a = p("deploy --world-size 4 llama-v3p1-8b-instruct --accelerator-type=b200")
    b = p("deploy llama-v3p1-8b-instruct --accelerator-count=4 --accelerator-type b200")
    assert isinstance(a, DeployCommand) and isinstance(b, DeployCommand)
    assert a.spec == b.spec
    assert a.spec.accelerator_count == 4


def test_bool_flag_values() -> None:
    on = p("deploy x --enable-addons=true")
    off = p("deploy x --enable-addons=no")
    assert isinstance(on, DeployCommand) and on.spec.enable_addons is True
    assert isinstance(off, DeployCommand) and off.spec.enable_addons is False
    assert "on or off" in err("deploy x --enable-addons=maybe").message


def test_bool_flag_does_not_swallow_the_next_word() -> None:
    cmd = p("delete --hard my-llama")
    assert cmd == DeleteCommand(deployment_id="my-llama", hard=True, raw="delete --hard my-llama")


def test_double_dash_and_quoted_dashes_are_values() -> None:
    cmd = p('deploy x --display-name "--weird--"')
    assert isinstance(cmd, DeployCommand) and cmd.spec.display_name == "--weird--"
    e = err("get -- --x")
    assert "deployment id" in e.message.lower()


def test_simple_commands() -> None:
    assert p("list") == ListCommand(scope="all", raw="list")
    assert p("list MINE") == ListCommand(scope="mine", raw="list MINE")
    assert p("get my-llama") == GetCommand(deployment_id="my-llama", raw="get my-llama")
    status = p("status my-llama")
    assert isinstance(status, GetCommand) and status.verb == "get"
    assert p("scale my-llama 0 --dry-run") == ScaleCommand(
        deployment_id="my-llama", replicas=0, dry_run=True, raw="scale my-llama 0 --dry-run"
    )
    assert p("delete my-llama") == DeleteCommand(deployment_id="my-llama", raw="delete my-llama")
    assert p("undelete my-llama --dry-run").dry_run
    assert isinstance(p("undelete my-llama"), UndeleteCommand)
    assert p("adopt ymlz8joa") == AdoptCommand(deployment_id="ymlz8joa", raw="adopt ymlz8joa")
    assert p("audit") == AuditCommand(raw="audit")
    assert p("audit my-llama") == AuditCommand(deployment_id="my-llama", raw="audit my-llama")
    assert p("help") == HelpCommand(raw="help")
    assert p("help status") == HelpCommand(topic="get", raw="help status")


def test_case_insensitive_subcommands_and_full_deployment_names() -> None:
    cmd = p("GET accounts/acme/deployments/my-llama")
    assert cmd == GetCommand(deployment_id="my-llama", raw="GET accounts/acme/deployments/my-llama")
    e = err("get accounts/other/deployments/my-llama")
    assert "`other`" in e.message and "`acme`" in e.message


def test_update() -> None:
    cmd = p("update my-llama --min-replica-count 1 --max-replica-count 4 --scale-to-zero-window 15m --unused-auto-delete-duration 48h")
    assert isinstance(cmd, UpdateCommand)
    assert cmd.deployment_id == "my-llama"
    assert cmd.change.update_mask() == "min_replica_count,max_replica_count,autoscaling_policy.scale_to_zero_window"
    assert cmd.change.unused_auto_delete_s == 48 * 3600
    assert cmd.change.fields_set == {"min_replica_count", "max_replica_count", "scale_to_zero_window_s", "unused_auto_delete_s"}


def test_lora() -> None:
    cmd = p("lora load my-adapter --deployment my-llama")
    assert cmd == LoraCommand(
        action="load", addon_model="accounts/acme/models/my-adapter", deployment_id="my-llama",
        raw="lora load my-adapter --deployment my-llama",
    )
    other = p("lora UNLOAD fireworks/some-lora --deployment=my-llama --dry-run")
    assert isinstance(other, LoraCommand)
    assert (other.action, other.addon_model, other.dry_run) == ("unload", "accounts/fireworks/models/some-lora", True)


def test_keep_owner_budget() -> None:
    assert p("keep my-llama") == KeepCommand(deployment_id="my-llama", duration_s=3600, raw="keep my-llama")
    keep = p("keep my-llama 1h30m --dry-run")
    assert isinstance(keep, KeepCommand) and keep.duration_s == 5400 and keep.dry_run
    assert p("owner my-llama <@U123ABC|alice>") == OwnerCommand(
        deployment_id="my-llama", user_id="U123ABC", raw="owner my-llama <@U123ABC|alice>"
    )
    owner = p("owner my-llama <@W42>")
    assert isinstance(owner, OwnerCommand) and owner.user_id == "W42"
    budget = p("budget <#C0123|ml-team> $1,250.50")
    assert budget == BudgetCommand(channel_id="C0123", usd_per_month=1250.5, raw="budget <#C0123|ml-team> $1,250.50")


@pytest.mark.parametrize(
    ("text", "period", "by"),
    [
        ("cost", CostPeriod("month"), "deployment"),
        ("cost today", CostPeriod("today"), "deployment"),
        ("cost week --by owner", CostPeriod("week"), "owner"),
        ("cost --by=MODEL month", CostPeriod("month"), "model"),
        ("cost 2026-11-01..2026-11-15 --by channel", CostPeriod("range", date(2026, 11, 1), date(2026, 11, 15)), "channel"),
        ("cost 2026-11-03", CostPeriod("range", date(2026, 11, 3), date(2026, 11, 3)), "deployment"),
    ],
)
def test_cost(text: str, period: CostPeriod, by: str) -> None:
    cmd = p(text)
    assert isinstance(cmd, CostCommand)
    assert (cmd.period, cmd.by) == (period, by)


def test_models_and_query_take_the_rest_verbatim() -> None:
    assert p("models") == ModelsCommand(raw="models")
    assert p("models llama  70b") == ModelsCommand(query="llama  70b", raw="models llama  70b")
    q = p("query my-llama What's 2 &amp; 2?  Don't \"quote\" me")
    assert q == QueryCommand(
        deployment_id="my-llama", prompt="What's 2 & 2?  Don't \"quote\" me",
        raw="query my-llama What's 2 &amp; 2?  Don't \"quote\" me",
    )
    one = p('query my-llama "Write a haiku"')
    assert isinstance(one, QueryCommand) and one.prompt == "Write a haiku"
    mention = p("query my-llama hi <@U1|bob>")
    assert isinstance(mention, QueryCommand) and mention.prompt == "hi @bob"
    assert p("models --help") == HelpCommand(topic="models", raw="models --help")


def test_help_flag_on_any_subcommand() -> None:
    for name in SUBCOMMANDS:
        assert p(f"{name} --help") == HelpCommand(topic=name, raw=f"{name} --help")
    assert p("deploy x --max-replica-count 2 -h") == HelpCommand(topic="deploy", raw="deploy x --max-replica-count 2 -h")


def test_dry_run_exactly_on_commands_that_change_something() -> None:
    changing = {"deploy", "update", "scale", "delete", "undelete", "lora", "keep", "owner", "schedule"}
    assert {n for n in SUBCOMMANDS if subcommand(n).changes} == changing
    e = err("list --dry-run")
    assert "--dry-run" in e.message and e.subcommand == "list"


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sub", "needle"),
    [
        # The example from the product contract.
        ("deploy --min-replica-count 3 --max-replica-count 1 x", "deploy",
         "`--min-replica-count` (3) is greater than `--max-replica-count` (1)"),
        ("delpoy x", None, "Did you mean `/fw deploy`?"),
        ("frobnicate", None, "Subcommands:"),
        ("deploy x --min-replicas 2", "deploy", "Did you mean `--min-replica-count`?"),
        ("deploy x -x", "deploy", "`-x` is not a flag"),
        ("get my-llama --hard", "get", "takes no flags"),
        ("deploy x --display-name", "deploy", "`--display-name` needs a value"),
        ("deploy x --display-name --enable-addons", "deploy", "needs a value"),
        ("deploy x --max-replica-count two", "deploy", "`--max-replica-count` must be a whole number, not `two`"),
        ("deploy x --max-replica-count 1.5", "deploy", "whole number"),
        ("deploy x --max-replica-count -1", "deploy", "can't be negative"),
        ("deploy x --max-replica-count 99999999999", "deploy", "too large"),
        ("deploy x --accelerator-count 0", "deploy", "at least 1"),
        ("deploy x --max-replica-count 1 --max-replica-count 2", "deploy", "given twice"),
        ("deploy x --scale-to-zero-window 5min", "deploy", "Go syntax"),
        ("deploy x --scale-up-window -1m", "deploy", "can't be negative"),
        ("deploy x --deployment-id My-Llama", "deploy", "uppercase"),
        ("deploy x --deployment-id 1llama", "deploy", "start with a letter"),
        ("deploy x --deployment-id llama-", "deploy", "must not end with `-`"),
        ("deploy x --deployment-id my_llama", "deploy", "may only contain"),
        ("deploy x --deployment-id " + "a" * 64, "deploy", "63"),
        ("deploy x --display-name " + "n" * 64, "deploy", "under 64"),
        ("deploy x --accelerator-type h900", "deploy", "h100, h200"),
        ("deploy x --accelerator-count 2 --world-size 2", "deploy", "not both"),
        ("deploy x --load-targets default", "deploy", "not KEY=VALUE"),
        ("deploy x --load-targets default=high", "deploy", "positive number"),
        ("deploy x --load-targets defualt=0.5", "deploy", "Did you mean `default`?"),
        ("deploy x --load-targets default=0.5,,", "deploy", "empty entry"),
        ("deploy x --load-targets default=0.5,default=0.6", "deploy", "twice"),
        ("deploy x --deployment-shape huge", "deploy", "neither a preset"),
        ("deploy x --deployment-shape fast --accelerator-count 2", "deploy", "decides the accelerator"),
        ("deploy Llama-3", "deploy", "uppercase"),
        ("deploy a/b/c", "deploy", "not a model name"),
        ("deploy x y", "deploy", "too many arguments"),
        ("deploy --max-replica-count 2", "deploy", "missing `<model>`"),
        ("update my-llama", "update", "nothing to change"),
        ("update my-llama --deployment-id x", "update", "not a flag"),
        ("update my-llama --min-replica-count 2 --max-replica-count 1", "update", "is greater than"),
        ("scale my-llama -1", "scale", "can't be negative"),
        ("scale my-llama", "scale", "missing `<replicas>`"),
        ("scale my-llama many", "scale", "whole number"),
        ("get", "get", "missing `<id>`"),
        ("get a b", "get", "too many arguments: `b`"),
        ("list some", "list", "must be one of `mine`, `all`"),
        ("lora load my-adapter", "lora", "`--deployment <id>` is required"),
        ("lora reload my-adapter --deployment d", "lora", "Did you mean `load`?"),
        ("lora load --deployment d", "lora", "missing `<addon-model>`"),
        ("keep my-llama forever", "keep", "Go syntax"),
        ("keep my-llama 0", "keep", "longer than 0"),
        ("owner my-llama @bob", "owner", "mention them with @"),
        ("owner my-llama", "owner", "missing `<@user>`"),
        ("budget #ml-team 100", "budget", "pick it with #"),
        ("budget <#C1|x> 0", "budget", "positive amount"),
        ("budget <#C1|x> -5", "budget", "positive amount"),
        ("budget <#C1|x> lots", "budget", "positive amount"),
        ("budget <#C1|x> nan", "budget", "positive amount"),
        ("budget <#C1|x>", "budget", "missing `<usd-per-month>`"),
        ("cost yesterday", "cost", "not a period"),
        ("cost 2026-02-30", "cost", "does not exist"),
        ("cost 2026-11-15..2026-11-01", "cost", "ends before it starts"),
        ("cost --by team", "cost", "must be one of `owner`, `channel`, `deployment`, `model`"),
        ("query my-llama", "query", "missing `<prompt…>`"),
        ("query", "query", "missing `<id>`"),
        ("query --dry-run x hi", "query", "no `--dry-run`"),
        ("help nope", "help", "no subcommand `nope`"),
        ("help delpoy", "help", "Did you mean `/fw deploy`?"),
    ],
)
def test_usage_errors(text: str, sub: str | None, needle: str) -> None:
    e = err(text)
    assert needle.lower() in e.message.lower()
    assert e.subcommand == sub
    assert e.usage == usage_line(sub)
    assert e.message[:1] == e.message[:1].upper()
    reply = e.to_mrkdwn()
    assert e.message in reply and e.usage in reply


def test_errors_name_the_flag_for_forms() -> None:
    assert err("deploy x --max-replica-count two").flag == "max-replica-count"
    assert err("deploy --min-replica-count 3 --max-replica-count 1 x").flag == "min-replica-count"
    assert err("deploy x --accelerator-type h900").flag == "accelerator-type"
    assert err("deploy x y").flag is None


def test_usage_lines_follow_the_product_contract() -> None:
    assert usage_line("get") == "/fw get <id>"
    assert usage_line("status") == "/fw get <id>"
    assert usage_line("list") == "/fw list [mine|all] [--filter FILTER] [--order-by FIELDS] [--show-deleted]"
    assert usage_line("scale") == "/fw scale <id> [<replicas>] [--replica-count N] [--dry-run]"
    assert usage_line("delete") == "/fw delete <id> [--hard] [--ignore-checks] [--dry-run]"
    assert usage_line("lora") == ("/fw lora load|unload <addon-model> [--deployment <id>] [--replace-merged-addon] "
                                  "[--public] [--dry-run]")
    assert usage_line("keep") == "/fw keep <id> [D] [--dry-run]"
    assert usage_line("owner") == "/fw owner <id> <@user> [--dry-run]"
    assert usage_line("budget") == "/fw budget <#channel> <usd-per-month>"
    assert usage_line("audit") == "/fw audit [<id>]"
    assert usage_line("models") == "/fw models [query]"
    assert usage_line("help") == "/fw help [subcommand]"
    assert usage_line("cost") == "/fw cost [today|week|month|<from>..<to>] [--by owner|channel|deployment|model]"
    assert usage_line(None).startswith("/fw <subcommand>")


SPEC_DEPLOY_FLAGS = [
    "deployment-id", "display-name", "description", "deployment-shape", "min-replica-count", "max-replica-count",
    "accelerator-type", "accelerator-count", "world-size", "scale-up-window", "scale-down-window",
    "scale-to-zero-window", "unused-auto-delete-duration", "load-targets", "enable-addons",
    # firectl's serving flags (tests/handlers/test_deploy_flags.py)
    "precision", "region", "max-context-length", "long-prompt", "draft-model", "draft-token-count",
    "ngram-speculation-length", "disable-speculative-decoding", "enable-mtp", "enable-session-affinity",
    # fwbot's own: an admin's reason to go ahead against the team policy
    "override",
    "dry-run",
]
# Only a create takes these (placement cannot be changed in place; the other is a create parameter).
CREATE_ONLY_FLAGS = ("deployment-id", "region", "disable-speculative-decoding")


def test_deploy_and_update_take_the_contracts_flags() -> None:
    assert [f.name for f in subcommand("deploy").flags] == SPEC_DEPLOY_FLAGS
    assert [f.name for f in subcommand("update").flags] == [f for f in SPEC_DEPLOY_FLAGS
                                                             if f not in CREATE_ONLY_FLAGS]
    assert set(SUBCOMMANDS) == {
        "deploy", "list", "get", "update", "scale", "delete", "undelete", "lora", "keep", "owner",
        "adopt", "cost", "budget", "audit", "models", "query", "help", "policy", "quota", "schedule",
    }


# --- properties ------------------------------------------------------------------------------

_words = st.sampled_from(
    [*SUBCOMMANDS, "status", "--dry-run", "--hard", "--by", "owner", "mine", "all", "load", "unload",
     "--deployment", "x", "my-llama", "0", "-1", "3", "1h", "5min", '"', "“", "'", "\\", "--", "-h",
     "<@U1|a>", "<#C1|c>", "&amp;", "$5", "2026-11-01..2026-11-02", "--load-targets", "default=0.5",
     "--accelerator-type", "h100", "--min-replica-count", "--max-replica-count", "=", "--world-size",
     "--deployment-shape", "fast", "accounts/acme/deployments/x", "--enable-addons=false"]
    + [f"--{f}" for f in SPEC_DEPLOY_FLAGS]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_words, max_size=8).map(" ".join)))
def test_parse_raises_nothing_but_usage_errors(text: str) -> None:
    try:
        cmd = p(text)
    except UsageError as e:
        assert e.message
        assert e.usage
        return
    assert isinstance(cmd, ParsedCommand)
    assert cmd.raw == text


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 50), st.integers(0, 50), st.sampled_from(["h100", "b200", "NVIDIA_H200_141GB"]),
    st.sampled_from(["90s", "10m", "1h30m", "168h", "0"]),
)
def test_deploy_replicas_property(lo: int, hi: int, accel: str, window: str) -> None:
    text = f"deploy llama-v3p1-8b-instruct --min-replica-count {lo} --max-replica-count {hi} " \
           f"--accelerator-type {accel} --scale-down-window {window}"
    if lo > hi:
        assert f"({lo}) is greater than" in err(text).message
    else:
        cmd = p(text)
        assert isinstance(cmd, DeployCommand)
        assert (cmd.spec.min_replica_count, cmd.spec.max_replica_count) == (lo, hi)


@given(st.lists(st.text(min_size=1).filter(lambda s: not s.startswith("-")), min_size=1, max_size=4))
def test_quoted_display_names_survive(words: list[str]) -> None:
    name = " ".join(words)[:63]
    cmd = p("deploy x --display-name " + quote([name]))
    assert isinstance(cmd, DeployCommand)
    assert cmd.spec.display_name == name


# --- help -------------------------------------------------------------------------------------


def test_overview_lists_every_subcommand_by_group() -> None:
    text = help_text()
    for name in SUBCOMMANDS:
        assert f"`/fw {name}" in text
        assert subcommand(name).summary in text
    for group in ("Deployments", "LoRA", "Ownership & lifecycle", "Money", "Other"):
        assert f"*{group}*" in text
    assert text.index("*Deployments*") < text.index("*LoRA*") < text.index("*Money*") < text.index("*Other*")


def test_overview_explains_durations_models_and_accelerators() -> None:
    text = help_text(None)
    for needle in ("90s", "10m", "1h30m", "168h", "--unused-auto-delete-duration 0",
                   "llama-v3p1-8b-instruct", "h100", "NVIDIA_H100_80GB", "--dry-run"):
        assert needle in text


def test_overview_extra_sections() -> None:
    text = help_text(None, extra_sections=["*Approvals* are off.", "Simulated Fireworks."])
    assert text.endswith("*Approvals* are off.\n\nSimulated Fireworks.")
    assert "Approvals" not in help_text("deploy", extra_sections=["*Approvals* are off."])


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_help_shows_usage_every_flag_and_an_example_that_parses(name: str) -> None:
    sub = subcommand(name)
    text = help_text(name)
    assert text.startswith(f"*/fw {name}*")
    assert f"`{sub.usage}`" in text
    for f in sub.flags:
        assert f"`{f.synopsis}`" in text
        assert f.help in text
    for pos in sub.positionals:
        assert f"`{pos.metavar}`" in text
    assert sub.example and f"`{sub.example}`" in text
    for example in (sub.example, *sub.examples_more):
        # Slack turns typed @names and #channels into mentions before the bot sees them.
        slack = re.sub(r"@(\w+)", lambda m: f"<@U0{m[1].upper()}|{m[1]}>", example)
        slack = re.sub(r"#([\w-]+)", r"<#C0ML|\1>", slack)
        assert p(slack.removeprefix("/fw ")).verb in (name, "deploy_modal")


def test_help_mentions_go_durations_where_durations_are_taken() -> None:
    for name in ("deploy", "update", "keep"):
        assert "Go syntax" in help_text(name)
    assert "Go syntax" not in help_text("get")
    assert "`0` turns bot auto-delete off" in help_text("update")
    assert "h100" in help_text("deploy") and "short id" in help_text("deploy")


def test_help_by_alias_and_unknown_topic() -> None:
    assert help_text("status") == help_text("get")
    assert "Also: `/fw status`" in help_text("get")
    with pytest.raises(UsageError) as e:
        help_text("nope")
    assert e.value.subcommand == "help"


def test_a_word_ending_in_a_newline_is_quoted():
    name = "0\n"
    cmd = p("deploy x --display-name " + quote([name]))
    assert isinstance(cmd, DeployCommand) and cmd.spec.display_name == name


def test_an_id_never_keeps_a_trailing_newline():
    cmd = p('deploy x --deployment-id "my-dep\n"')
    assert isinstance(cmd, DeployCommand) and cmd.spec.deployment_id == "my-dep"
    assert "deployment id" in err('deploy x --deployment-id "my-dep\nx"').message.lower()


@pytest.mark.parametrize("text, replicas", [
    ("scale x 3", 3), ("scale x --replica-count 3", 3), ("scale x --replica-count=0", 0), ("scale x —replica-count 2", 2),
])
def test_scale_takes_the_count_as_an_argument_or_as_firectls_flag(text, replicas):
    assert parse(text, account_id="a").replicas == replicas


@pytest.mark.parametrize("text, words", [
    ("scale x", "missing `<replicas>`"), ("scale x 2 --replica-count 3", "not both"),
    ("scale x --replica-count -1", "negative"), ("scale x --replica-count many", "replica-count"),
])
def test_scale_without_one_count_is_refused_in_words(text, words):
    with pytest.raises(UsageError) as e:
        parse(text, account_id="a")
    assert words in e.value.message.lower()
