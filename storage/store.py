"""The one object the rest of fwbot queries SQLite through: every repository on one ``Store``.

Everything the bot must not forget lives in the repositories, one module per aggregate: who owns
each deployment and where it is tracked (:mod:`storage.deployments`), what a sync mirrors from
Fireworks (:mod:`storage.mirror`), replica and traffic history (:mod:`storage.history`), the audit
trail (:mod:`storage.audit`), warnings sent (:mod:`storage.warnings`), the bot's own scheduled
actions (:mod:`storage.actions`), approvals (:mod:`storage.approvals`), budgets
(:mod:`storage.budgets`), scheduled posts (:mod:`storage.posts`), what Slack said of people
(:mod:`storage.people`), small named values (:mod:`storage.kv`), the cost history's reads and
rollups (:mod:`storage.costs`), which replica leads and which are running (:mod:`storage.leases`), off-hours schedules
(:mod:`storage.schedules`),
and the outbox's effects (:mod:`storage.effects`, as
``store.effects``), renewals of deployments' lifetimes (:mod:`storage.renewals`). Shared helpers are in :mod:`storage.rows`.

``Store`` inherits the repositories rather than holding them: one object, one ``self``, so a
method calls another of any repository through ``self`` as it did when they were one class
(``mirror_many`` runs ``self.mirror``), every call site (``store.deployment(...)``) is
unchanged, and a test that replaces a method on ``Store`` replaces it for those inner calls too.
No two repositories define the same name (``tests/storage/test_store.py``), so the order of the
bases changes no method; ``MirrorRepo`` comes first because it extends two of the others.
"""

from __future__ import annotations

from storage.actions import ActionsRepo
from storage.approvals import ApprovalsRepo
from storage.audit import AuditRepo
from storage.budgets import BudgetsRepo
from storage.costs import CostsRepo
from storage.db import Database
from storage.deployments import DeploymentsRepo
from storage.effects import Effects
from storage.history import HistoryRepo
from storage.kv import KvRepo
from storage.leases import LeasesRepo
from storage.mirror import MirrorRepo
from storage.people import PeopleRepo
from storage.posts import PostsRepo
from storage.renewals import RenewalsRepo
from storage.schedules import SchedulesRepo
from storage.warnings import WarningsRepo


class Store(MirrorRepo, DeploymentsRepo, HistoryRepo, AuditRepo, WarningsRepo, ActionsRepo, ApprovalsRepo,
            BudgetsRepo, PostsRepo, PeopleRepo, KvRepo, CostsRepo, LeasesRepo, SchedulesRepo,
            RenewalsRepo):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.effects = Effects(db)
