"""starpod-cron: an agent-prompt cron store and scheduler that is exact, fast and never loses a run.

>>> store = await CronStore.open("jobs.db")
>>> await store.add_job("morning", "Summarize overnight alerts", Schedule.cron("0 9 * * *"))
>>> scheduler = CronScheduler(store, executor, SchedulerSettings(max_concurrent_runs=8))
>>> scheduler.start(); ...; await scheduler.stop()
"""

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
    PermanentJobError,
    RunNotFound,
    RunNotRunning,
    SchemaVersionError,
    StarpodCronError,
    StoreUnavailable,
    TransientJobError,
)
from .models import (
    UNSET,
    CronJob,
    CronRun,
    Delivery,
    DeliverySpec,
    DeliveryStatus,
    JobContext,
    JobResult,
    JobUpdate,
    MisfirePolicy,
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

__all__ = [
    "UNSET",
    "Claim",
    "Clock",
    "Completion",
    "ConfigError",
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
    "ManualClock",
    "MisfirePolicy",
    "Notifier",
    "OneShot",
    "PermanentJobError",
    "RecoveryReport",
    "RunFinished",
    "RunNotFound",
    "RunNotRunning",
    "RunStatus",
    "RunTrigger",
    "Schedule",
    "SchedulerSettings",
    "SchemaVersionError",
    "SessionMessage",
    "SessionMode",
    "StarpodCronError",
    "StoreSettings",
    "StoreUnavailable",
    "SystemClock",
    "Topic",
    "TransientJobError",
]
