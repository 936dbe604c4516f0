"""Validation of job fields, shared by every backend; each failure says what to change."""

from __future__ import annotations

import json
import math

from ..errors import InvalidJob, InvalidSchedule
from ..inputrules import name_problem, text_problem
from ..jitter import MAX_JITTER_SECS
from ..models import MisfirePolicy, Overlap, SessionMode
from ..schedules import Interval, OneShot, Schedule
from ..timeutil import check_zone, from_ms, to_ms

MAX_PROMPT_BYTES = 64 * 1024
MAX_RETRIES = 100
MAX_TIMEOUT_SECS = 30 * 86_400
MAX_USER_ID_CHARS = 200
MAX_DESCRIPTION_CHARS = 1000
MAX_INSTANCES = 1000


def _text(field: str, value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise InvalidJob(f"{field} {problem}")
    return value


def name(value: object) -> str:
    """The one rule for job names (:func:`starpod_cron.inputrules.name_problem`)."""
    if not isinstance(value, str):
        raise InvalidJob("job name must be a non-empty string")
    problem = name_problem(value)
    if problem is not None:
        raise InvalidJob(problem)
    return value


def description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidJob("description must be text")
    if len(value) > MAX_DESCRIPTION_CHARS:
        raise InvalidJob(
            f"description is {len(value)} characters; the limit is {MAX_DESCRIPTION_CHARS}"
        )
    return _text("description", value) or None


def prompt(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidJob("prompt must be a non-empty string")
    _text("prompt", value)
    size = len(value.encode("utf-8"))
    if size > MAX_PROMPT_BYTES:
        raise InvalidJob(f"prompt is {size} bytes; the limit is {MAX_PROMPT_BYTES} (64 KiB)")
    return value


def schedule(value: object) -> Schedule:
    if not isinstance(value, Schedule):
        raise InvalidSchedule(
            "schedule must be Schedule.cron(...), Schedule.interval(...) or Schedule.one_shot(...)"
        )
    return value


def timezone(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidJob("timezone must be an IANA zone name such as 'Europe/Rome'")
    return check_zone(_text("timezone", value))


def max_retries(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise InvalidJob(f"max_retries must be an integer from 0 to {MAX_RETRIES}, got {value!r}")
    return value


def timeout_ms(value: object) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_TIMEOUT_SECS
    ):
        raise InvalidJob(
            f"timeout_secs must be a number above 0 and at most {MAX_TIMEOUT_SECS}, got {value!r}"
        )
    return max(1, round(value * 1000))


def session_mode(value: object) -> str:
    try:
        return SessionMode(str(value)).value
    except ValueError:
        raise InvalidJob(f"session_mode must be 'isolated' or 'main', got {value!r}") from None


def misfire_policy(value: object) -> str:
    try:
        return MisfirePolicy(str(value)).value
    except ValueError:
        raise InvalidJob(f"misfire_policy must be 'run_once' or 'skip', got {value!r}") from None


def jitter_ms(value: object) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_JITTER_SECS
    ):
        raise InvalidJob(
            f"jitter_secs must be a number from 0 to {MAX_JITTER_SECS} (a day), got {value!r}"
        )
    return round(value * 1000)


def overlap(value: object) -> str:
    try:
        return Overlap(str(value)).value
    except ValueError:
        raise InvalidJob(f"overlap must be 'skip', 'queue' or 'allow', got {value!r}") from None


def max_instances(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INSTANCES:
        raise InvalidJob(
            f"max_instances must be an integer from 1 to {MAX_INSTANCES}, got {value!r}"
        )
    return value


def overlap_rules(overlap_value: str, instances: int, misfire: str) -> None:
    """The combinations that contradict each other."""
    if instances > 1 and overlap_value != Overlap.ALLOW.value:
        raise InvalidJob(
            f"max_instances = {instances} needs overlap = 'allow' (with overlap = "
            f"{overlap_value!r} a job never runs alongside itself)"
        )
    if overlap_value == Overlap.QUEUE.value and misfire == MisfirePolicy.SKIP.value:
        raise InvalidJob(
            "overlap = 'queue' runs every missed fire, misfire_policy = 'skip' drops them: "
            "choose one (misfire_policy = 'run_once' with queue)"
        )


def user_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_USER_ID_CHARS:
        raise InvalidJob(f"user_id must be None or a non-empty string, got {value!r}")
    return _text("user_id", value)


def origin(value: object) -> str | None:
    """A job's origin as stored (compact JSON), e.g. ``{"telegram_chat_id": 1}``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidJob("origin must be a JSON object (a dict) or None")
    try:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"origin must be JSON-serializable: {exc}") from exc
    if len(text) > 4096:
        raise InvalidJob("origin is too large (limit 4 KiB of JSON)")
    return text


def flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidJob(f"{field} must be True or False, got {value!r}")
    return value


def first_fire(sched: Schedule, tz: str, now_ms: int) -> tuple[Schedule, int]:
    """Anchor an interval at ``now_ms`` if needed and compute the first fire after now."""
    if isinstance(sched, Interval):
        sched = sched.anchored(now_ms)
    nxt = sched.next_run(from_ms(now_ms), tz)
    if nxt is None:
        if isinstance(sched, OneShot):
            raise InvalidSchedule(
                f"one-shot time {sched.at!r} is in the past (now is {from_ms(now_ms).isoformat()})"
            )
        raise InvalidSchedule(f"schedule {sched.describe()!r} never fires")
    return sched, to_ms(nxt)
