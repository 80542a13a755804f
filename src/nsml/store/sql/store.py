"""The SQLAlchemy store: one mixin per domain, composed. Each public method is one transaction."""

from __future__ import annotations

from nsml.store.base import AbstractStore
from nsml.store.sql.accounts import AccountsMixin
from nsml.store.sql.cache import CacheMixin
from nsml.store.sql.competition import CompetitionMixin
from nsml.store.sql.credits import CreditsMixin
from nsml.store.sql.datasets import DatasetsMixin
from nsml.store.sql.metrics import MetricsMixin
from nsml.store.sql.phases import PhasesMixin
from nsml.store.sql.server_leases import ServerLeasesMixin
from nsml.store.sql.sessions import SessionsMixin
from nsml.store.sql.shared import SharedResourcesMixin


class SqlStore(
    AccountsMixin,
    DatasetsMixin,
    SessionsMixin,
    MetricsMixin,
    CompetitionMixin,
    PhasesMixin,
    CacheMixin,
    SharedResourcesMixin,
    CreditsMixin,
    ServerLeasesMixin,
    AbstractStore,
):
    """SQLite or PostgreSQL, by the URL it is opened with."""


__all__ = ["SqlStore"]
