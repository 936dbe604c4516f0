"""``starpod-cron deliveries list|retry``: the outbox as the operator sees it, over the same
operations as the dashboard and the HTTP API (:class:`~starpod_cron.activity.Activity`; the
CLI is the local operator, an admin)."""

from __future__ import annotations

import argparse

from ..access import LOCAL_ADMIN
from ..activity import Activity
from ..models import DeliveryStatus
from ..views import delivery_json
from .context import Context
from .render import Output, when


async def deliveries_list(c: Context, args: argparse.Namespace) -> Output:
    status = DeliveryStatus(args.status)
    found, counts = await Activity(c.ops).deliveries(LOCAL_ADMIN, status, args.limit)
    tz = c.tz("UTC")
    data = [delivery_json(d, tz) for d in found]
    counted = {s.value: n for s, n in counts.items()}
    out = Output(
        {"deliveries": data, "counts": counted, "total": len(data)},
        "table",
        f"Deliveries: {status.value}",
    )
    if not found:
        out.text = f"No {status.value} deliveries."
        return out
    out.columns = ["ID", "JOB", "TO", "ATTEMPTS", "CREATED", "LAST ERROR"]
    out.rows = [
        [
            str(d.id),
            d.job_name,
            d.destination,
            str(d.attempts),
            when(d.created_at, tz, c.now()),
            (d.last_error or "")[:80],
        ]
        for d in found
    ]
    out.header = ", ".join(f"{s}: {n}" for s, n in sorted(counted.items()))
    return out


async def deliveries_retry(c: Context, args: argparse.Namespace) -> Output:
    activity = Activity(c.ops)
    retried: list[int] = []
    missing: list[int] = []
    for delivery_id in args.ids:
        done = await activity.retry_delivery(LOCAL_ADMIN, delivery_id)
        (retried if done else missing).append(delivery_id)
    lines = [f"Delivery {n} will be sent again (a running gateway sends it)" for n in retried]
    lines += [f"Delivery {n} is not dead (or does not exist): nothing to retry" for n in missing]
    message = "\n".join(lines)
    data = {"retried": retried, "not_dead": missing, "message": message}
    return Output(data, "text", "Deliveries Retried", text=message, exit_code=1 if missing else 0)
