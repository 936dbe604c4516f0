"""``starpod-cron``: parsing, dispatch, exit codes (0 ok, 1 a run failed, 2 bad input).

Other packages add commands through the entry-point group ``starpod_cron.commands`` (the
gateway adds ``serve``): each entry point is ``register(subparsers, common)``, which adds a
sub-parser whose ``run`` default is ``handler(args, config) -> int``. The library never imports
them by name.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from ..bootstrap import open_store, store_url
from ..config import AgentConfig, load_config
from ..errors import DatabaseMissing, StarpodCronError
from ..inputrules import text_problem
from ..logs import RedactingFormatter, redact
from ..models import DeliveryStatus, RunStatus
from ..runner import run as run_async
from ..timeutil import check_zone, from_ms
from ..version import __version__
from . import deliveries, history, jobs, overview, upkeep
from .context import Context
from .options import add_arguments, bounded_int, edit_arguments
from .render import Output, emit

MAINTENANCE = ("sessions", "deliveries", "optimize")
STATUSES = [status.value for status in RunStatus]
COMMAND_GROUP = "starpod_cron.commands"
MAX_LIMIT = 10_000
MAX_PREVIEW = 1000
PATH_ARGUMENTS = frozenset({"db", "config"})
"""Arguments that are file names (or URLs), which may be any bytes the file system allows."""

ADD_EXAMPLES = """examples:
  starpod-cron jobs add inbox "Summarize my inbox" --cron "0 9 * * 1-5" --tz Europe/Rome
  starpod-cron jobs add build "Check the build" --every 30m --retries 5 --timeout 10m
  starpod-cron jobs add remind "Remind me to stretch" --in 20m     (deleted after it runs)
  starpod-cron jobs add review "Prepare the review" --at "tomorrow 9:00"
  starpod-cron jobs add digest "Send the digest" --when "every weekday at 9:00"
  starpod-cron jobs add close "Close the books" --when "on the last day of every month at 17:00"
  starpod-cron jobs add try "Ping" --when "every hour at :15" --dry-run   (prints, saves nothing)
  starpod-cron jobs add tick "Ping" --cron "*/10 * * * * *"        (6 fields: seconds first)"""
EDIT_EXAMPLES = """examples:
  starpod-cron jobs edit inbox --cron "30 8 * * 1-5"
  starpod-cron jobs edit build --every 1h --prompt "Check the build and the tests"
  starpod-cron jobs edit inbox --rename morning-inbox --tz America/New_York"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """Usage errors: one line on stderr, exit code 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _globals(parser: argparse.ArgumentParser, *, suppress: bool, tz: bool = True) -> None:
    """The global options; on sub-commands they default to SUPPRESS, so they may come after
    the command too (``jobs list --json``) without hiding a value given before it."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--db",
        metavar="URL",
        default=default(None),
        help="the store: a SQLite file, sqlite:///path or postgresql://... "
        "(default: $STARPOD_DB, else [store] url, else ./starpod-cron.db)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default(None),
        help="agent.toml to read (default: ./agent.toml if present)",
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print one JSON document"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="log what the library does",
    )
    if tz:
        parser.add_argument(
            "--tz",
            dest="display_tz",
            metavar="ZONE",
            default=default(None),
            help="show times in this IANA zone (and use it for new jobs)",
        )


def _common() -> _Parser:
    common = _Parser(add_help=False)
    _globals(common, suppress=True)
    return common


def _common_no_tz() -> _Parser:
    common = _Parser(add_help=False)
    _globals(common, suppress=True, tz=False)
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="starpod-cron",
        description="Manage, inspect and run agent-prompt jobs; `serve` runs the gateway.",
        epilog="Global options may also follow the command (starpod-cron jobs list --json).",
    )
    _globals(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"starpod-cron {__version__}")
    common, common_no_tz = _common(), _common_no_tz()
    top = parser.add_subparsers(dest="group", parser_class=_Parser, metavar="COMMAND")
    jobs_parser = top.add_parser(
        "jobs", help="list, add, change, run jobs and read their history", parents=[common]
    )
    jobs_parser.set_defaults(group_parser=jobs_parser)
    jobs = jobs_parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    formatter = argparse.RawDescriptionHelpFormatter

    p = jobs.add_parser("list", help="list jobs", parents=[common])
    p.add_argument("--all", action="store_true", help="include jobs disabled by hand")
    p.add_argument("--user", metavar="ID", help="only this user's jobs")

    p = jobs.add_parser("show", help="every detail of one job, its next fires", parents=[common])
    p.add_argument("name", help="the job's name (or id)")

    p = jobs.add_parser(
        "add",
        help="add a job",
        parents=[common_no_tz],
        epilog=ADD_EXAMPLES,
        formatter_class=formatter,
    )
    add_arguments(p)

    p = jobs.add_parser(
        "edit",
        help="change a job",
        parents=[common_no_tz],
        epilog=EDIT_EXAMPLES,
        formatter_class=formatter,
    )
    edit_arguments(p)

    for verb, text in (("enable", "enable jobs"), ("disable", "disable (pause) jobs")):
        p = jobs.add_parser(verb, help=text, parents=[common])
        p.add_argument("names", nargs="+", metavar="NAME", help="job names (or ids)")

    p = jobs.add_parser(
        "snooze", help="put off a job's next run once (its schedule unchanged)", parents=[common]
    )
    p.add_argument("name", metavar="NAME", help="the job's name (or id)")
    p.add_argument(
        "--for", dest="duration", required=True, metavar="DURATION", help="e.g. 1h, 30m, 1d"
    )

    p = jobs.add_parser(
        "retry",
        help="retry a failed run: its occurrence again, as the next attempt",
        parents=[common],
    )
    p.add_argument("run_id", metavar="RUN_ID", help="the run's id (from jobs history)")

    p = jobs.add_parser("remove", help="remove jobs and their history", parents=[common])
    p.add_argument("names", nargs="+", metavar="NAME", help="job names (or ids)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    p = jobs.add_parser(
        "run", help="run jobs now through the configured executor", parents=[common]
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="job names (or ids)")
    p.add_argument("--all", action="store_true", help="run every enabled job")
    p.add_argument("--sequential", action="store_true", help="one at a time (default: parallel)")

    p = jobs.add_parser(
        "backfill",
        help="run once each past occurrence without a run (oldest first)",
        parents=[common],
    )
    p.add_argument("name", metavar="NAME", help="the job's name (or id)")
    p.add_argument(
        "--from", dest="start", required=True, metavar="TIME", help="the oldest time of the range"
    )
    p.add_argument("--to", dest="end", required=True, metavar="TIME", help="the newest, or now")
    p.add_argument("--dry-run", action="store_true", help="only list the occurrences it would run")
    p.add_argument(
        "--max",
        type=bounded_int(1, 1_000_000),
        metavar="N",
        help="the most occurrences the range may hold (default [cron] backfill_limit)",
    )

    p = jobs.add_parser("history", help="recent runs, newest first", parents=[common])
    p.add_argument("--job", metavar="NAME", help="only this job's runs")
    p.add_argument("--status", choices=STATUSES, help="only runs with this status")
    p.add_argument(
        "-n",
        "--limit",
        type=bounded_int(1, MAX_LIMIT),
        default=20,
        help=f"how many runs, 1-{MAX_LIMIT} (default 20)",
    )

    p = jobs.add_parser("prune", help="delete old run history", parents=[common])
    p.add_argument(
        "--days",
        type=bounded_int(0, 36_500),
        default=30,
        help="delete runs that finished more than N days ago (default 30)",
    )
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")

    p = jobs.add_parser(
        "sync",
        help="make the store match the jobs declared in code and agent.toml",
        parents=[common],
    )
    p.add_argument("--dry-run", action="store_true", help="only show what would change")

    p = jobs.add_parser(
        "next", help="preview the fire times of a cron expression", parents=[common_no_tz]
    )
    p.add_argument("expr", help='a cron expression, e.g. "0 9 * * 1-5" (6 fields: seconds first)')
    p.add_argument("--tz", metavar="ZONE", help="read the expression in this zone")
    p.add_argument(
        "-n",
        dest="count",
        type=bounded_int(1, MAX_PREVIEW),
        default=5,
        help=f"how many fire times, 1-{MAX_PREVIEW} (default 5)",
    )

    top.add_parser(
        "status",
        help="processes, runs in flight, the next fires, each job's state",
        parents=[common],
    ).set_defaults(group_parser=None, command="status")

    upkeep = top.add_parser(
        "maintenance", help="built-in cleanups (each with --dry-run)", parents=[common]
    )
    upkeep.set_defaults(group_parser=upkeep)
    tasks = upkeep.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    p = tasks.add_parser(
        "sessions", help="delete conversation messages older than N hours", parents=[common]
    )
    p.add_argument("--hours", type=bounded_int(0, 876_000), default=72, help="default 72")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    p = tasks.add_parser(
        "deliveries",
        help="delete delivered, dead and published deliveries older than N days",
        parents=[common],
    )
    p.add_argument("--days", type=bounded_int(0, 36_500), default=30, help="default 30")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    tasks.add_parser("optimize", help="refresh the database's query statistics", parents=[common])

    nodes_parser = top.add_parser(
        "nodes", help="the gateways sharing this store: up, gone or stopped", parents=[common]
    )
    nodes_parser.set_defaults(group_parser=nodes_parser)
    nodes = nodes_parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    p = nodes.add_parser("list", help="every node seen in the last week", parents=[common])
    p.add_argument("--up", action="store_true", help="only nodes that are up")

    _deliveries_parser(top, common)

    for entry in metadata.entry_points(group=COMMAND_GROUP):
        register = entry.load()
        register(top, common)
    return parser


def _deliveries_parser(top: Any, common: _Parser) -> None:
    group = top.add_parser(
        "deliveries", help="the outbox: dead (or other) deliveries, retried", parents=[common]
    )
    group.set_defaults(group_parser=group)
    verbs = group.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    p = verbs.add_parser("list", help="deliveries in one status, newest first", parents=[common])
    statuses = [s.value for s in DeliveryStatus]
    p.add_argument("--status", choices=statuses, default="dead", help="default dead")
    p.add_argument("--limit", type=bounded_int(1, 1000), default=100, help="1-1000, default 100")
    p = verbs.add_parser("retry", help="send dead deliveries again", parents=[common])
    p.add_argument(
        "ids", nargs="+", type=bounded_int(1, 2**63 - 1), metavar="ID", help="delivery ids"
    )


def _config(args: argparse.Namespace) -> AgentConfig:
    if args.config:
        return load_config(args.config)
    default = Path("agent.toml")
    return load_config(default) if default.is_file() else AgentConfig()


Handler = Callable[[Context, argparse.Namespace], Awaitable[Output]]
HANDLERS: dict[tuple[str, str], Handler] = {
    ("status", "status"): overview.status,
    ("nodes", "list"): overview.nodes_list,
    ("deliveries", "list"): deliveries.deliveries_list,
    ("deliveries", "retry"): deliveries.deliveries_retry,
    ("jobs", "list"): jobs.jobs_list,
    ("jobs", "show"): jobs.jobs_show,
    ("jobs", "add"): jobs.jobs_add,
    ("jobs", "edit"): jobs.jobs_edit,
    ("jobs", "enable"): jobs.jobs_enable,
    ("jobs", "disable"): jobs.jobs_enable,
    ("jobs", "snooze"): jobs.jobs_snooze,
    ("jobs", "retry"): jobs.jobs_retry,
    ("jobs", "remove"): jobs.jobs_remove,
    ("jobs", "history"): history.jobs_history,
    ("jobs", "prune"): history.jobs_prune,
    ("jobs", "sync"): upkeep.jobs_sync,
    **{("maintenance", task): upkeep.maintenance for task in MAINTENANCE},
}
"""Each command that opens the store; ``jobs next`` and ``jobs run`` are dispatched apart."""
CREATES = frozenset({("jobs", "add"), ("jobs", "sync")})
"""The commands that may create the database; every other one refuses a missing one."""


async def _dispatch(args: argparse.Namespace, config: AgentConfig) -> Output:
    key = (args.group, args.command)
    if key == ("jobs", "next") or (key == ("jobs", "add") and args.dry_run):
        from ..clock import SystemClock

        now = from_ms(SystemClock().now_ms())
        if key == ("jobs", "add"):
            return jobs.jobs_add_dry_run(config, args.display_tz, args, now)  # no store opened
        return await jobs.jobs_next(config, args.display_tz, args, now)
    try:
        opened = await open_store(config, store_url(config, args.db), create=key in CREATES)
    except DatabaseMissing as exc:
        if key != ("jobs", "list"):
            raise
        empty = Output({"jobs": [], "total": 0}, "table", "Scheduled Jobs")
        empty.text = f"No jobs ({exc}). Add one: starpod-cron jobs add NAME PROMPT --every 30m"
        return empty
    async with opened as store:
        c = Context(store, config, args.display_tz)
        if key == ("jobs", "run"):
            from .run import jobs_run  # imports the executors (httpx) only when running jobs

            return await jobs_run(c, args)
        if key == ("jobs", "backfill"):
            from .run import jobs_backfill

            return await jobs_backfill(c, args)
        return await HANDLERS[key](c, args)


def not_utf8(args: argparse.Namespace) -> str | None:
    """What to say about an argument that is not UTF-8 text, or None. (Python decodes argv with
    ``surrogateescape``: a byte such as 0xff arrives as the lone surrogate U+DCFF, which no
    store, terminal or JSON answer can hold.)"""
    for dest, value in sorted(vars(args).items()):
        if dest in PATH_ARGUMENTS:
            continue
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and text_problem(text) is not None:
                option = dest.rstrip("_").replace("_", "-")
                if "\x00" in text:  # only from main([...]): a real argv cannot hold NUL
                    return f"the {option} argument {text_problem(text)}"
                try:
                    shown = repr(os.fsencode(text))
                except UnicodeEncodeError:
                    shown = ascii(text)
                return (
                    f"the {option} argument {shown} is not UTF-8 text: "
                    "give names, prompts and other values in UTF-8"
                )
    return None


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("starpod-cron: %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error (2), --help or --version (0): already printed
        return exc.code if isinstance(exc.code, int) else 2
    if args.group is None:
        parser.print_help(sys.stderr)
        return 2
    problem = not_utf8(args)
    if problem is not None:
        print(f"starpod-cron: error: {problem}", file=sys.stderr)
        return 2
    handler = getattr(args, "run", None)
    if handler is None and getattr(args, "command", None) is None:
        args.group_parser.print_help(sys.stderr)
        return 2
    if handler is None:
        setup_logging(args.verbose)
    try:
        if args.display_tz:
            check_zone(args.display_tz)
        config = _config(args)
        if handler is not None:
            code: int = handler(args, config)
            return code
        output = run_async(_dispatch(args, config))
    except StarpodCronError as exc:
        print(f"starpod-cron: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("starpod-cron: interrupted", file=sys.stderr)
        return 130
    emit(output, as_json=args.json)
    return output.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
