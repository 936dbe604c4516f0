"""starpod-cron: an agent-prompt cron store and scheduler that is exact, fast and never loses a run.

>>> store = await CronStore.open("jobs.db")
>>> await store.add_job("morning", "Summarize overnight alerts", Schedule.cron("0 9 * * *"))
>>> scheduler = CronScheduler(store, executor, SchedulerSettings(max_concurrent_runs=8))
>>> scheduler.start(); ...; await scheduler.stop()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy and readers see; at run time each name loads on first use
    from .clock import Clock, ManualClock, SystemClock
    from .errors import (
        ConfigError,
        DuplicateJobName,
        InvalidInput,
        InvalidJob,
        InvalidSchedule,
        InvalidTimezone,
        JobAlreadyRunning,
        JobError,
        JobNotFound,
        NothingToSnooze,
        PermanentJobError,
        ProviderHeld,
        ProviderSaturated,
        RunNotFound,
        RunNotRetryable,
        RunNotRunning,
        SchemaVersionError,
        StarpodCronError,
        StoreLost,
        StoreUnavailable,
        TransientJobError,
    )
    from .models import (
        UNSET,
        ContextMode,
        CronJob,
        CronRun,
        Delivery,
        DeliverySpec,
        DeliveryStatus,
        DestinationRefusal,
        JobContext,
        JobResult,
        JobUpdate,
        Lease,
        LoginSession,
        MisfirePolicy,
        ModelUsage,
        NodeInfo,
        NodeStatus,
        NotifyPolicy,
        Overlap,
        RunStats,
        RunStatus,
        RunTrigger,
        SessionMessage,
        SessionMode,
    )
    from .notify import Notifier
    from .scheduler import CronScheduler, Executor, ExecutorExited
    from .schedules import Cron, Interval, OneShot, Schedule
    from .settings import SchedulerSettings, StoreSettings
    from .store import (
        Claim,
        Completion,
        CronStore,
        DeliveryOutcome,
        DeliveryPlanner,
        JobSpec,
        RecoveryReport,
        RunFinished,
        Topic,
    )

_WHERE: dict[str, str] = {
    "Claim": ".store",
    "Clock": ".clock",
    "Completion": ".store",
    "ConfigError": ".errors",
    "ContextMode": ".models",
    "Cron": ".schedules",
    "CronJob": ".models",
    "CronRun": ".models",
    "CronScheduler": ".scheduler",
    "CronStore": ".store",
    "Delivery": ".models",
    "DeliveryOutcome": ".store",
    "DeliveryPlanner": ".store",
    "DeliverySpec": ".models",
    "DeliveryStatus": ".models",
    "DestinationRefusal": ".models",
    "DuplicateJobName": ".errors",
    "Executor": ".scheduler",
    "ExecutorExited": ".scheduler",
    "Interval": ".schedules",
    "InvalidInput": ".errors",
    "InvalidJob": ".errors",
    "InvalidSchedule": ".errors",
    "InvalidTimezone": ".errors",
    "JobAlreadyRunning": ".errors",
    "JobContext": ".models",
    "JobError": ".errors",
    "JobNotFound": ".errors",
    "JobResult": ".models",
    "JobSpec": ".store",
    "JobUpdate": ".models",
    "Lease": ".models",
    "LoginSession": ".models",
    "ManualClock": ".clock",
    "MisfirePolicy": ".models",
    "ModelUsage": ".models",
    "NodeInfo": ".models",
    "NodeStatus": ".models",
    "NothingToSnooze": ".errors",
    "Notifier": ".notify",
    "NotifyPolicy": ".models",
    "OneShot": ".schedules",
    "Overlap": ".models",
    "PermanentJobError": ".errors",
    "ProviderHeld": ".errors",
    "ProviderSaturated": ".errors",
    "RecoveryReport": ".store",
    "RunFinished": ".store",
    "RunNotFound": ".errors",
    "RunNotRetryable": ".errors",
    "RunNotRunning": ".errors",
    "RunStats": ".models",
    "RunStatus": ".models",
    "RunTrigger": ".models",
    "Schedule": ".schedules",
    "SchedulerSettings": ".settings",
    "SchemaVersionError": ".errors",
    "SessionMessage": ".models",
    "SessionMode": ".models",
    "StarpodCronError": ".errors",
    "StoreLost": ".errors",
    "StoreSettings": ".settings",
    "StoreUnavailable": ".errors",
    "SystemClock": ".clock",
    "Topic": ".store",
    "TransientJobError": ".errors",
    "UNSET": ".models",
}
"""Where each public name lives: ``import starpod_cron`` loads none of them (the CLI starts
without the scheduler or the store), ``starpod_cron.CronStore`` loads its module (PEP 562)."""


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
    "UNSET",
    "Claim",
    "Clock",
    "Completion",
    "ConfigError",
    "ContextMode",
    "Cron",
    "CronJob",
    "CronRun",
    "CronScheduler",
    "CronStore",
    "Delivery",
    "DeliveryOutcome",
    "DeliveryPlanner",
    "DeliverySpec",
    "DeliveryStatus",
    "DestinationRefusal",
    "DuplicateJobName",
    "Executor",
    "ExecutorExited",
    "Interval",
    "InvalidInput",
    "InvalidJob",
    "InvalidSchedule",
    "InvalidTimezone",
    "JobAlreadyRunning",
    "JobContext",
    "JobError",
    "JobNotFound",
    "JobResult",
    "JobSpec",
    "JobUpdate",
    "Lease",
    "LoginSession",
    "ManualClock",
    "MisfirePolicy",
    "ModelUsage",
    "NodeInfo",
    "NodeStatus",
    "NothingToSnooze",
    "Notifier",
    "NotifyPolicy",
    "OneShot",
    "Overlap",
    "PermanentJobError",
    "ProviderHeld",
    "ProviderSaturated",
    "RecoveryReport",
    "RunFinished",
    "RunNotFound",
    "RunNotRetryable",
    "RunNotRunning",
    "RunStats",
    "RunStatus",
    "RunTrigger",
    "Schedule",
    "SchedulerSettings",
    "SchemaVersionError",
    "SessionMessage",
    "SessionMode",
    "StarpodCronError",
    "StoreLost",
    "StoreSettings",
    "StoreUnavailable",
    "SystemClock",
    "Topic",
    "TransientJobError",
]
