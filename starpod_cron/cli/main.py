"""``starpod-cron``: parsing, dispatch, exit codes (0 ok, 1 a run failed, 2 bad input).

Other packages add commands through the entry-point group ``starpod_cron.commands`` (the
gateway adds ``serve``): each entry point is ``register(subparsers, common)``, which adds a
sub-parser whose ``run`` default is ``handler(args, config) -> int``. The library never imports
them by name, and reads the entry points only for a command that is not its own.

A command imports only what it needs (issue 28): the parser is :mod:`.parser`, each command's
handler is imported when it runs, and ``--version`` loads nothing of the library.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from .parser import build_parser, parser_for

if TYPE_CHECKING:
    import argparse

    from ..config import AgentConfig
    from ..store import CronStore
    from .context import Context
    from .render import Output

__all__ = ["build_parser", "main"]

MAINTENANCE = ("sessions", "deliveries", "optimize")
PATH_ARGUMENTS = frozenset({"db", "config"})
"""Arguments that are file names (or URLs), which may be any bytes the file system allows."""
NAME_ARGUMENTS = ("name", "names", "job")
"""The arguments that name jobs (a name not found gets the close ones offered)."""


Handler = Callable[["Context", "argparse.Namespace"], Awaitable["Output"]]
HANDLERS: dict[tuple[str, str], str] = {
    ("status", "status"): "overview:status",
    ("nodes", "list"): "overview:nodes_list",
    ("deliveries", "list"): "deliveries:deliveries_list",
    ("deliveries", "retry"): "deliveries:deliveries_retry",
    ("jobs", "list"): "listing:jobs_list",
    ("jobs", "show"): "jobs:jobs_show",
    ("jobs", "add"): "jobs:jobs_add",
    ("jobs", "edit"): "jobs:jobs_edit",
    ("jobs", "enable"): "jobs:jobs_enable",
    ("jobs", "disable"): "jobs:jobs_enable",
    ("jobs", "snooze"): "jobs:jobs_snooze",
    ("jobs", "retry"): "jobs:jobs_retry",
    ("jobs", "remove"): "jobs:jobs_remove",
    ("jobs", "history"): "history:jobs_history",
    ("jobs", "prune"): "history:jobs_prune",
    ("jobs", "sync"): "upkeep:jobs_sync",
    ("jobs", "run"): "run:jobs_run",  # imports the executors (httpx) only when running jobs
    ("jobs", "backfill"): "run:jobs_backfill",
    **{("maintenance", task): "upkeep:maintenance" for task in MAINTENANCE},
}
"""Each command that opens the store, as ``module:function`` of this package (imported when
the command runs); ``jobs next`` and ``jobs add --dry-run`` are dispatched apart."""
CREATES = frozenset({("jobs", "add"), ("jobs", "sync")})
"""The commands that may create the database; every other one refuses a missing one."""


def handler(key: tuple[str, str]) -> Handler:
    module, name = HANDLERS[key].split(":")
    found: Handler = getattr(importlib.import_module(f"{__package__}.{module}"), name)
    return found


async def _dispatch(args: argparse.Namespace, config: AgentConfig) -> Output:
    key = (args.group, args.command)
    from ..bootstrap import open_store, store_url
    from ..errors import DatabaseMissing, JobNotFound
    from .context import Context

    if key == ("jobs", "next") or (key == ("jobs", "add") and args.dry_run):
        from ..clock import SystemClock
        from ..timeutil import from_ms
        from .jobs import jobs_add_dry_run, jobs_next

        now = from_ms(SystemClock().now_ms())
        if key == ("jobs", "add"):
            return jobs_add_dry_run(config, args.display_tz, args, now)  # no store opened
        return await jobs_next(config, args.display_tz, args, now)
    try:
        opened = await open_store(config, store_url(config, args.db), create=key in CREATES)
    except DatabaseMissing as exc:
        if key != ("jobs", "list"):
            raise
        from .listing import no_database

        return no_database(exc)
    async with opened as store:
        try:
            return await handler(key)(Context(store, config, args.display_tz, args.json), args)
        except JobNotFound as exc:
            raise JobNotFound(await _suggested(store, str(exc), args)) from exc


async def _suggested(store: CronStore, message: str, args: argparse.Namespace) -> str:
    """A "no job named ..." message with the names close to each one not found."""
    from .suggest import did_you_mean

    given: list[str] = []
    for dest in NAME_ARGUMENTS:
        value = getattr(args, dest, None)
        given += value if isinstance(value, list) else [value] if isinstance(value, str) else []
    known = {job.name for job in await store.list_jobs()}
    hints = [
        f"{name!r}: {hint}"
        for name in dict.fromkeys(given)
        if name not in known and (hint := did_you_mean(name, known))
    ]
    return "; ".join([message, *hints])


def not_utf8(args: argparse.Namespace) -> str | None:
    """What to say about an argument that is not UTF-8 text, or None. (Python decodes argv with
    ``surrogateescape``: a byte such as 0xff arrives as the lone surrogate U+DCFF, which no
    store, terminal or JSON answer can hold.)"""
    from ..inputrules import text_problem

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


def setup_logging(verbose: bool, kind: str = "text") -> None:
    import logging

    from .. import logformat

    text = "starpod-cron: %(levelname)s %(name)s: %(message)s"
    logformat.setup_logging(kind, text, logging.INFO if verbose else logging.ERROR)


def _say_error(message: str) -> None:
    from ..logformat import say_error

    say_error(message)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions: answer and exit
        from .complete import autocomplete

        autocomplete(build_parser())
    parser = parser_for(words)
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # usage error (2), --help or --version (0): already printed
        return exc.code if isinstance(exc.code, int) else 2
    if args.group is None:
        parser.print_help(sys.stderr)
        return 2
    from ..logformat import early_format

    if early_format(args.log_format, os.environ) == "json":  # before the file is read
        setup_logging(args.verbose, "json")
    problem = not_utf8(args)
    if problem is not None:
        _say_error(problem)
        return 2
    if args.group == "completion":
        from .complete import shell_script

        sys.stdout.write(shell_script(args.shell))
        return 0
    run = getattr(args, "run", None)
    if run is None and getattr(args, "command", None) is None:
        args.group_parser.print_help(sys.stderr)
        return 2
    return _run(args, run)


def _run(args: argparse.Namespace, run: Callable[..., int] | None) -> int:
    from ..errors import StarpodCronError
    from ..logformat import say
    from ..timeutil import check_zone
    from .configured import command_config
    from .render import emit

    try:
        if args.display_tz:
            check_zone(args.display_tz)
        config = command_config(args)
        if run is None:
            setup_logging(args.verbose, config.logging.format)
        if run is not None:
            code: int = run(args, config)
            return code
        if (args.group, args.command) == ("jobs", "list") and not args.json:
            from .listing import jobs_table  # rows read without a store (nor, on SQLite, asyncio)

            output = jobs_table(config, args)
        else:
            from ..runner import run as run_async

            output = run_async(_dispatch(args, config))
    except StarpodCronError as exc:
        _say_error(str(exc))
        return 2
    except KeyboardInterrupt:
        say("starpod-cron: interrupted")
        return 130
    emit(output, as_json=args.json)
    return output.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
