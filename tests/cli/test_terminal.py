"""The CLI at a terminal (issue 29): output fits ``COLUMNS`` in a pty, one zone per time
column, no colour with ``NO_COLOR`` or without a terminal, "did you mean" for a mistyped
command or job name, and shell completion (job names included) through argcomplete."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from starpod_cron.cli.render import Output, emit
from tests.cli.conftest import CLI

ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LONG = "a-rather-long-job-name-that-someone-typed-for-the-nightly-inventory-reconciliation"


def in_pty(args: list[str], cwd: Path, **env: str) -> str:
    """What ``starpod-cron ARGS`` writes to a terminal (a pty), its line ends as ``\\n``."""
    main_fd, sub_fd = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
    child = subprocess.Popen(
        [sys.executable, "-m", "starpod_cron", *args],
        stdin=sub_fd,
        stdout=sub_fd,
        stderr=sub_fd,
        cwd=cwd,
        env=environ | {"TERM": "xterm-256color"} | env,
    )
    os.close(sub_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    assert child.wait(timeout=60) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.fixture
def busy(cli: CLI) -> None:
    """Jobs in two zones with long names and descriptions, and runs of them."""
    desc = "--description=checks every warehouse's stock against the ledger and reports gaps"
    for i, tz in enumerate(("Europe/Rome", "America/New_York", "UTC")):
        args = [f"{LONG}-{i}", "count the boxes " * 8, "--cron", "0 9 * * 1-5", "--tz", tz]
        assert cli("jobs", "add", *args, desc).code == 0
    assert cli("jobs", "add", "short", "p", "--every", "90m").code == 0
    assert cli("jobs", "run", "--all").code == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [["jobs", "list"], ["jobs", "history"], ["status"]], ids=" ".join
)
def test_no_line_is_longer_than_columns_in_a_pty(
    busy: None, db: str, tmp_path: Path, command: list[str]
) -> None:
    shown = in_pty(["--db", db, *command], tmp_path, COLUMNS="100", NO_COLOR="1")
    lines = shown.splitlines()
    assert len(lines) > 4 and ("a-rather" in shown or command == ["jobs", "history"])
    assert max(len(line) for line in lines) <= 100, "\n".join(lines)
    wide = in_pty(["--db", db, *command], tmp_path, COLUMNS="250", NO_COLOR="1")
    assert max(len(line) for line in wide.splitlines()) > 100  # the limit is COLUMNS'


@pytest.mark.slow
def test_no_colour_with_no_color_and_colour_without(busy: None, db: str, tmp_path: Path) -> None:
    coloured = in_pty(["--db", db, "jobs", "list"], tmp_path, COLUMNS="100")
    assert ESCAPE.search(coloured)  # a terminal gets styles...
    plain = in_pty(["--db", db, "jobs", "list"], tmp_path, COLUMNS="100", NO_COLOR="1")
    assert not ESCAPE.search(plain) and "NAME" in plain  # ...unless NO_COLOR says no
    piped = subprocess.run(
        [sys.executable, "-m", "starpod_cron", "--db", db, "status"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 0 and not ESCAPE.search(piped.stdout)  # nor a pipe


def test_each_time_column_names_one_zone_in_its_header(busy: None, cli: CLI) -> None:
    """Jobs in three zones: every time of a column in one zone, named in the header, no
    offset on the cells (``--tz`` chooses it; else [cron] default_timezone, UTC)."""
    for command, header in ((["jobs", "list"], "NEXT RUN"), (["jobs", "history"], "RUN AT"),
                            (["status"], "NEXT RUN")):  # fmt: skip
        for tz in ("Asia/Tokyo", None):
            out = cli(*command, *(["--tz", tz] if tz else [])).out
            table = out[out.index(header) - 40 :]
            assert f"{header} ({tz or 'UTC'})" in table, out
            rows = [line for line in table.splitlines()[1:] if LONG[:10] in line]
            assert rows and not any(re.search(r"[+-]\d\d:\d\d", row) for row in rows), out


def test_a_streamed_table_at_a_terminal_fits_and_cuts_longer_cells(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More rows than rich draws: the plain table, its widths from the first rows, fits."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "100")
    rows = ([f"job-{i}", "x" * (30 + i % 90), "every 1h", "yes"] for i in range(3000))
    out = Output({}, "table", "T", columns=["NAME", "A", "B", "C"], rows=rows)
    stream = Terminal()
    emit(out, as_json=False, stream=stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3001 and max(len(line) for line in lines) <= 100
    assert lines[1000].startswith("job-999 ")  # the widths of the first 1000 rows...
    assert lines[-1].startswith("job-29… ")  # ...cut a longer cell after them
    assert lines[70].startswith("job-69 ") and lines[70].endswith("…  every 1h  yes")


def test_did_you_mean_for_a_mistyped_command(cli: CLI) -> None:
    wrong = cli("jobs", "lst")
    assert wrong.code == 2 and "invalid choice: 'lst' (did you mean 'list'?)" in wrong.err
    assert "did you mean 'jobs'?" in cli("jbos", "list").err
    assert "did you mean 'history'?" in cli("jobs", "histroy").err
    far = cli("jobs", "zzzz")
    assert far.code == 2 and "did you mean" not in far.err and "choose from" in far.err


def test_did_you_mean_for_a_mistyped_job_name(cli: CLI) -> None:
    for name in ("morning-digest", "evening-digest", "build"):
        assert cli("jobs", "add", name, "p", "--every", "1h").code == 0
    shown = cli("jobs", "show", "morning-digets")
    assert shown.code == 2
    assert shown.err == (
        "starpod-cron: error: no job named 'morning-digets'; 'morning-digets': did you mean "
        "'morning-digest' or 'evening-digest'?\n"
    )
    assert "'buld': did you mean 'build'?" in cli("jobs", "disable", "build", "buld").err
    assert "did you mean 'build'?" in cli("jobs", "history", "--job", "biuld").err
    assert "did you mean 'build'?" in cli("jobs", "edit", "buidl", "--every", "2h").err
    assert "did you mean" not in cli("jobs", "show", "qqqqqqq").err
    assert cli("jobs", "list", "--json").json["data"]["total"] == 3  # nothing changed


def complete(line: str, db: str, tmp_path: Path) -> list[str]:
    """What the shell offers for ``line`` (argcomplete's protocol, answer in a file)."""
    answer = tmp_path / "completions"
    environ = os.environ | {
        "_ARGCOMPLETE": "1",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
        "STARPOD_DB": db,
    }
    done = subprocess.run(
        [sys.executable, "-m", "starpod_cron"],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return sorted(c.strip() for c in answer.read_text().split("\x0b") if c.strip())


@pytest.mark.slow
def test_completion_offers_commands_and_job_names(cli: CLI, db: str, tmp_path: Path) -> None:
    for name in ("morning", "monthly-report", "build"):
        assert cli("jobs", "add", name, "p", "--every", "1h").code == 0
    assert complete("starpod-cron jobs show ", db, tmp_path) == [
        "build", "monthly-report", "morning",
    ]  # fmt: skip
    assert complete("starpod-cron jobs show mo", db, tmp_path) == ["monthly-report", "morning"]
    assert complete("starpod-cron jobs run b", db, tmp_path) == ["build"]
    assert complete("starpod-cron jobs history --job m", db, tmp_path) == [
        "monthly-report", "morning",
    ]  # fmt: skip
    assert "list" in complete("starpod-cron jobs ", db, tmp_path)
    assert complete("starpod-cron jobs l", db, tmp_path) == ["list"]
    assert "serve" in complete("starpod-cron s", db, tmp_path)  # the entry points' too


@pytest.mark.slow
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_to_install(shell: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "starpod_cron", "completion", shell],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0 and "starpod-cron" in done.stdout
    assert ("complete " if shell != "zsh" else "compdef") in done.stdout
    if shell == "bash":  # the script really is bash: it parses
        syntax = subprocess.run(["bash", "-n"], input=done.stdout, text=True, timeout=30)
        assert syntax.returncode == 0
