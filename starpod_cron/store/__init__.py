"""The store: one concrete :class:`CronStore` on SQLite or PostgreSQL, behind the contract's
per-concern protocols (``contract.py``, ``contract_nodes.py``).

Each name loads its module on first use (PEP 562): a submodule (the driver, the job briefs a
listing reads) is imported without the whole store, so ``jobs list`` starts fast."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazynames import loader

if TYPE_CHECKING:  # what mypy and readers see
    from . import contract, contract_nodes, opener, store, types

    JobStore = contract.JobStore
    PreferenceStore = contract.PreferenceStore
    RunStore = contract.RunStore
    SchedulerStore = contract.SchedulerStore
    SessionStore = contract.SessionStore
    StoreSignals = contract.StoreSignals
    CoordinationStore = contract_nodes.CoordinationStore
    DeliveryStore = contract_nodes.DeliveryStore
    LoginSessionStore = contract_nodes.LoginSessionStore
    StoreOpener = opener.StoreOpener
    CronStore = store.CronStore
    Claim = types.Claim
    ClaimRequest = types.ClaimRequest
    Claims = types.Claims
    Completion = types.Completion
    DeliveryOutcome = types.DeliveryOutcome
    DeliveryPlanner = types.DeliveryPlanner
    JobSpec = types.JobSpec
    RecoveryReport = types.RecoveryReport
    RunFinished = types.RunFinished
    StoreSettings = types.StoreSettings
    Topic = types.Topic

_WHERE: dict[str, str] = {
    name: f".{module}"
    for module, names in {
        "contract": "JobStore PreferenceStore RunStore SchedulerStore SessionStore StoreSignals",
        "contract_nodes": "CoordinationStore DeliveryStore LoginSessionStore",
        "opener": "StoreOpener",
        "store": "CronStore",
        "types": "Claim ClaimRequest Claims Completion DeliveryOutcome DeliveryPlanner JobSpec "
        "RecoveryReport RunFinished StoreSettings Topic",
    }.items()
    for name in names.split()
}
"""Where each name lives."""
__getattr__ = loader(__name__, _WHERE, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
