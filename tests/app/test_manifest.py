"""manifest.yml installs as-is: it validates against Slack's published schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


def test_manifest_validates_against_slack_schema(shared_dir):
    schema = json.loads((shared_dir / "slack" / "manifest.schema.1.0.0.json").read_text())
    manifest = yaml.safe_load(MANIFEST.read_text())
    jsonschema.validate(manifest, schema)


def test_manifest_has_what_fwbot_uses():
    manifest = yaml.safe_load(MANIFEST.read_text())
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert commands == {"/fw"}
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # posting, DMs, user lookups (timezones, deactivated owners), user-group approvers, charts
    assert {"commands", "chat:write", "im:write", "users:read", "usergroups:read", "files:write"} <= scopes
    assert manifest["features"]["app_home"]["home_tab_enabled"]
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert manifest["settings"]["interactivity"]["is_enabled"]
    assert manifest["settings"]["socket_mode_enabled"]
