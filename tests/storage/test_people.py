"""storage/people.py on a real database (SQLite, and PostgreSQL when given): what Slack said of a
person, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.people import PeopleRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_a_person_is_remembered_with_when_and_replaced_by_a_newer_profile(db):
    people = PeopleRepo(db)
    assert people.person("U1") is None
    people.remember_person("U1", {"tz": "Europe/Paris", "name": "ana", "deleted": False}, T0)
    assert people.person("U1") == (T0, {"deleted": False, "name": "ana", "tz": "Europe/Paris"})
    later = T0 + timedelta(hours=2)
    people.remember_person("U1", {"name": "ana", "deleted": True}, later)
    assert people.person("U1") == (later, {"deleted": True, "name": "ana"})
    assert db.scalar("SELECT profile FROM slack_people") == '{"deleted":true,"name":"ana"}'  # compact, sorted
    assert people.person("U2") is None
