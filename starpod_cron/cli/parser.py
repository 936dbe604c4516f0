"""The ``starpod-cron`` command line as argparse sees it: every command, its options, and the
commands other packages add through the entry-point group ``starpod_cron.commands``.

Start-up pays only for what a command needs: each command's own options are added when that
command is parsed (or its help shown), and the entry points are read only for a command that
is not built in (or for the help that lists them). :func:`build_parser` returns the whole
parser at once, without side effects (the CLI reference of the docs is made from it).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ..version import __version__
from .argtypes import bounded_int

if TYPE_CHECKING:
    from ..config import AgentConfig

COMMAND_GROUP = "starpod_cron.commands"
MAX_LIMIT = 10_000
MAX_PREVIEW = 1000
BUILT_IN = frozenset(
    {"jobs", "status", "maintenance", "nodes", "deliveries", "completion", "config"}
)
VALUED_GLOBALS = frozenset({"--db", "--config", "--tz", "--log-format"})
LOG_FORMATS = ("text", "json")
"""``[logging] format``'s choices (logformat.FORMATS, not imported: start-up stays small)."""
SHELLS = ("bash", "zsh", "fish")

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
COMPLETION_EPILOG = """install (once; then open a new shell):
  bash:  starpod-cron completion bash > ~/.local/share/bash-completion/completions/starpod-cron
  zsh:   starpod-cron completion zsh > "${fpath[1]}/_starpod-cron"
  fish:  starpod-cron completion fish > ~/.config/fish/completions/starpod-cron.fish"""

Build = Callable[["_Parser"], None]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (exit 2), a close match offered for a mistyped choice, and
    arguments added on first use (:meth:`later`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[Build] = []

    def later(self, build: Build) -> None:
        self._pending.append(build)

    def ready(self) -> None:
        while self._pending:
            self._pending.pop(0)(self)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self.ready()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.ready()
        return super().format_help()

    def format_usage(self) -> str:
        self.ready()
        return super().format_usage()

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            from .suggest import did_you_mean

            choices = ", ".join(map(repr, action.choices))
            hint = did_you_mean(str(value), [str(c) for c in action.choices])
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r} ({hint or 'choose from ' + choices})"
            )

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
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=default(None),
        help="text or json (one object per line) on stderr (default: [logging] format)",
    )
    if tz:
        parser.add_argument(
            "--tz",
            dest="display_tz",
            metavar="ZONE",
            default=default(None),
            help="show times in this IANA zone (and use it for new jobs)",
        )


def _common(*, tz: bool = True) -> _Parser:
    common = _Parser(add_help=False)
    _globals(common, suppress=True, tz=tz)
    return common


def job_name(p: argparse.ArgumentParser, *names: str, **kwargs: Any) -> None:
    """A positional or option naming jobs: completed with the store's job names."""
    from .complete import job_names

    action = p.add_argument(*names, **kwargs)
    action.completer = job_names  # type: ignore[attr-defined]  # argcomplete reads it


def command_word(argv: Sequence[str]) -> str | None:
    """The command of ``argv`` (its first word that is not a global option or its value)."""
    return next(_words(argv), None)


def _words(argv: Sequence[str]) -> Iterator[str]:
    """The words of ``argv`` that are not options or the values of global options (after
    ``--``, every word)."""
    words = iter(argv)
    for word in words:
        if word in VALUED_GLOBALS:
            next(words, None)
        elif word == "--":
            yield from words
        elif not word.startswith("-"):
            yield word


def build_parser() -> argparse.ArgumentParser:
    """The whole ``starpod-cron`` parser: every command with its options, the commands of
    the entry points included. No side effects (nothing is opened, nothing printed)."""
    parser = parser_for(None)
    ready_all(parser)
    return parser


def ready_all(parser: argparse.ArgumentParser) -> None:
    """Add every command's arguments now (the full parser: help, completion, docs)."""
    if isinstance(parser, _Parser):
        parser.ready()
    for sub in sub_parsers(parser):
        ready_all(sub)


def sub_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from dict.fromkeys(action.choices.values())


def plugins_needed(argv: Sequence[str]) -> bool:
    """Whether parsing ``argv`` needs the entry points' commands: for a command not built in,
    and for the help that lists them all (not for ``--version``)."""
    word = command_word(argv)
    if word is None:
        return "--version" not in argv
    return word not in BUILT_IN


