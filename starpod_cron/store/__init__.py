"""Store backends behind one contract (:class:`~starpod_cron.store.base.CronStore`)."""

from .base import (
    Claim,
    Completion,
    CronStore,
    DeliveryPlanner,
    JobSpec,
    RecoveryReport,
    StoreSettings,
)

__all__ = [
    "Claim",
    "Completion",
    "CronStore",
    "DeliveryPlanner",
    "JobSpec",
    "RecoveryReport",
    "StoreSettings",
]
