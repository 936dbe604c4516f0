"""The ``command`` executor: run a program with the prompt on stdin; its stdout is the result.

What is killed: each run gets its own cgroup v2 (:mod:`.cgroup`) when the machine has a
writable one (as root: ``/sys/fs/cgroup``, or ``/sys/fs/cgroup/unified`` on hybrid hosts), and
the program runs in its own process group. On timeout or stop the group gets SIGTERM, then
SIGKILL after ``kill_grace_secs``; at the run's end, however it ended, the whole cgroup is
killed (``cgroup.kill``), so nothing the program started outlives the run, not even a process
that left the group (``setsid``, a daemon). The program is placed in its cgroup before it runs:
it starts as a tiny ``sh`` gate that waits for one line on stdin, written only once its pid is
in the cgroup, then replaces itself with the program (``exec``: same pid, same stdin, the prompt).

Without a writable cgroup v2 (or with ``cgroup=False``) the run's process group is killed as
above, and a process that leaves it (``setsid``, a daemon) keeps running. Either way, once the
program itself has exited, its output is waited for half a second at most, so such a process
cannot hold the run open.

Output is collected as it arrives (``asyncio.SubprocessProtocol``) and capped, so a chatty
program can never block on a full pipe or exhaust memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Sequence

from ..errors import TransientJobError
from ..logs import run_log
from ..models import JobContext, JobResult
from ..store.contract import SessionStore
from ..tasks import TaskSet
from .base import session_for
from .cgroup import RunCgroup, RunCgroups
from .memory import VARIABLES, previous_result_env

log = logging.getLogger("starpod_cron.executors")

STDERR_TAIL_BYTES = 4096
PIPE_GRACE_SECS = 0.5


def _awaited_here(task: asyncio.Task[object]) -> None:
    """A program's start is awaited by its run, which reads (and raises) its outcome."""


GATE = ["/bin/sh", "-c", 'read -r _ || exit 125; exec "$@"', "starpod-cron-gate"]
"""Waits for one line on stdin (sent once the pid is in its cgroup), then becomes the program."""
NO_CGROUP_NOTE = (
    "command executor: no writable cgroup v2 (needs root, or a delegated subtree): a process "
    "that leaves a run's process group (setsid, a daemon) can outlive the run"
)


