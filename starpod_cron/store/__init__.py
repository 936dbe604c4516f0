"""The store: one concrete :class:`CronStore` on SQLite or PostgreSQL, behind the contract's
per-concern protocols (``contract.py``, ``contract_nodes.py``)."""

from .contract import (
    JobStore,
    PreferenceStore,
    RunStore,
    SchedulerStore,
    SessionStore,
    StoreSignals,
)
from .contract_nodes import CoordinationStore, DeliveryStore, LoginSessionStore
from .opener import StoreOpener
from .store import CronStore
from .types import (
    Claim,
    ClaimRequest,
    Claims,
    Completion,
    DeliveryOutcome,
    DeliveryPlanner,
    JobSpec,
    RecoveryReport,
    RunFinished,
    StoreSettings,
    Topic,
)

__all__ = [
    "Claim",
    "ClaimRequest",
    "Claims",
    "Completion",
    "CoordinationStore",
    "CronStore",
    "DeliveryOutcome",
    "DeliveryPlanner",
    "DeliveryStore",
    "JobSpec",
    "JobStore",
    "LoginSessionStore",
    "PreferenceStore",
    "RecoveryReport",
    "RunFinished",
    "RunStore",
    "SchedulerStore",
    "SessionStore",
    "StoreOpener",
    "StoreSettings",
    "StoreSignals",
    "Topic",
]
