"""Settings are validated at start-up: a bad value stops ``fwbot run``/``fwbot dev`` with one line."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.core.settings import Settings, settings_problems
from tests.reliability.test_database_trouble import fwbot, one_line, run

BAD = [
    ("FWBOT_SYNC_INTERVAL", "-5s", "positive duration"),
    ("FWBOT_SYNC_INTERVAL", "0", "positive duration"),
    ("FWBOT_APPROVAL_EXPIRY", "soon", "duration like"),
    ("FWBOT_METRICS_INTERVAL", "5s", "at least 10s"),
    ("FWBOT_WARN_BEFORE_SCALE_TO_ZERO", "-1m", "0 or more"),
    ("FWBOT_COST_SUMMARY_CRON", "bogus", "5-field crontab expression"),
    ("FWBOT_COST_SUMMARY_CRON", "0 9 * * 8", "valid crontab expression"),
    ("FWBOT_TIMEZONE", "Mars/Olympus_Mons", "IANA timezone"),
    ("FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR", "lots", "number of USD per hour"),
    ("FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR", "-3", "number of USD per hour"),
    ("FWBOT_PRICES", "NVIDIA_H100_80GB=cheap", "ACCELERATOR_TYPE=USD_PER_GPU_HOUR"),
    ("FWBOT_PRICES", "NVIDIA_H100_80GB", "ACCELERATOR_TYPE=USD_PER_GPU_HOUR"),
    ("FWBOT_PRICES", "NVIDIA_H100_80GB=nan", "ACCELERATOR_TYPE=USD_PER_GPU_HOUR"),
    ("FWBOT_WARN_BEFORE_DELETE", "24h,tomorrow", "comma-separated list"),
    ("FWBOT_WARN_BEFORE_DELETE", "24h,-1h", "0 or more"),
    ("FWBOT_LEADER_LEASE", "0s", "positive duration"),
]


def load(monkeypatch, **env: str) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)


@pytest.mark.parametrize("key, value, allowed", BAD)
def test_a_bad_value_is_one_problem_naming_key_value_and_what_is_allowed(monkeypatch, tmp_path, key, value, allowed):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError) as e:
        load(monkeypatch, **{key: value})
    [line] = settings_problems(e.value)
    assert key in line and repr(value) in line and allowed in line, line


def test_good_values_load(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = load(monkeypatch, FWBOT_SYNC_INTERVAL="45s", FWBOT_COST_SUMMARY_CRON="0 9 1 * mon",
             FWBOT_TIMEZONE="Europe/Berlin", FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR="12.5",
             FWBOT_PRICES="NVIDIA_H100_80GB=6.5, NVIDIA_B200_180GB=0", FWBOT_WARN_BEFORE_DELETE="1h,24h,0",
             FWBOT_WARN_BEFORE_SCALE_TO_ZERO="0")
    assert s.sync_interval == 45.0 and s.cost_summary_cron == "0 9 1 * mon"
    assert s.approval_threshold_usd_per_hour == 12.5
    assert s.prices == {"NVIDIA_H100_80GB": 6.5, "NVIDIA_B200_180GB": 0.0}
    assert s.warn_before_delete == [86400.0, 3600.0, 0.0] and s.warn_before_scale_to_zero == 0.0
    monkeypatch.delenv("FWBOT_COST_SUMMARY_CRON")
    monkeypatch.delenv("FWBOT_SYNC_INTERVAL")
    default = load(monkeypatch)
    assert default.cost_summary_cron == "0 9 * * MON" and default.sync_interval == 30.0


def test_the_leader_lease_lasts_three_syncs_and_at_least_15s_unless_set(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert load(monkeypatch).leader_lease_s == 90.0
    assert load(monkeypatch, FWBOT_SYNC_INTERVAL="1s").leader_lease_s == 15.0
    assert load(monkeypatch, FWBOT_LEADER_LEASE="3s").leader_lease_s == 3.0


def test_secrets_are_not_echoed():
    class Fake:
        def errors(self):
            return [{"loc": ("SLACK_BOT_TOKEN",), "input": 42, "msg": "Input should be a valid string"}]

    [line] = settings_problems(Fake())  # type: ignore[arg-type]
    assert "42" not in line and "SLACK_BOT_TOKEN" in line


@pytest.mark.parametrize("key, value, allowed", [
    ("FWBOT_SYNC_INTERVAL", "-5s", "positive duration"),
    ("FWBOT_COST_SUMMARY_CRON", "bogus", "crontab"),
    ("FWBOT_TIMEZONE", "Nowhere/Town", "IANA timezone"),
    ("FWBOT_APPROVAL_THRESHOLD_USD_PER_HOUR", "abc", "number"),
    ("FWBOT_PRICES", "NVIDIA_H100_80GB=cheap", "ACCELERATOR_TYPE=USD_PER_GPU_HOUR"),
    ("FWBOT_WARN_BEFORE_DELETE", "1d", "duration"),
])
def test_fwbot_run_stops_with_one_line_and_status_2(tmp_path, key, value, allowed):
    proc = run([*fwbot(), "run"], tmp_path, FWBOT_DB=str(tmp_path / "fwbot.db"), **{key: value})
    line = one_line(proc, key, repr(value), allowed)
    assert line.startswith("fwbot: ")
    assert not (tmp_path / "fwbot.db").exists()  # stopped before touching anything


def test_fwbot_run_reports_every_bad_setting_one_line_each(tmp_path):
    proc = run([*fwbot(), "run"], tmp_path, FWBOT_SYNC_INTERVAL="-5s", FWBOT_TIMEZONE="Nowhere/Town")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "FWBOT_SYNC_INTERVAL" in lines[0] and "FWBOT_TIMEZONE" in lines[1], proc.stderr


def test_fwbot_dev_stops_with_one_line_and_status_2(tmp_path):
    proc = run([*fwbot(), "dev", "--port", "0", "--db", str(tmp_path / "dev.db")], tmp_path,
               FWBOT_COST_SUMMARY_CRON="61 9 * * *")
    line = one_line(proc, "FWBOT_COST_SUMMARY_CRON", "'61 9 * * *'", "crontab")
    assert line.startswith("fwbot dev: ")
