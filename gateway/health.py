"""Whether this gateway node is ready (``GET /readyz``): its store answers, and its scheduler
and outbox loops run and finished a pass within ``2 * tick_secs + 5 s`` (the outbox also
counts a message recorded within a long pass), and its clock is within ``[cron]
max_clock_skew_secs`` of the database's (else its scheduler claims nothing: 503). A
destination refusing every message (a rejected bot token, Telegram unreachable) does not
make the node unready, since every node shares it and all would go unready at once: it is
listed in the answer instead (and in ``/metrics`` and ``starpod-cron status``)."""

from __future__ import annotations

from typing import Any

from starpod_cron import CronScheduler, StarpodCronError
from starpod_cron.activity import Activity
from starpod_cron.dbclock import DatabaseClock
from starpod_cron.views import refusal_json

from .outbox import Outbox

STORE_TIMEOUT_SECS = 5


def _loop(alive: bool, last_pass_ms: int | None, now_ms: int, limit: float) -> dict[str, Any]:
    age = None if last_pass_ms is None else round((now_ms - last_pass_ms) / 1000, 3)
    ok = alive and age is not None and age <= limit
    return {"ok": ok, "alive": alive, "last_pass_age_secs": age}


async def readiness(
    activity: Activity, scheduler: CronScheduler, outbox: Outbox | None
) -> tuple[bool, dict[str, Any]]:
    """``(ready, body)`` of ``/readyz``."""
    checks: dict[str, Any] = {}
    ready = True
    try:
        refusing = await activity.store_health(STORE_TIMEOUT_SECS)
        checks["store"] = "ok"
    except StarpodCronError as exc:  # unreachable, closed, no answer
        checks["store"] = f"unavailable: {exc}"
        ready, refusing = False, []
    now = activity.now_ms()
    limit = scheduler.settings.tick_secs * 2 + 5
    checks["scheduler"] = _loop(scheduler.alive, scheduler.last_pass_ms, now, limit)
    ready = ready and checks["scheduler"]["ok"]
    clock = scheduler.clock
    if isinstance(clock, DatabaseClock) and clock.skew_ms is not None:
        agrees = not scheduler.clock_refused
        checks["clock"] = {
            "ok": agrees,
            "skew_secs": round(clock.skew_ms / 1000, 3),
            "max_skew_secs": clock.max_skew_ms / 1000,
        }
        ready = ready and agrees
    if outbox is not None:
        checks["outbox"] = _loop(outbox.alive, outbox.last_pass_ms, now, limit)
        ready = ready and checks["outbox"]["ok"]
    body = {
        "status": "ready" if ready else "not ready",
        "checks": checks,
        "pass_limit_secs": limit,
        "destinations_refusing": [refusal_json(r) for r in refusing],
    }
    return ready, body
