"""Store backends behind one contract (:class:`~starpod_cron.store.base.CronStore`)."""

from .base import (
    CronStore,
    DeliveryStore,
    JobStore,
    LoginSessionStore,
    PreferenceStore,
    RunStore,
    SchedulerStore,
    SessionStore,
)
from .types import (
    Claim,
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
    "Completion",
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
    "StoreSettings",
    "Topic",
]
