"""``jobs sync`` and ``maintenance sessions|deliveries|optimize``: making the store match the
declared jobs, and the built-in cleanups (each with ``--dry-run``)."""

from __future__ import annotations

import argparse
from datetime import timedelta

from ..declared import sync_jobs
from ..maintenance import configured_jobs
from .context import Context
from .render import Output


async def jobs_sync(c: Context, args: argparse.Namespace) -> Output:
    """Make the store match the jobs declared in code and agent.toml (``--dry-run``: say
    what would change)."""
    registry = configured_jobs(c.config, c.store)
    report = await sync_jobs(c.store, registry, now=c.now(), dry_run=args.dry_run)
    verb = "Would make" if args.dry_run else "Made"
    lines = [
        f"{label}: {', '.join(names)}"
        for label, names in (
            ("create", report.created),
            ("update", report.updated),
            ("disable (no longer declared)", report.disabled),
            ("unchanged", report.unchanged),
        )
        if names
    ]
    message = f"{verb} {report.changes()} change(s) for {len(registry.jobs)} declared job(s)"
    data = {
        "created": report.created,
        "updated": report.updated,
        "disabled": report.disabled,
        "unchanged": report.unchanged,
        "dry_run": args.dry_run,
        "message": message,
    }
    return Output(data, "text", "Declared Jobs", text="\n".join([message, *lines]))


async def maintenance(c: Context, args: argparse.Namespace) -> Output:
    """``maintenance sessions|deliveries|optimize``: the built-in cleanups, each with
    ``--dry-run`` reporting what it would delete."""
    if args.command == "optimize":
        await c.store.optimize()
        message = "Refreshed the database's query statistics"
        return Output({"message": message}, "text", "Optimize", text=message)
    if args.command == "sessions":
        cutoff, age = c.now() - timedelta(hours=args.hours), f"{args.hours} hour(s)"
        count = await c.store.prune_messages(cutoff, dry_run=args.dry_run)
        what, title = "conversation message(s)", "Session Cleanup"
    else:
        cutoff, age = c.now() - timedelta(days=args.days), f"{args.days} day(s)"
        count = await c.store.prune_deliveries(cutoff, dry_run=args.dry_run)
        what, title = "finished deliveries", "Delivery Cleanup"
    verb = "Would delete" if args.dry_run else "Deleted"
    message = f"{verb} {count} {what} older than {age}"
    data = {
        "deleted": 0 if args.dry_run else count,
        "matching": count,
        "older_than": cutoff.isoformat(),
        "dry_run": args.dry_run,
        "message": message,
    }
    return Output(data, "text", title, text=message)
