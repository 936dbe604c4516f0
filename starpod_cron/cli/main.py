"""``starpod-cron``: parsing, dispatch, exit codes (0 ok, 1 a run failed, 2 bad input)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ..config import AgentConfig, load_config
from ..errors import StarpodCronError
from ..store.base import CronStore
from ..timeutil import check_zone, from_ms
from . import commands
from .render import Output, emit

STATUSES = ["running", "success", "failed", "timeout", "interrupted", "skipped"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Usage errors: one line on stderr, exit code 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _schedule_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument(
        "--cron", metavar="EXPR", help="cron expression, 5 fields or 6 (seconds first)"
    )
    group.add_argument("--every", metavar="DURATION", help="fixed interval, e.g. 30m, 1h30m")
    group.add_argument("--at", metavar="TIME", help="once at a time: ISO 8601 or 'tomorrow 9:00'")
    group.add_argument("--in", dest="in_", metavar="DURATION", help="once, after a delay, e.g. 20m")
    p.add_argument("--tz", metavar="ZONE", help="IANA time zone of the job, e.g. Europe/Rome")
    p.add_argument("--retries", type=int, metavar="N", help="retries after a failure (default 3)")
    p.add_argument(
        "--timeout", metavar="DURATION", help="cancel a run after this long (default 2h)"
    )
    p.add_argument("--session", choices=["isolated", "main"], help="conversation mode")
    p.add_argument("--user", metavar="ID", help="owner of the job")
    p.add_argument(
        "--delete-after-run",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="delete a one-shot after it succeeds (default: disable it)",
    )
    p.add_argument("--misfire", choices=["run_once", "skip"], help="what to do with missed fires")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="starpod-cron", description="Manage, inspect and run agent-prompt jobs.")
    parser.add_argument(
        "--db", metavar="PATH", help="SQLite file (default: [store] url or ./starpod-cron.db)"
    )
    parser.add_argument(
        "--config", metavar="FILE", help="agent.toml (default: ./agent.toml if present)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    parser.add_argument(
        "--tz",
        dest="display_tz",
        metavar="ZONE",
        help="show times in this zone (and default zone for new jobs)",
    )
    top = parser.add_subparsers(dest="group", required=True, parser_class=_Parser)
    serve = top.add_parser("serve", help="run the gateway: scheduler, WebSocket, Telegram")
    serve.add_argument("--host", help="WebSocket address (default [gateway] host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="WebSocket port (default [gateway] port, 8765)")
    # also accepted after `serve` (so `python -m gateway --config agent.toml` works)
    serve.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS)
    serve.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS)
    serve.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS)
    jobs = top.add_parser("jobs", help="manage and run jobs").add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    p = jobs.add_parser("list", help="list jobs")
    p.add_argument("--all", action="store_true", help="include disabled jobs")
    p.add_argument("--user", metavar="ID", help="only this user's jobs")
    jobs.add_parser("show", help="every detail of one job").add_argument("name")
    p = jobs.add_parser("add", help="add a job")
    p.add_argument("name")
    p.add_argument("prompt")
    _schedule_options(p, required=True)
    p = jobs.add_parser("edit", help="change a job")
    p.add_argument("name")
    p.add_argument("--prompt", help="new prompt")
    p.add_argument("--rename", metavar="NEW_NAME", help="new name")
    _schedule_options(p, required=False)
    jobs.add_parser("enable", help="enable jobs").add_argument("names", nargs="+")
    jobs.add_parser("disable", help="disable jobs").add_argument("names", nargs="+")
    p = jobs.add_parser("remove", help="remove jobs and their history")
    p.add_argument("names", nargs="+")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = jobs.add_parser("run", help="run jobs now through the configured executor")
    p.add_argument("names", nargs="*")
    p.add_argument("--all", action="store_true", help="run every enabled job")
    p.add_argument("--sequential", action="store_true", help="one at a time (default: parallel)")
    p = jobs.add_parser("history", help="recent runs")
    p.add_argument("--job", metavar="NAME")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("-n", "--limit", type=int, default=20)
    p = jobs.add_parser("prune", help="delete old run history")
    p.add_argument("--days", type=int, default=30, help="runs finished more than N days ago")
    p.add_argument("--dry-run", action="store_true", help="only count")
    p = jobs.add_parser("next", help="preview the fire times of a cron expression")
    p.add_argument("expr")
    p.add_argument("--tz", metavar="ZONE")
    p.add_argument("-n", dest="count", type=int, default=5)
    return parser


def _config(args: argparse.Namespace) -> AgentConfig:
    if args.config:
        return load_config(args.config)
    default = Path("agent.toml")
    return load_config(default) if default.is_file() else AgentConfig()


async def _dispatch(args: argparse.Namespace, config: AgentConfig) -> Output:
    if args.command == "next":
        from ..clock import SystemClock

        return await commands.jobs_next(
            config, args.display_tz, args, from_ms(SystemClock().now_ms())
        )
    url = args.db or config.store.url
    async with CronStore.open(url, settings=config.store_settings()) as store:
        c = commands.Context(store, config, args.display_tz)
        if args.command == "run":
            from .run import jobs_run  # imports the executors (httpx) only when running jobs

            return await jobs_run(c, args)
        handlers = {
            "list": commands.jobs_list,
            "show": commands.jobs_show,
            "add": commands.jobs_add,
            "edit": commands.jobs_edit,
            "remove": commands.jobs_remove,
            "history": commands.jobs_history,
            "prune": commands.jobs_prune,
        }
        if args.command in ("enable", "disable"):
            return await commands.jobs_enable(c, args, args.command == "enable")
        return await handlers[args.command](c, args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error (2) or --help (0): argparse already printed
        return exc.code if isinstance(exc.code, int) else 2
    if args.group != "serve":
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.ERROR,
            format="starpod-cron: %(levelname)s %(name)s: %(message)s",
        )
    try:
        if args.display_tz:
            check_zone(args.display_tz)
        config = _config(args)
        if args.group == "serve":
            from gateway.app import serve  # the gateway loads only for `serve`

            return serve(
                config, db_url=args.db, host=args.host, port=args.port, verbose=args.verbose
            )
        output = asyncio.run(_dispatch(args, config))
    except StarpodCronError as exc:
        print(f"starpod-cron: error: {exc}", file=sys.stderr)
        return 2
    emit(output, as_json=args.json)
    return output.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
