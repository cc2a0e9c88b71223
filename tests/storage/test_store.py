"""storage/store.py: the facade is every repository on one object, and no repository hides another's method."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.effects import Effects
from storage.rows import Repository
from storage.store import Store

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
REPOSITORIES = [c for c in Store.__mro__ if issubclass(c, Repository) and c not in (Store, Repository)]


def test_no_two_repositories_define_the_same_name():
    seen: dict[str, str] = {}
    clashes = []
    for repo in REPOSITORIES:
        for name in vars(repo):
            if name.startswith("__"):
                continue
            if name in seen:
                clashes.append(f"{name}: {seen[name]} and {repo.__name__}")
            seen[name] = repo.__name__
    assert clashes == []
    assert len(REPOSITORIES) >= 10


def test_one_store_shares_one_database_across_its_repositories(db):
    store = Store(db)
    assert store.db is db and isinstance(store.effects, Effects) and store.effects.db is db
    # A write through one repository is read through another (the same database).
    store.claim_deployment("d1", "accounts/a/deployments/d1", owner="U1", channel="C1", now=T0, created_by_bot=True)
    store.audit(actor="U1", action="deploy", result="ok", now=T0, deployment_id="d1")
    assert store.live_owners() == ["U1"]
    assert [r["deployment_id"] for r in store.audit_trail("d1")] == ["d1"]


def test_a_repository_works_on_its_own(db):
    for repo in REPOSITORIES:
        assert repo(db).db is db


def test_empty_id_lists_read_nothing_on_either_engine(db):
    """SQLAlchemy renders an empty ``IN`` as a typed NULL: it must be text, or PostgreSQL refuses it."""
    from datetime import UTC, datetime

    from storage.store import Store

    store = Store(db)
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    store.record_traffic_many({}, now)
    assert store.deployments_with_ids([]) == []
    assert store.record_replicas_many(now, []) == []
    assert store.action_statuses([]) == {}
