"""The ``command`` executor: run a program with the prompt on stdin; its stdout is the result.

What is killed: the program runs in its own process group. On timeout or stop the whole group
(children and grandchildren that stay in it) gets SIGTERM, then SIGKILL after
``kill_grace_secs``; when the program exits on its own, whatever it left running in its group
is killed. What is not: a process that leaves the group (``setsid``, a daemon) keeps running;
once the program itself has exited, its output is no longer waited for (after half a second)
and the run is recorded.

Output is collected as it arrives (``asyncio.SubprocessProtocol``) and capped, so a chatty
program can never block on a full pipe or exhaust memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Sequence

from ..errors import TransientJobError
from ..logs import run_log
from ..models import JobContext, JobResult
from ..store.base import SessionStore
from .base import session_for

log = logging.getLogger("starpod_cron.executors")

STDERR_TAIL_BYTES = 4096
PIPE_GRACE_SECS = 0.5


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
    ) -> None:
        if not argv:
            raise ValueError("argv must name a program")
        self._store = store
        self._argv = list(argv)
        self._shell = shell
        self._limit = output_limit_bytes
        self._grace = kill_grace_secs
        self.description = f"command ({' '.join(self._argv)}{', via shell' if shell else ''})"
        self.notes: tuple[str, ...] = ()

    async def __call__(self, ctx: JobContext) -> JobResult:
        session_id = await session_for(ctx, self._store)
        env = {
            **os.environ,
            "STARPOD_JOB_NAME": ctx.job_name,
            "STARPOD_JOB_ID": ctx.job_id,
            "STARPOD_RUN_ID": ctx.run_id,
            "STARPOD_SESSION_ID": session_id,
            "STARPOD_ATTEMPT": str(ctx.attempt),
        }
        loop = asyncio.get_running_loop()
        pipes = asyncio.subprocess.PIPE
        options = {
            "stdin": pipes,
            "stdout": pipes,
            "stderr": pipes,
            "env": env,
            "start_new_session": True,  # own process group: killed as a whole
        }
        collector = _Collector(self._limit)
        try:
            if self._shell:
                transport, _ = await loop.subprocess_shell(
                    lambda: collector,
                    " ".join(self._argv),
                    **options,  # type: ignore[arg-type]
                )
            else:
                transport, _ = await loop.subprocess_exec(
                    lambda: collector,
                    *self._argv,
                    **options,  # type: ignore[arg-type]
                )
        except OSError as exc:
            raise TransientJobError(f"cannot start {self._argv[0]!r}: {exc}") from exc
        pid = transport.get_pid()
        try:
            stdin = transport.get_pipe_transport(0)
            if isinstance(stdin, asyncio.WriteTransport):
                stdin.write(ctx.prompt.encode())  # buffered: never blocks on a full pipe
                stdin.close()
            await collector.exited.wait()
            await self._drain(collector, ctx)
        except BaseException:
            await self._kill_group(pid, collector)
            raise
        finally:
            _signal_group(pid, signal.SIGKILL)  # no orphans left in the group
            transport.close()
        text = bytes(collector.out).decode("utf-8", errors="replace")
        if collector.truncated:
            text += f"\n[output truncated at {self._limit} bytes]"
        code = transport.get_returncode()
        if code != 0:
            tail = bytes(collector.err).decode("utf-8", errors="replace").strip() or "(no stderr)"
            raise TransientJobError(f"{self._argv[0]} exited with status {code}: {tail}")
        return JobResult(session_id=session_id, summary=text)

    @staticmethod
    async def _drain(collector: _Collector, ctx: JobContext) -> None:
        """The program exited; give its pipes a moment to deliver what is buffered. A pipe
        still open after that is held by a process that left the group: stop waiting."""
        waits = [asyncio.ensure_future(e.wait()) for e in collector.eof.values()]
        _, pending = await asyncio.wait(waits, timeout=PIPE_GRACE_SECS)
        for waiter in pending:
            waiter.cancel()
        if pending:
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
