"""Store backends behind one contract (:class:`~starpod_cron.store.base.CronStore`)."""

from .base import (
    Claim,
    Completion,
    CronStore,
    DeliveryOutcome,
    DeliveryPlanner,
    JobSpec,
    RecoveryReport,
    StoreSettings,
)

__all__ = [
    "Claim",
    "Completion",
    "CronStore",
    "DeliveryOutcome",
    "DeliveryPlanner",
    "JobSpec",
    "RecoveryReport",
    "StoreSettings",
]
