"""The /fw table: every verb of the grammar has exactly one use case in bot/services/commands.py."""

from __future__ import annotations

import inspect

from bot.core import grammar, requests
from bot.services.commands import VERBS

# Answered by the listener itself: help in the ack, the bare `/fw deploy` by opening the form.
ANSWERED_BY_THE_LISTENER = {"help"}


def test_every_verb_of_the_grammar_has_one_use_case_and_no_use_case_lacks_a_verb():
    verbs = set(grammar.SUBCOMMANDS) - ANSWERED_BY_THE_LISTENER
    assert set(VERBS) == verbs


def test_each_use_case_takes_the_request_its_verb_parses_to():
    parsed = {
        "deploy": "deploy llama-v3p1-8b-instruct", "list": "list", "get": "get x", "update": "update x --min-replica-count 1",
        "scale": "scale x 1", "delete": "delete x", "undelete": "undelete x", "lora": "lora load a --deployment x",
        "keep": "keep x", "owner": "owner x <@U123ABC>", "adopt": "adopt x", "audit": "audit", "cost": "cost",
        "budget": "budget <#C123ABC> 100", "models": "models", "query": "query x hi", "policy": "policy",
        "quota": "quota",
        "schedule": "schedule x --down 19:00",
    }
    assert set(parsed) == set(VERBS)
    for verb, text in parsed.items():
        cmd = grammar.parse(text, account_id="a")
        assert cmd.verb == verb and isinstance(cmd, requests.ParsedCommand)
        hint = list(inspect.signature(VERBS[verb]).parameters.values())[1].annotation
        assert type(cmd).__name__ in str(hint), (verb, hint)
