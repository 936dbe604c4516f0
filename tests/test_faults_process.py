"""Processes that must never need SIGKILL, and errors that must be one line: a forgotten
close(), start-up errors, Ctrl-C while a job runs, a killed `jobs run`, an executor calling
sys.exit(), a database deleted under a running scheduler, and inputs at the edges."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    RunStatus,
    RunTrigger,
    Schedule,
    StoreUnavailable,
)
from tests.conftest import eventually, until
from tests.processes import CLI, environment, run_cli, serve

pytestmark = pytest.mark.slow

PYTHON_EXECUTOR = '[executor]\nkind = "python"\ntarget = "tests.targets:run"\n'


def _one_line_error(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("starpod-cron"), err


async def _runs(db: str, job: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT status, trigger, started_at, lease_expires_at, error FROM runs "
            "WHERE job_name = ? ORDER BY seq",
            (job,),
        ).fetchall()


async def _running(db: str, job: str) -> list[tuple[Any, ...]]:
    return [r for r in await _runs(db, job) if r[0] == "running"]


async def _started(db: str, job: str) -> list[tuple[Any, ...]]:
    """Running runs whose executor has been called (past their start, not claimed ahead)."""
    now = time.time() * 1000
    return [r for r in await _running(db, job) if r[2] + 100 < now]


# --------------------------------------------------------------- 4. a forgotten close()
FORGETFUL = """
import asyncio
from starpod_cron import CronScheduler, CronStore, JobResult, Schedule

async def main():
    store = await CronStore.open("forgot.db")
    await store.add_job("tick", "p", Schedule.interval(every_ms=1000))
    async def executor(ctx):
        return JobResult("", "ok")
    scheduler = CronScheduler(store, executor)
    scheduler.start()
    await asyncio.sleep(0.3)
    await scheduler.stop()
    # and returns without `await store.close()`

