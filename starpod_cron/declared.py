"""Jobs declared in code and in ``agent.toml``, kept in version control instead of edited by
hand, and synced into the store at start.

In code, a registry with decorators; a job is a Python function (run as the job, with the
same claims, timeouts, retries, records and notifications as a prompt) or, with ``prompt=``,
a prompt for the executor::

    from starpod_cron.declared import jobs

    @jobs.cron("0 9 * * 1-5", tz="Europe/Rome", description="the morning digest")
    async def digest(ctx: JobContext) -> str:
        return await build_digest()

Modules are found through ``[cron] job_modules = ["mypkg.jobs"]`` and the entry-point group
``starpod_cron.jobs``. In ``agent.toml``, ``[[jobs]]`` tables: name, one of cron/every/at/when,
and the declared fields marked ``toml`` (:data:`JOB_KEYS`: prompt, timezone, max_retries, ...).
``when`` is a schedule in words (:mod:`starpod_cron.phrases`), stored as the form it means; a
phrase read relative to now (``in 20 minutes``, ``tomorrow at 9``) is refused there, since it
would mean another time at each start.

:func:`sync_jobs` makes the store match, idempotently, by name (agent-level jobs): a declared
job is created or updated and marked managed (``origin["declared_in"]`` says where); a managed
job no longer declared is disabled, its history kept. Editing a managed job anywhere else is
refused with :class:`ManagedJob`, naming where it is declared.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from . import jobfields, phrases
from .errors import ConfigError, DuplicateJobName, InvalidInput
from .fields import user_fields
from .jobfields import JobFields
from .models import CronJob, JobContext, JobResult, JobUpdate
from .settings import StoreSettings
from .store import CronStore, planning
from .store.types import JobSpec
from .timeutil import to_ms

ENTRY_POINTS = "starpod_cron.jobs"
JobFunction = Callable[[JobContext], Awaitable[JobResult | str]]
F = TypeVar("F", bound=JobFunction)


class ManagedJob(InvalidInput):
    """The job is declared in code or in agent.toml: change it there (the next sync would undo
    any other change)."""


def declared_in(job: CronJob) -> str | None:
    """Where a managed job is declared, or None for a job made by hand."""
    where = (job.origin or {}).get("declared_in")
    return where if isinstance(where, str) else None


def check_editable(job: CronJob) -> None:
    """ManagedJob for a job declared in code or config."""
    where = declared_in(job)
    if where is not None:
        raise ManagedJob(f"job {job.name!r} is declared in {where}; change it there")


def check_switchable(job: CronJob, enabled: bool) -> None:
    """ManagedJob unless ``job`` may be enabled or disabled here: a job made by hand, or a
    managed job that disabled itself (``paused_reason``: failures in a row, ended, max_runs)
    being resumed, since its declaration says it runs."""
    if not (enabled and job.paused_reason is not None):
        check_editable(job)


@dataclass(frozen=True, slots=True)
class DeclaredJob:
    name: str
    fields: JobFields
    source: str
    function: JobFunction | None = None
    module: str | None = None
    """The module that declared it in code (None: agent.toml)."""


@dataclass
class JobRegistry:
    jobs: dict[str, DeclaredJob] = field(default_factory=dict)

    def add(self, job: DeclaredJob) -> None:
        other = self.jobs.get(job.name)
        if other is not None and other.source != job.source:
            raise ConfigError(
                f"job {job.name!r} is declared twice: in {other.source} and in {job.source}"
            )
        self.jobs[job.name] = job

    def cron(
        self,
        expression: str,
        *,
        tz: str | None = None,
        name: str | None = None,
        prompt: str | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Declare ``f`` as a job on a cron expression (read in ``tz``)."""
        return self._declare({"cron": expression, "timezone": tz}, name, prompt, options)

    def when(
        self,
        phrase: str,
        *,
        tz: str | None = None,
        name: str | None = None,
        prompt: str | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Declare ``f`` as a job on a schedule in words (``"every weekday at 9:00"``, read
        in ``tz``); a phrase relative to now (``in 20 minutes``) is refused."""
        _fixed(phrase)
        return self._declare({"when": phrase, "timezone": tz}, name, prompt, options)

    def every(
        self,
        duration: str,
        *,
        name: str | None = None,
        prompt: str | None = None,
        **options: Any,
    ) -> Callable[[F], F]:
        """Declare ``f`` as a job repeating every ``duration`` (``30m``, ``1h30m``)."""
        return self._declare({"every": duration}, name, prompt, options)

    def _declare(
        self, schedule: dict[str, Any], name: str | None, prompt: str | None, options: Any
    ) -> Callable[[F], F]:
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            known = ", ".join(sorted(_OPTION_KEYS))
            raise ConfigError(f"unknown job option(s) {sorted(unknown)} (known: {known})")

        def register(function: F) -> F:
            job_name = name or function.__name__.replace("_", "-")
            where = f"{function.__module__}.{function.__qualname__}"
            text = prompt if prompt is not None else f"[python] {where}"
            fields = JobFields.from_mapping({**schedule, **options, "prompt": text})
            self.add(
                DeclaredJob(
                    job_name,
                    fields,
                    f"code ({where})",
                    None if prompt is not None else function,
                    function.__module__,
                )
            )
            return function

        return register

    def function_for(self, job_name: str) -> JobFunction | None:
        job = self.jobs.get(job_name)
        return None if job is None else job.function


jobs = JobRegistry()
"""The registry the decorators of imported job modules fill."""


def from_config(
    entries: Iterable[Mapping[str, Any]], source: str, settings: StoreSettings | None = None
) -> list[DeclaredJob]:
    """The ``[[jobs]]`` tables of ``agent.toml``, each checked as the store would check it
    (with ``settings``, default :class:`StoreSettings`); ConfigError names the table at fault
    and the key. Called when the file is read, so every command refuses a bad table."""
    settings = settings or StoreSettings()
    declared: list[DeclaredJob] = []
    for index, entry in enumerate(entries, 1):
        where = f"{source} [[jobs]] #{index}"
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f'{where}: name the job (name = "...")')
        if any(d.name == name for d in declared):
            raise ConfigError(f"{where}: job {name!r} is declared twice in {source}")
        unknown = set(entry) - JOB_KEYS
        if unknown:
            known = ", ".join(sorted(JOB_KEYS))
            raise ConfigError(
                f"{where} ({name}): unknown key(s) {sorted(unknown)} (known: {known})"
            )
        try:
            fields = JobFields.from_mapping(entry)
            if fields.when is not None:
                _fixed(fields.when)
            now = datetime.now().astimezone()
            zone = settings.default_timezone
            spec = jobfields.job_spec(fields, now=now, default_timezone=zone, user_id=None)
            planning.new_job(spec, to_ms(now), settings)  # the store's own checks
        except InvalidInput as exc:
            raise ConfigError(f"{where} ({name}): {exc}") from None
        declared.append(DeclaredJob(name, fields, f"{source} [[jobs]] {name}"))
    return declared


def _fixed(phrase: str) -> None:
    """ConfigError for a phrase that would mean another time at each sync."""
    meaning = phrases.translate(phrase)
    if meaning.relative:
        raise ConfigError(
            f"when = {phrase!r} means another time each time the jobs are synced (at every "
            "start); declare a fixed time ('at 2026-12-01 09:00') or a repeating schedule "
            "('every weekday at 9:00')"
        )


JOB_KEYS = frozenset(
    {"name", "cron", "every", "at", "when"}
    | {f.name for f in user_fields() if f.toml and f.storage != "schedule"}
)
"""The keys of a ``[[jobs]]`` table: a name, one schedule, and every declared field marked
``toml`` (:mod:`starpod_cron.fields`)."""
_OPTION_KEYS = JOB_KEYS - {"name", "prompt", "cron", "every", "at", "when", "timezone"}
"""The options of the decorators (the name, prompt, schedule and zone are their arguments)."""


def load(
    entries: Iterable[Mapping[str, Any]],
    modules: Iterable[str],
    *,
    source: str = "agent.toml",
    base_dir: Path | None = None,
) -> JobRegistry:
    """Every declared job: ``[[jobs]]`` tables, the ``job_modules`` (imported, with
    ``base_dir`` on the import path) and the modules of the ``starpod_cron.jobs`` entry
    points. ConfigError for a module that does not import or a name declared twice."""
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    wanted = set(modules)
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(
                f"{source} [cron] job_modules: cannot import {module!r}: {exc}"
            ) from None
    for entry in metadata.entry_points(group=ENTRY_POINTS):
        try:
            entry.load()
        except ImportError as exc:
            raise ConfigError(f"entry point {entry.name!r} ({ENTRY_POINTS}): {exc}") from None
        wanted.add(entry.module)
    registry = JobRegistry()
    for job in from_config(entries, source):
        registry.add(job)
    for job in jobs.jobs.values():
        if job.module in wanted:  # only what this configuration asks for
            registry.add(job)
    return registry


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def changes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.disabled)


async def sync_jobs(
    store: CronStore, registry: JobRegistry, *, now: datetime, dry_run: bool = False
) -> SyncReport:
    """Make the store's agent-level jobs match ``registry`` (see the module doc); with
    ``dry_run`` only say what would change. ConfigError if a declared name is taken by a job
    made by hand (rename one of them); nothing is written then."""
    report = SyncReport()
    existing = {j.name: j for j in await store.list_jobs() if j.user_id is None}
    create: list[JobSpec] = []
    updates: list[tuple[CronJob, JobUpdate]] = []
    for name, declared in sorted(registry.jobs.items()):
        spec = jobfields.job_spec(
            declared.fields,
            now=now,
            default_timezone=store.settings.default_timezone,
            user_id=None,
            origin={"declared_in": declared.source},
        )
        spec = replace(spec, name=name)
        job = existing.get(name)
        if job is None:
            create.append(spec)
            report.created.append(name)
            continue
        if declared_in(job) is None:
            raise ConfigError(
                f"job {name!r} is declared in {declared.source}, but a job of that name was "
                "made by hand; rename one of them"
            )
        update = _difference(job, spec, store)
        if update == JobUpdate():
            report.unchanged.append(name)
        else:
            updates.append((job, update))
            report.updated.append(name)
    gone = [j for n, j in existing.items() if declared_in(j) and n not in registry.jobs]
    gone = [j for j in gone if j.enabled]
    report.disabled = sorted(j.name for j in gone)
    if dry_run:
        return report
    if create:
        await store.add_jobs(create)
    for job, update in updates:
        await store.update_job(job.id, update)
    for job in gone:
        await store.disable_job(job.id)
    return report


def _difference(job: CronJob, spec: JobSpec, store: CronStore) -> JobUpdate:
    """What to change on ``job`` to match its declaration ``spec`` (a field the declaration
    leaves to a ``[cron]`` default compares with that default)."""
    changes: dict[str, Any] = {}
    for f in user_fields():
        if not f.toml or f.name == "name" or f.storage == "schedule":
            continue
        want = getattr(spec, f.name)
        if want is None and f.setting is not None:
            want = getattr(store.settings, f.setting)
        if getattr(job, f.name) != want:
            changes[f.name] = want
    if job.schedule.to_storage()[:2] != spec.schedule.to_storage()[:2]:
        changes["schedule"] = spec.schedule
    return JobUpdate(**changes)


def with_declared(executor: Any, registry: JobRegistry) -> Any:
    """``executor``, or a :class:`DeclaredExecutor` over it when code jobs are declared."""
    if any(job.function is not None for job in registry.jobs.values()):
        return DeclaredExecutor(registry, executor)
    return executor


def runs_with(executor: Any, job: CronJob) -> str:
    """What runs ``job`` under ``executor`` (built by :func:`with_declared`), in words."""
    if isinstance(executor, DeclaredExecutor):
        return executor.runs_with(job.name, job.user_id)
    return str(getattr(executor, "description", "executor"))


async def sync_at_start(store: CronStore, registry: JobRegistry, now: datetime) -> SyncReport:
    """:func:`sync_jobs` as a process starts; several starting at once (nodes sharing a
    store) may race to create a job: the loser syncs again and finds it made."""
    try:
        return await sync_jobs(store, registry, now=now)
    except DuplicateJobName:
        return await sync_jobs(store, registry, now=now)


class DeclaredExecutor:
    """Runs a declared Python job's function; every other job goes to ``fallback`` (the
    configured executor). A function may return a JobResult or a plain string."""

    def __init__(self, registry: JobRegistry, fallback: Any) -> None:
        self.registry = registry
        self.fallback = fallback
        self.description = getattr(fallback, "description", "executor")
        self.notes: tuple[str, ...] = getattr(fallback, "notes", ())
        self.pacer = getattr(fallback, "pacer", None)  # the provider's pace (pacing.py)

    def _function(self, job_name: str, user_id: str | None) -> JobFunction | None:
        """The declared function running this job (agent-level jobs only), or None."""
        return self.registry.function_for(job_name) if user_id is None else None

    def runs_with(self, job_name: str, user_id: str | None) -> str:
        """What runs the job: its declared function, or the configured executor."""
        function = self._function(job_name, user_id)
        if function is None:
            return str(self.description)
        return f"python function {function.__module__}.{function.__qualname__}"

    async def __call__(self, ctx: JobContext) -> JobResult:
        function = self._function(ctx.job_name, ctx.user_id)
        if function is None:
            result: JobResult = await self.fallback(ctx)
            return result
        answer = await function(ctx)
        if isinstance(answer, JobResult):
            return answer
        return JobResult(session_id="", summary=str(answer))

    async def aclose(self) -> None:
        await self.fallback.aclose()
