"""The store: one concrete :class:`CronStore` on SQLite or PostgreSQL, behind the contract's
per-concern protocols (``contract.py``, ``contract_nodes.py``).

Each name loads its module on first use (PEP 562): a submodule (the driver, the job briefs a
listing reads) is imported without the whole store, so ``jobs list`` starts fast."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy and readers see
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

_WHERE: dict[str, str] = {
    **dict.fromkeys(
        ("JobStore", "PreferenceStore", "RunStore", "SchedulerStore", "SessionStore"),
        ".contract",
    ),
    "StoreSignals": ".contract",
    **dict.fromkeys(("CoordinationStore", "DeliveryStore", "LoginSessionStore"), ".contract_nodes"),
    "StoreOpener": ".opener",
    "CronStore": ".store",
    **dict.fromkeys(
        (
            "Claim",
            "ClaimRequest",
            "Claims",
            "Completion",
            "DeliveryOutcome",
            "DeliveryPlanner",
            "JobSpec",
            "RecoveryReport",
            "RunFinished",
            "StoreSettings",
            "Topic",
        ),
        ".types",
    ),
}
"""Where each name lives."""


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


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