asyncio.run(main())
print("returned")
"""


async def test_a_store_that_is_never_closed_does_not_keep_the_process_alive(
    tmp_path: Path,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FORGETFUL,
        cwd=tmp_path,
        env=environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)  # was: forever
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "returned"


# ----------------------------------------------------------------- 5. start-up errors
@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("config", "args", "code", "message"),
    [
        ("", ["--host", "127.0.0.2"], 2, "reachable from other machines: configure"),
        ("", ["--host", "0.0.0.0"], 2, "set [gateway] allowed_hosts"),
        (
            '[executor]\nkind = "python"\ntarget = "no_such_module:run"\n',
            [],
            2,
            "cannot import 'no_such_module'",
        ),
        ("", ["BUSY"], 1, "the address is already in use"),
        ("[store]\nurl = 'mysql://db/x'\n", [], 2, "unsupported store URL scheme 'mysql'"),
        ("[store]\nurl = '.'\n", [], 1, "is a directory, not a database file"),
    ],
)
async def test_serve_start_up_errors_exit_with_one_line_and_never_hang(
    tmp_path: Path, busy_port: int, config: str, args: list[str], code: int, message: str
) -> None:
    (tmp_path / "agent.toml").write_text(config)
    args = ["--port", str(busy_port)] if args == ["BUSY"] else [*args, "--port", "0"]
    args += ["--http-port", "0"]
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        cwd=tmp_path,
        env=environment(),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)  # was: a hang after the error
    text = err.decode()
    assert proc.returncode == code, text
    errors = [line for line in text.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("starpod-cron: error:"), text
    assert message in errors[0] and "Traceback" not in text, text
    assert time.monotonic() - started < 20


# ----------------------------------------------------- 9. Ctrl-C while a job is running
async def test_ctrl_c_says_what_it_waits_for_and_twice_stops_at_once(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(PYTHON_EXECUTOR + "[cron]\ntick_secs = 0.5\n")
    db = str(tmp_path / "starpod-cron.db")
    code, _, err = await run_cli(tmp_path, "jobs", "add", "sleepy", "sleep:60", "--in", "1s")
    assert code == 0, err
    gateway = await serve(tmp_path)
    await eventually(lambda: _started(db, "sleepy"), what="the gateway to start the run")
    gateway.proc.send_signal(signal.SIGINT)
    text = await gateway.read_until(b"press Ctrl-C again")
    assert "waiting up to 30s for 1 running job(s) (sleepy)" in text  # was: silence
    first = time.monotonic()
    gateway.proc.send_signal(signal.SIGINT)  # was: ignored
    code, text = await gateway.finish(timeout=15)
    assert code == 0 and time.monotonic() - first < 5, text
    (run,) = await _runs(db, "sleepy")
    assert run[0] == "interrupted" and "stopped before the run finished" in run[4]


async def test_ctrl_c_during_jobs_run_waits_then_interrupts(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(PYTHON_EXECUTOR)
    db = str(tmp_path / "starpod-cron.db")
    await run_cli(tmp_path, "jobs", "add", "sleepy", "sleep:60", "--every", "1h")
    proc = await asyncio.create_subprocess_exec(
        CLI,
        "jobs",
        "run",
        "sleepy",
        cwd=tmp_path,
        env=environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await eventually(lambda: _running(db, "sleepy"), what="the manual run")
    # the row says running once the claim commits; the process counts the run as its own a
    # moment later (when its executor starts): Ctrl-C in between waits for "0 run(s)"
    await asyncio.sleep(1)
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    line = await asyncio.wait_for(proc.stderr.readline(), 10)
    while b"stopping" not in line:
        line = await asyncio.wait_for(proc.stderr.readline(), 10)
    assert b"waiting up to 30s for 1 run(s) to finish (sleepy)" in line
    proc.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 1 and b"interrupted" in out  # the run did not succeed
    (run,) = await _runs(db, "sleepy")
    assert run[0] == "interrupted"


# --------------------------------------------------------- 3b. a killed `jobs run`
async def test_a_killed_jobs_run_does_not_block_the_job(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(PYTHON_EXECUTOR)
    db = str(tmp_path / "starpod-cron.db")
    await run_cli(tmp_path, "jobs", "add", "report", "sleep:60", "--every", "2s")
    proc = await asyncio.create_subprocess_exec(
        CLI, "jobs", "run", "report", cwd=tmp_path, env=environment()
    )
    ((_, trigger, started, lease, _),) = await eventually(
        lambda: _running(db, "report"), what="the manual run"
    )
    assert trigger == "manual" and lease - started <= 31_000  # was: timeout + 60 s = 2 h
    proc.kill()  # SIGKILL, or a closed SSH session
    await proc.wait()

    calls: list[JobContext] = []

    async def executor(ctx: JobContext) -> JobResult:
        calls.append(ctx)
        return JobResult("", "ok")

    async with CronStore.open(db) as store:
        scheduler = CronScheduler(store, executor, tick_secs=0.5)
        scheduler.start()
        try:  # the dead CLI is noticed at once and the schedule goes on
            await until(lambda: calls, timeout=8, what="the job's next scheduled fire")
            await until(lambda: scheduler.running_count == 0)
        finally:
            await scheduler.stop()
        (job,) = await store.list_jobs()
        runs = await store.list_runs(job.id)
    assert (runs[-1].trigger, runs[-1].status) == (RunTrigger.MANUAL, RunStatus.INTERRUPTED)
    assert runs[-1].error is not None and "no longer running" in runs[-1].error
    assert any(r.status is RunStatus.SUCCESS for r in runs)


# ------------------------------------------------ 7. an executor calling sys.exit() in serve
async def test_serve_survives_an_executor_calling_sys_exit(tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(PYTHON_EXECUTOR + "[cron]\ntick_secs = 0.5\n")
    db = str(tmp_path / "starpod-cron.db")
    for name, prompt in (("quitter", "exit:3"), ("ctrl-c", "interrupt"), ("fine", "hello")):
        await run_cli(tmp_path, "jobs", "add", name, prompt, "--every", "1s", "--retries", "0")
    gateway = await serve(tmp_path)

    async def after_the_bad_ones_fine_still_runs() -> bool:
        quit_runs = [r for r in await _runs(db, "quitter") if r[0] == "failed"]
        fine_runs = [r for r in await _runs(db, "fine") if r[0] == "success"]
        return bool(quit_runs) and any(r[2] > quit_runs[0][2] for r in fine_runs)

    await eventually(after_the_bad_ones_fine_still_runs, timeout=15, what="runs to go on")
    gateway.proc.send_signal(signal.SIGTERM)
    code, text = await gateway.finish(timeout=15)  # was: wedged, signals ignored
    assert code == 0, text
    failed = [r for r in await _runs(db, "quitter") if r[0] == "failed"]
    assert failed[0][4] == "ExecutorExited: the executor called sys.exit(3)"
    interrupted = [r for r in await _runs(db, "ctrl-c") if r[0] == "failed"]
    assert interrupted[0][4] == "ExecutorExited: the executor raised KeyboardInterrupt"


# ------------------------------------------------- 17.7 the database deleted while running
async def test_a_deleted_database_is_noticed_and_nothing_more_is_claimed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    db = tmp_path / "gone.db"
    calls: list[JobContext] = []

    async def executor(ctx: JobContext) -> JobResult:
        calls.append(ctx)
        return JobResult("", "ok")

    store = await CronStore.open(str(db))
    await store.add_job("tick", "p", Schedule.interval(every_ms=1000))
    scheduler = CronScheduler(store, executor, tick_secs=0.5)
    scheduler.start()
    try:
        await until(lambda: calls, timeout=5)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        await until(
            lambda: any("was deleted or replaced" in r.message for r in caplog.records),
            timeout=5,
            what="the store to notice",
        )
        with pytest.raises(StoreUnavailable, match="deleted or replaced"):
            await store.ping()
        count = len(calls)
        await asyncio.sleep(2.5)
        assert len(calls) <= count + 1  # at most the run claimed just before
        assert not db.exists()
    finally:
        stopping = time.monotonic()
        await scheduler.stop()
        await store.close()
    # a write that can never succeed is not retried for shutdown_timeout_secs (30 s)
    assert time.monotonic() - stopping < 5
    code, out, err = await run_cli(tmp_path, "--db", str(db), "jobs", "list")
    assert code == 0 and "no database at" in out and not db.exists()  # was: a new empty file
    code, _, err = await run_cli(tmp_path, "--db", str(db), "jobs", "show", "tick")
    assert code == 2 and "no database at" in err and not db.exists()


# -------------------------------------------------------------- 17.5 inputs at the edges
@pytest.fixture
def read_only_db(tmp_path: Path) -> Iterator[Path]:
    """A valid database on a read-only file system (root ignores file permissions)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        db = mount / "jobs.db"
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield db
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs", "add", "x", "p", "--every", "99999999999999999999s"], "invalid duration"),
        (["jobs", "add", "x", "p", "--every", "100000000d"], "the longest is 36500d"),
        (["jobs", "add", "x", "p", "--every", "500ms"], "'500ms' is too short: jobs can repeat"),
        (["jobs", "add", "x", "p", "--cron", "61 * * * *"], "the minute field '61'"),
        (["jobs", "add", "x", "p", "--at", "9999-12-31T23:59:59"], "between 1970 and 9000"),
        (["jobs", "add", "x", "p", "--every", "1h", "--tz", "Z" * 300], "time zone name is"),
        (["--tz", "Europe/" + "x" * 300, "jobs", "list"], "time zone name is"),
        (["jobs", "history", "-n", "1e23"], "expected a whole number"),
        (["jobs", "history", "-n", str(10**30)], "must be from 1 to 10000"),
        (["jobs", "next", "* * * * *", "-n", "100000000"], "must be from 1 to 1000"),
        (["jobs", "add", "0123456789abcdef0123456789abcdef", "p", "--every", "1h"], "looks like"),
    ],
)
async def test_edge_inputs_are_refused_with_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, out, err = await run_cli(tmp_path, *args)
    assert code == 2 and message in err, (out, err)
    _one_line_error(err)


