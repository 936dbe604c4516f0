"""The command executor with real processes: output, exit codes, process-group kills, big output."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from starpod_cron import (
    CronScheduler,
    CronStore,
    JobContext,
    ManualClock,
    RunStatus,
    Schedule,
    SessionMode,
    TransientJobError,
)
from starpod_cron.executors import CommandExecutor
from starpod_cron.executors.cgroup import RunCgroups
from tests.conftest import START, until


def ctx(prompt: str = "hello world", mode: SessionMode = SessionMode.ISOLATED) -> JobContext:
    return JobContext(
        prompt=prompt,
        session_mode=mode,
        job_name="nightly",
        job_id="job-9",
        user_id=None,
        run_id="run-9",
        attempt=2,
        scheduled_for=START,
    )


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has already exited


async def test_prompt_on_stdin_stdout_is_the_result_env_is_set(store: CronStore) -> None:
    ex = CommandExecutor(
        store,
        py("""
        import os, sys
        prompt = sys.stdin.read()
        print(prompt.upper())
        print(os.environ["STARPOD_JOB_NAME"], os.environ["STARPOD_JOB_ID"],
              os.environ["STARPOD_RUN_ID"], os.environ["STARPOD_ATTEMPT"])
        print(os.environ["STARPOD_SESSION_ID"])
    """),
    )
    result = await ex(ctx())
    upper, ids, session = result.summary.strip().split("\n")
    assert upper == "HELLO WORLD" and ids == "nightly job-9 run-9 2"
    assert session == result.session_id and session.startswith("isolated-")
    main = await ex(ctx(mode=SessionMode.MAIN))
    assert main.session_id == await store.main_session_id("agent")


async def test_non_zero_exit_fails_with_the_stderr_tail(store: CronStore) -> None:
    ex = CommandExecutor(
        store,
        py("""
        import sys
        sys.stderr.write("noise " * 5000 + "\\nfatal: the model is unavailable\\n")
        sys.exit(3)
    """),
    )
    with pytest.raises(TransientJobError) as err:
        await ex(ctx())
    message = str(err.value)
    assert "exited with status 3" in message and message.endswith("the model is unavailable")
    assert len(message) < 5000


async def test_missing_program_is_a_failure(store: CronStore) -> None:
    ex = CommandExecutor(store, ["/nonexistent/llm"])
    with pytest.raises(TransientJobError, match="cannot start"):
        await ex(ctx())


async def test_shell_mode(store: CronStore) -> None:
    ex = CommandExecutor(store, ["tr a-z A-Z | sed 's/WORLD/THERE/'"], shell=True)
    assert (await ex(ctx())).summary == "HELLO THERE"


async def test_ten_mib_of_output_is_capped_without_deadlock(store: CronStore) -> None:
    ex = CommandExecutor(
        store,
        py("""
        import sys
        for _ in range(10):
            sys.stdout.write("x" * 1024 * 1024)
        sys.stderr.write("e" * 1024 * 1024)
    """),
        output_limit_bytes=1024 * 1024,
    )
    started = time.monotonic()
    result = await asyncio.wait_for(ex(ctx("p" * 60_000)), 20)
    assert result.summary.startswith("x" * 1024 * 1024)
    assert result.summary.endswith("[output truncated at 1048576 bytes]")
    assert len(result.summary) < 1024 * 1024 + 100
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("cgroup", [True, False], ids=["cgroup", "no-cgroup"])
async def test_timeout_kills_a_term_ignoring_child_and_its_grandchild(
    store: CronStore, clock: ManualClock, tmp_path: Path, cgroup: bool
) -> None:
    pids = tmp_path / "pids"
    ex = CommandExecutor(
        store,
        py(f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        import os
        with open({str(pids)!r} + ".tmp", "w") as f:
            f.write(f"{{os.getpid()}} {{grandchild.pid}}")
        os.replace({str(pids)!r} + ".tmp", {str(pids)!r})
        time.sleep(600)
    """),
        kill_grace_secs=0.2,
        cgroup=cgroup,
    )
    scheduler = CronScheduler(store, ex)
    job_id = await store.add_job_full(
        "stuck",
        "p",
        Schedule.one_shot(START + timedelta(seconds=1)),
        timeout_secs=30,
        max_retries=0,
    )
    scheduler.start()
    try:
        clock.advance(1)
        await until(pids.exists, timeout=10, what="the child to start its grandchild")
        child, grandchild = map(int, pids.read_text().split())
        assert alive(child) and alive(grandchild)
        clock.advance(30)
        await until(lambda: scheduler.running_count == 0, timeout=10)
        (run,) = await store.list_runs(job_id)
        assert run.status is RunStatus.TIMEOUT
        await until(
            lambda: not alive(child) and not alive(grandchild),
            timeout=5,
            what="the whole process group to be killed",
        )
    finally:
        await scheduler.stop()