def parser_for(argv: Sequence[str] | None) -> _Parser:
    """The parser for ``argv`` (None: for everything), with the entry points' commands
    unless ``argv`` does without them (:func:`plugins_needed`)."""
    parser = _Parser(
        prog="starpod-cron",
        description="Manage, inspect and run agent-prompt jobs; `serve` runs the gateway.",
        epilog="Global options may also follow the command (starpod-cron jobs list --json).",
    )
    _globals(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"starpod-cron {__version__}")
    common, common_no_tz = _common(), _common(tz=False)
    top = parser.add_subparsers(dest="group", parser_class=_Parser, metavar="COMMAND")
    wanted = None if argv is None else command_in_group(argv)
    _jobs(
        _group(top, "jobs", "list, add, change, run jobs and read their history", common, wanted),
        common,
        common_no_tz,
    )
    top.add_parser(
        "status",
        help="processes, runs in flight, the next fires, each job's state",
        parents=[common],
    ).set_defaults(group_parser=None, command="status")
    _maintenance(
        _group(top, "maintenance", "built-in cleanups (each with --dry-run)", common, wanted),
        common,
    )
    nodes = _group(
        top, "nodes", "the gateways sharing this store: up, gone or stopped", common, wanted
    )
    nodes.add("list", "every node seen in the last week", common, _nodes_list)
    _deliveries(
        _group(
            top, "deliveries", "the outbox: dead (or other) deliveries, retried", common, wanted
        ),
        common,
    )
    p = top.add_parser(
        "config",
        help="the effective configuration and where each value came from",
        parents=[common],
        description="Every key of agent.toml's fixed sections: its value (from the file, "
        "STARPOD_<SECTION>_<KEY>, a flag, or the default) and its source.",
    )
    p.set_defaults(run=_config_command, group_parser=None)
    p = top.add_parser(
        "completion",
        help="print the shell completion script to install (bash, zsh, fish)",
        epilog=COMPLETION_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(group_parser=None, command="completion")
    if argv is None or plugins_needed(argv):
        from importlib import metadata

        for entry in metadata.entry_points(group=COMMAND_GROUP):
            register = entry.load()
            register(top, common)
    return parser


class _Commands:
    """A group's commands, declared first and made when the group is parsed (or its help
    shown): only the one ``wanted`` names when it is one of them (``jobs list`` makes one
    parser, not twenty), else all of them (help, a mistyped name, the whole parser). Each
    command's options are added when that command is parsed (:meth:`_Parser.later`)."""

    def __init__(self, wanted: str | None) -> None:
        self.wanted = wanted
        self._declared: list[tuple[str, str, _Parser, tuple[Build, ...], dict[str, Any]]] = []

    def add(self, name: str, text: str, parent: _Parser, *build: Build, **kw: Any) -> None:
        self._declared.append((name, text, parent, build, kw))

    def make(self, group: _Parser) -> None:
        verbs = group.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
        named = [c for c in self._declared if c[0] == self.wanted]
        for name, text, parent, build, kw in named or self._declared:
            p: _Parser = verbs.add_parser(name, help=text, parents=[parent], **kw)
            for step in build:
                p.later(step)


def _group(top: Any, name: str, text: str, common: _Parser, wanted: str | None) -> _Commands:
    group: _Parser = top.add_parser(name, help=text, parents=[common])
    group.set_defaults(group_parser=group)
    commands = _Commands(wanted)
    group.later(commands.make)
    return commands


def command_in_group(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names inside its group (``list`` of ``jobs list``), or None when
    every command of the group is needed (no such word, or help asked)."""
    if "-h" in argv or "--help" in argv or "--" in argv:
        return None
    words = list(_words(argv))
    return words[1] if len(words) > 1 else None


def _jobs(jobs: _Commands, common: _Parser, common_no_tz: _Parser) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    jobs.add("list", "list jobs", common, _list)
    jobs.add("show", "every detail of one job, its next fires", common, _show)
    jobs.add("add", "add a job", common_no_tz, _add, epilog=ADD_EXAMPLES, formatter_class=formatter)
    jobs.add(
        "edit", "change a job", common_no_tz, _edit, epilog=EDIT_EXAMPLES, formatter_class=formatter
    )
    for verb, text in (("enable", "enable jobs"), ("disable", "disable (pause) jobs")):
        jobs.add(verb, text, common, _names)
    jobs.add("snooze", "put off a job's next run once (its schedule unchanged)", common, _snooze)
    text = "retry a failed run: its occurrence again, as the next attempt"
    jobs.add("retry", text, common, _retry)
    jobs.add("remove", "remove jobs and their history", common, _names, _remove)
    jobs.add("run", "run jobs now through the configured executor", common, _run)
    text = "run once each past occurrence without a run (oldest first)"
    jobs.add("backfill", text, common, _backfill)
    jobs.add("history", "recent runs, newest first", common, _history)
    jobs.add("prune", "delete old run history", common, _prune)
    text = "make the store match the jobs declared in code and agent.toml"
    jobs.add("sync", text, common, _sync)
    jobs.add("next", "preview the fire times of a cron expression", common_no_tz, _next)


def _list(p: _Parser) -> None:
    p.add_argument("--all", action="store_true", help="include jobs disabled by hand")
    p.add_argument("--user", metavar="ID", help="only this user's jobs")


def _show(p: _Parser) -> None:
    job_name(p, "name", help="the job's name (or id)")


def _snooze(p: _Parser) -> None:
    job_name(p, "name", metavar="NAME", help="the job's name (or id)")
    p.add_argument(
        "--for", dest="duration", required=True, metavar="DURATION", help="e.g. 1h, 30m, 1d"
    )


def _retry(p: _Parser) -> None:
    p.add_argument("run_id", metavar="RUN_ID", help="the run's id (from jobs history)")


def _remove(p: _Parser) -> None:
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _run(p: _Parser) -> None:
    job_name(p, "names", nargs="*", metavar="NAME", help="job names (or ids)")
    p.add_argument("--all", action="store_true", help="run every enabled job")
    p.add_argument("--sequential", action="store_true", help="one at a time (default: parallel)")


def _prune(p: _Parser) -> None:
    p.add_argument(
        "--days",
        type=bounded_int(0, 36_500),
        default=30,
        help="delete runs that finished more than N days ago (default 30)",
    )
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")


def _sync(p: _Parser) -> None:
    p.add_argument("--dry-run", action="store_true", help="only show what would change")


def _nodes_list(p: _Parser) -> None:
    p.add_argument("--up", action="store_true", help="only nodes that are up")


def _config_command(args: argparse.Namespace, config: AgentConfig) -> int:
    from .configcmd import run

    return run(args, config)


def _add(p: _Parser) -> None:
    from .options import add_arguments

    add_arguments(p)


def _edit(p: _Parser) -> None:
    from .options import edit_arguments

    edit_arguments(p)


def _names(p: _Parser) -> None:
    job_name(p, "names", nargs="+", metavar="NAME", help="job names (or ids)")


def _backfill(p: _Parser) -> None:
    job_name(p, "name", metavar="NAME", help="the job's name (or id)")
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


def run_statuses() -> list[str]:
    """The statuses ``jobs history --status`` takes: every run status."""
    from ..runstatus import RunStatus

    return [status.value for status in RunStatus]


def _history(p: _Parser) -> None:
    job_name(p, "--job", metavar="NAME", help="only this job's runs")
    p.add_argument("--status", choices=run_statuses(), help="only runs with this status")
    p.add_argument(
        "-n",
        "--limit",
        type=bounded_int(1, MAX_LIMIT),
        default=20,
        help=f"how many runs, 1-{MAX_LIMIT} (default 20)",
    )


def _next(p: _Parser) -> None:
    p.add_argument("expr", help='a cron expression, e.g. "0 9 * * 1-5" (6 fields: seconds first)')
    p.add_argument("--tz", metavar="ZONE", help="read the expression in this zone")
    p.add_argument(
        "-n",
        dest="count",
        type=bounded_int(1, MAX_PREVIEW),
        default=5,
        help=f"how many fire times, 1-{MAX_PREVIEW} (default 5)",
    )


def _maintenance(tasks: _Commands, common: _Parser) -> None:
    text = "delete conversation messages older than N hours"
    tasks.add("sessions", text, common, _sessions)
    text = "delete delivered, dead and published deliveries older than N days"
    tasks.add("deliveries", text, common, _old_deliveries)
    tasks.add("optimize", "refresh the database's query statistics", common)


def _sessions(p: _Parser) -> None:
    p.add_argument("--hours", type=bounded_int(0, 876_000), default=72, help="default 72")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")


def _old_deliveries(p: _Parser) -> None:
    p.add_argument("--days", type=bounded_int(0, 36_500), default=30, help="default 30")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")


def _deliveries(verbs: _Commands, common: _Parser) -> None:
    verbs.add("list", "deliveries in one status, newest first", common, _deliveries_list)
    verbs.add("retry", "send dead deliveries again", common, _deliveries_retry)


def _deliveries_retry(p: _Parser) -> None:
    p.add_argument(
        "ids", nargs="+", type=bounded_int(1, 2**63 - 1), metavar="ID", help="delivery ids"
    )


def _deliveries_list(p: _Parser) -> None:
    from ..models import DeliveryStatus

    statuses = [s.value for s in DeliveryStatus]
    p.add_argument("--status", choices=statuses, default="dead", help="default dead")
    p.add_argument("--limit", type=bounded_int(1, 1000), default=100, help="1-1000, default 100")