@pytest.mark.parametrize("kind", ["corrupt", "text", "directory", "missing_dir", "read_only"])
async def test_unusable_database_files_are_one_line_errors(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    db = tmp_path / "x.db"
    if kind == "corrupt":
        db.write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 20)
    elif kind == "text":
        db.write_text("these are my notes, not a database\n")
    elif kind == "directory":
        db.mkdir()
    elif kind == "missing_dir":
        db = tmp_path / "no" / "such" / "dir" / "x.db"
    else:
        db = request.getfixturevalue("read_only_db")
    before = db.read_bytes() if db.is_file() else None
    for args in (["jobs", "list"], ["jobs", "add", "j", "p", "--every", "1h"]):
        code, out, err = await run_cli(tmp_path, "--db", str(db), *args)
        if kind == "missing_dir" and args == ["jobs", "list"]:
            assert code == 0 and "no database at" in out  # nothing to list, nothing created
            continue
        assert code == 2, (kind, args, out, err)
        _one_line_error(err)
    if before is not None:
        assert db.read_bytes() == before  # nothing written


async def test_a_far_future_one_shot_can_be_shown(tmp_path: Path) -> None:
    add = ["jobs", "add", "far", "p", "--at", "8999-12-31T23:00:00", "--tz", "Pacific/Kiritimati"]
    code, _, err = await run_cli(tmp_path, *add)
    assert code == 0, err
    for args in (["jobs", "show", "far"], ["--json", "jobs", "show", "far"], ["jobs", "list"]):
        code, out, err = await run_cli(tmp_path, *args)
        assert code == 0 and "8999-12-31" in out, (args, err)