class _Collector(asyncio.SubprocessProtocol):
    """Gathers stdout (up to ``limit`` bytes) and the tail of stderr; notes exit and EOF."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.out = bytearray()
        self.err = bytearray()
        self.truncated = False
        self.exited = asyncio.Event()
        self.eof = {1: asyncio.Event(), 2: asyncio.Event()}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            room = self.limit - len(self.out)
            if room > 0:
                self.out.extend(data[:room])
            if len(data) > room:
                self.truncated = True  # keep reading (and dropping) so the child never blocks
        else:
            self.err.extend(data)
            del self.err[:-STDERR_TAIL_BYTES]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in self.eof:
            self.eof[fd].set()

    def process_exited(self) -> None:
        self.exited.set()


class CommandExecutor:
    def __init__(
        self,
        store: SessionStore,
        argv: Sequence[str],
        *,
        shell: bool = False,
        output_limit_bytes: int = 1024 * 1024,
        kill_grace_secs: float = 2.0,
        cgroup: bool = True,
    ) -> None:
        """``cgroup=False``: never use cgroups, kill the process group only."""
        if not argv:
            raise ValueError("argv must name a program")
        self._cgroups = RunCgroups.open() if cgroup else None
        self._store = store
        self._argv = list(argv)
        self._shell = shell
        self._limit = output_limit_bytes
        self._starts = TaskSet("starpod-cron:command-start")  # each awaited by its run
        self._grace = kill_grace_secs
        self.description = f"command ({' '.join(self._argv)}{', via shell' if shell else ''})"
        self.notes: tuple[str, ...] = () if self._cgroups or not cgroup else (NO_CGROUP_NOTE,)

    async def __call__(self, ctx: JobContext) -> JobResult:
        session_id = await session_for(ctx, self._store)
        env = {
            **{k: v for k, v in os.environ.items() if k not in VARIABLES},
            "STARPOD_JOB_NAME": ctx.job_name,
            "STARPOD_JOB_ID": ctx.job_id,
            "STARPOD_RUN_ID": ctx.run_id,
            "STARPOD_SESSION_ID": session_id,
            "STARPOD_ATTEMPT": str(ctx.attempt),
        }
        with previous_result_env(ctx) as previous:
            return await self._run(ctx, session_id, {**env, **previous})

    async def _run(self, ctx: JobContext, session_id: str, env: dict[str, str]) -> JobResult:
        loop = asyncio.get_running_loop()
        pipes = asyncio.subprocess.PIPE
        program = ["/bin/sh", "-c", " ".join(self._argv)] if self._shell else self._argv
        group = self._new_cgroup(ctx)
        collector = _Collector(self._limit)
        cancelled = False
        try:
            if group is not None and shutil.which(program[0]) is None:
                raise FileNotFoundError(2, "No such file or directory", program[0])
            # awaited right here, shielded: cancelled inside subprocess_exec, asyncio kills the
            # program alone and then waits for its pipes, which what it started may hold forever
            start = self._starts.spawn(
                loop.subprocess_exec(
                    lambda: collector,
                    *(GATE if group is not None else []),
                    *program,
                    stdin=pipes,
                    stdout=pipes,
                    stderr=pipes,
                    env=env,
                    start_new_session=True,  # own process group: killed as a whole
                ),
                ctx.run_id,
                on_done=_awaited_here,
            )
            try:
                transport, _ = await asyncio.shield(start)
            except asyncio.CancelledError:
                cancelled = True  # let it finish starting, then kill what it started below
                transport, _ = await start
        except BaseException as exc:  # not started: nothing to kill
            if group is not None:
                group.remove()
            if isinstance(exc, OSError) and not cancelled:
                raise TransientJobError(f"cannot start {self._argv[0]!r}: {exc}") from exc
            if cancelled:
                raise asyncio.CancelledError from exc
            raise
        pid = transport.get_pid()
        try:
            if cancelled:
                raise asyncio.CancelledError
            gate = b""
            if group is not None:
                group = self._enter(group, pid, ctx)
                gate = b"\n"  # released only now: the program starts inside its cgroup
            stdin = transport.get_pipe_transport(0)
            if isinstance(stdin, asyncio.WriteTransport):
                stdin.write(gate + ctx.prompt.encode())  # buffered: never blocks on a full pipe
                stdin.close()
            await collector.exited.wait()
            await self._drain(collector, ctx)
        except BaseException:
            await self._kill_group(pid, collector)
            raise
        finally:
            _signal_group(pid, signal.SIGKILL)  # no orphans left in the group
            if group is not None:
                await group.kill()  # nor anywhere else (setsid)
            transport.close()
        text = bytes(collector.out).decode("utf-8", errors="replace")
        if collector.truncated:
            text += f"\n[output truncated at {self._limit} bytes]"
        code = transport.get_returncode()
        if code != 0:
            tail = bytes(collector.err).decode("utf-8", errors="replace").strip() or "(no stderr)"
            raise TransientJobError(f"{self._argv[0]} exited with status {code}: {tail}")
        return JobResult(session_id=session_id, summary=text)

    def _new_cgroup(self, ctx: JobContext) -> RunCgroup | None:
        if self._cgroups is None:
            return None
        try:
            return self._cgroups.create(ctx.run_id)
        except OSError as exc:
            run_log(log, ctx.job_name, ctx.run_id).warning(
                "cannot make a cgroup for the run (%s); only its process group will be killed",
                exc,
                action="execute",
            )
            return None

    @staticmethod
    def _enter(group: RunCgroup, pid: int, ctx: JobContext) -> RunCgroup | None:
        """Move the gated program into its cgroup; None (and a warning) if the kernel refuses."""
        try:
            group.add(pid)
        except OSError as exc:
            run_log(log, ctx.job_name, ctx.run_id).warning(
                "cannot move the program into its cgroup (%s); only its process group will "
                "be killed",
                exc,
                action="execute",
            )
            group.remove()
            return None
        return group

    @staticmethod
    async def _drain(collector: _Collector, ctx: JobContext) -> None:
        """The program exited; give its pipes a moment to deliver what is buffered. A pipe
        still open after that is held by a process that left the group: stop waiting."""
        try:
            async with asyncio.timeout(PIPE_GRACE_SECS):
                for eof in collector.eof.values():
                    await eof.wait()
        except TimeoutError:
            run_log(log, ctx.job_name, ctx.run_id).warning(
                "the program exited but something it started still holds its output open (it "
                "left the process group); not waiting for it",
                action="execute",
            )

    async def _kill_group(self, pid: int, collector: _Collector) -> None:
        """Timeout or stop: SIGTERM the group, SIGKILL it after the grace period."""
        _signal_group(pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._grace):
                await asyncio.shield(collector.exited.wait())
        _signal_group(pid, signal.SIGKILL)

    async def aclose(self) -> None:
        return None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return  # the group is already gone
    except PermissionError:
        log.warning("cannot signal process group %d", pid)