async def test_a_background_grandchild_does_not_hold_the_run_open(store: CronStore) -> None:
    ex = CommandExecutor(store, ["sleep 600 & echo started"], shell=True)
    started = time.monotonic()
    result = await asyncio.wait_for(ex(ctx()), 10)
    assert result.summary.strip() == "started" and time.monotonic() - started < 5


@pytest.mark.parametrize("cgroup", [True, False], ids=["cgroup", "no-cgroup"])
async def test_stop_kills_the_process_group(store: CronStore, tmp_path: Path, cgroup: bool) -> None:
    marker = tmp_path / "pid"
    ex = CommandExecutor(
        store,
        [f"echo $$ > {marker}.tmp && mv {marker}.tmp {marker}; sleep 600"],
        shell=True,
        kill_grace_secs=0.1,
        cgroup=cgroup,
    )
    task = asyncio.create_task(ex(ctx()))
    await until(marker.exists, timeout=10)
    pid = int(marker.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: not alive(pid), timeout=5)
    assert not os.path.exists(f"/proc/{pid}") or not alive(pid)


async def test_without_cgroups_a_grandchild_that_left_the_group_survives_but_cannot_hold_the_run(
    store: CronStore, tmp_path: Path
) -> None:
    """Without cgroups a daemon (setsid) keeps stdout open and is not killed: documented. The
    run is recorded half a second after the program itself exits, not when the daemon exits."""
    marker = tmp_path / "daemon"
    ex = CommandExecutor(
        store,
        [f"setsid sh -c 'echo $$ > {marker}; sleep 30' & echo started"],
        shell=True,
        cgroup=False,
    )
    started = time.monotonic()
    result = await asyncio.wait_for(ex(ctx()), 10)  # was: 30 s, until the daemon exited
    assert result.summary.strip() == "started"
    assert time.monotonic() - started < 3
    await until(marker.exists, timeout=5)
    daemon = int(marker.read_text())
    try:
        assert alive(daemon)  # outside the group: it keeps running, as documented
    finally:
        os.kill(daemon, 9)


needs_cgroup = pytest.mark.skipif(
    RunCgroups.open() is None, reason="needs a writable cgroup v2 (root on Linux)"
)


def run_cgroups(run_id: str) -> list[Path]:
    """The cgroups left for ``run_id`` (each run's is removed at its end)."""
    groups = RunCgroups.open()
    assert groups is not None
    return list(groups.parent.glob(f"run-{run_id}-*"))


@needs_cgroup
async def test_a_grandchild_that_left_the_session_dies_when_the_run_ends(
    store: CronStore, tmp_path: Path
) -> None:
    marker = tmp_path / "daemon"
    ex = CommandExecutor(
        store,
        [
            # the daemon writes its pid and session id (field 6 of /proc/PID/stat)
            f'setsid sh -c \'echo $$ $(cut -d" " -f6 /proc/$$/stat) > {marker}.tmp && '
            f"mv {marker}.tmp {marker}; sleep 30' & "
            f"while [ ! -f {marker} ]; do sleep 0.01; done; echo $$"
        ],
        shell=True,
    )
    run = replace(ctx(), run_id=f"run-{uuid.uuid4().hex}")
    program = int((await asyncio.wait_for(ex(run), 10)).summary)
    daemon, session = map(int, marker.read_text().split())
    assert session == daemon != program  # it left the program's session and process group
    assert not alive(daemon), "the setsid grandchild outlived its run"
    assert run_cgroups(run.run_id) == []


@needs_cgroup
async def test_timeout_kills_a_grandchild_that_left_the_session(
    store: CronStore, clock: ManualClock, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    ex = CommandExecutor(
        store,
        py(f"""
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:  # the grandchild: its own session, deaf to SIGTERM
            os.setsid()
            with open({str(pids)!r} + ".tmp", "w") as f:
                f.write(f"{{os.getppid()}} {{os.getpid()}}")
            os.replace({str(pids)!r} + ".tmp", {str(pids)!r})
            time.sleep(600)
        time.sleep(600)
    """),
        kill_grace_secs=0.2,
    )
    scheduler = CronScheduler(store, ex)
    job_id = await store.add_job_full(
        "daemonizing",
        "p",
        Schedule.one_shot(START + timedelta(seconds=1)),
        timeout_secs=30,
        max_retries=0,
    )
    scheduler.start()
    try:
        clock.advance(1)
        await until(pids.exists, timeout=10, what="the child to fork its grandchild")
        child, grandchild = map(int, pids.read_text().split())
        assert alive(child) and alive(grandchild)
        assert os.getsid(grandchild) == grandchild != os.getsid(child)
        clock.advance(30)
        await until(lambda: scheduler.running_count == 0, timeout=10)
        (run,) = await store.list_runs(job_id)
        assert run.status is RunStatus.TIMEOUT
        assert not alive(child) and not alive(grandchild)
        assert run_cgroups(run.id) == []
    finally:
        await scheduler.stop()


async def test_no_cgroup_v2_hierarchy_means_no_run_cgroups(tmp_path: Path) -> None:
    assert RunCgroups.open((tmp_path,)) is None  # a directory that is not cgroup v2
