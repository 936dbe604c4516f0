"""Job operations for chat and WebSocket users, with ownership rules: a user touches only their
own jobs (admins: all). Both front ends call this; it calls only the library's public API."""

from __future__ import annotations

import re
import secrets
from typing import Any

from starpod_cron import (
    UNSET,
    CronJob,
    CronRun,
    CronScheduler,
    CronStore,
    InvalidInput,
    JobNotFound,
    JobUpdate,
    MisfirePolicy,
    Schedule,
    SessionMode,
)
from starpod_cron.cli import parse
from starpod_cron.timeutil import check_zone, from_ms

from .principals import Principal

SCHEDULE_KEYS = parse.SCHEDULE_KINDS


def build_schedule(fields: dict[str, Any], tz: str, store: CronStore) -> Schedule | None:
    """``{"cron": "0 9 * * 1-5"}``, ``{"every": "30m"}``, ``{"at": "..."}`` or ``{"in": "20m"}``."""
    given = [k for k in SCHEDULE_KEYS if fields.get(k) is not None]
    if len(given) > 1:
        raise InvalidInput(f"give only one of {', '.join(SCHEDULE_KEYS)} (got {', '.join(given)})")
    if not given:
        return None
    key = given[0]
    value = fields[key]
    if not isinstance(value, str):
        raise InvalidInput(f"{key} must be a string")
    return parse.schedule(key, value, tz, from_ms(store.clock.now_ms()))


def generated_name(prompt: str) -> str:
    """A readable, unique-enough name from the prompt: ``check-the-build-3f2a``."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())[:3] or ["job"]
    return "-".join(words)[:40] + "-" + secrets.token_hex(2)


class JobsApi:
    def __init__(self, store: CronStore, scheduler: CronScheduler) -> None:
        self.store = store
        self.scheduler = scheduler

    async def default_zone(self, who: Principal) -> str:
        if who.user_id:
            chosen = await self.store.get_user_timezone(who.user_id)
            if chosen:
                return chosen
        return self.store.settings.default_timezone

    async def find(self, who: Principal, name_or_id: str) -> CronJob:
        """The job, if it exists and ``who`` may touch it (else JobNotFound: no leak)."""
        if not isinstance(name_or_id, str) or not name_or_id:
            raise InvalidInput("name the job")
        job = await self.store.get_job_by_name(name_or_id) or await self.store.get_job(name_or_id)
        if job is None or not who.may_touch(job):
            raise JobNotFound(f"no job named {name_or_id!r}")
        return job

    async def add(
        self, who: Principal, fields: dict[str, Any], origin: dict[str, Any] | None = None
    ) -> CronJob:
        prompt = fields.get("prompt")
        if not isinstance(prompt, str):
            raise InvalidInput("prompt is required")
        tz = fields.get("timezone") or await self.default_zone(who)
        if not isinstance(tz, str):
            raise InvalidInput("timezone must be a string")
        check_zone(tz)
        schedule = build_schedule(fields, tz, self.store)
        if schedule is None:
            raise InvalidInput("a schedule is required: one of cron, every, at, in")
        user_id = who.user_id
        if who.admin and "user_id" in fields:
            user_id = fields["user_id"]
        name = fields.get("name") or generated_name(prompt)
        job_id = await self.store.add_job_full(
            name,
            prompt,
            schedule,
            delete_after_run=bool(fields.get("delete_after_run", "in" in fields)),
            timezone=tz,
            max_retries=fields.get("max_retries"),
            timeout_secs=fields.get("timeout_secs"),
            session_mode=SessionMode(fields.get("session_mode", "isolated")),
            user_id=user_id,
            misfire_policy=MisfirePolicy(fields.get("misfire_policy", "run_once")),
            origin=origin,
        )
        job = await self.store.get_job(job_id)
        assert job is not None
        return job

    async def list_jobs(self, who: Principal) -> list[CronJob]:
        if who.admin:
            return await self.store.list_jobs()
        if who.user_id is None:
            return []
        return await self.store.list_jobs_for_user(who.user_id)

    async def update(self, who: Principal, name: str, fields: dict[str, Any]) -> CronJob:
        job = await self.find(who, name)
        schedule = build_schedule(fields, fields.get("timezone") or job.timezone, self.store)
        update = JobUpdate(
            name=fields.get("rename", UNSET),
            prompt=fields.get("prompt", UNSET),
            schedule=schedule if schedule is not None else UNSET,
            timezone=fields.get("timezone", UNSET),
            enabled=fields.get("enabled", UNSET),
            max_retries=fields.get("max_retries", UNSET),
            timeout_secs=fields.get("timeout_secs", UNSET),
            session_mode=SessionMode(fields["session_mode"]) if "session_mode" in fields else UNSET,
            delete_after_run=fields.get("delete_after_run", UNSET),
            misfire_policy=MisfirePolicy(fields["misfire_policy"])
            if "misfire_policy" in fields
            else UNSET,
        )
        if update == JobUpdate():
            raise InvalidInput("nothing to change")
        return await self.store.update_job(job.id, update)

    async def set_enabled(self, who: Principal, name: str, enabled: bool) -> CronJob:
        job = await self.find(who, name)
        if enabled:
            return await self.store.enable_job(job.id)
        return await self.store.disable_job(job.id)

    async def remove(self, who: Principal, name: str) -> CronJob:
        job = await self.find(who, name)
        await self.store.remove_job(job.id)
        return job

    async def run(self, who: Principal, name: str) -> CronRun:
        job = await self.find(who, name)
        return await self.scheduler.run_now(job.id)

    async def runs(self, who: Principal, name: str, limit: int = 10) -> list[CronRun]:
        job = await self.find(who, name)
        return await self.store.list_runs(job.id, max(1, min(limit, 200)))
