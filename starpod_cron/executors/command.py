"""The ``command`` executor: run a program with the prompt on stdin; its stdout is the result.

The program runs in its own process group, so on timeout or stop the whole group (children and
grandchildren included) is terminated, then killed. Output is read as it comes and capped, so a
chatty program can never deadlock the pipe or exhaust memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Sequence

from ..errors import TransientJobError
from ..models import JobContext, JobResult
from ..store.base import CronStore
from .base import session_for

log = logging.getLogger("starpod_cron.executors")

STDERR_TAIL_BYTES = 4096
_CHUNK = 65536


class CommandExecutor:
    def __init__(
        self,
        store: CronStore,
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
        pipes = {
            "stdin": asyncio.subprocess.PIPE,
            "stdout": asyncio.subprocess.PIPE,
            "stderr": asyncio.subprocess.PIPE,
            "env": env,
            "start_new_session": True,  # own process group: killed as a whole
        }
        if self._shell:
            proc = await asyncio.create_subprocess_shell(" ".join(self._argv), **pipes)  # type: ignore[arg-type]
        else:
            try:
                proc = await asyncio.create_subprocess_exec(*self._argv, **pipes)  # type: ignore[arg-type]
            except OSError as exc:
                raise TransientJobError(f"cannot start {self._argv[0]!r}: {exc}") from exc
        try:
            stdout, truncated, stderr = await self._communicate(proc, ctx.prompt.encode())
        except BaseException:
            await self._kill_group(proc, graceful=True)
            raise
        finally:
            self._reap_group(proc)
        text = stdout.decode("utf-8", errors="replace")
        if truncated:
            text += f"\n[output truncated at {self._limit} bytes]"
        if proc.returncode != 0:
            tail = stderr.decode("utf-8", errors="replace").strip() or "(no stderr)"
            raise TransientJobError(f"{self._argv[0]} exited with status {proc.returncode}: {tail}")
        return JobResult(session_id=session_id, summary=text)

    async def _communicate(
        self, proc: asyncio.subprocess.Process, data: bytes
    ) -> tuple[bytes, bool, bytes]:
        assert proc.stdin and proc.stdout and proc.stderr
        out = bytearray()
        err = bytearray()
        truncated = False

        async def feed() -> None:
            assert proc.stdin
            try:
                proc.stdin.write(data)
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                log.debug("command closed stdin before reading the whole prompt")
            finally:
                proc.stdin.close()

        async def read_out() -> None:
            nonlocal truncated
            assert proc.stdout
            while chunk := await proc.stdout.read(_CHUNK):
                room = self._limit - len(out)
                if room > 0:
                    out.extend(chunk[:room])
                if len(chunk) > room:
                    truncated = True  # keep reading (and dropping) so the child never blocks

        async def read_err() -> None:
            assert proc.stderr
            while chunk := await proc.stderr.read(_CHUNK):
                err.extend(chunk)
                del err[:-STDERR_TAIL_BYTES]

        tasks = [asyncio.ensure_future(f()) for f in (feed, read_out, read_err)]
        try:
            exited_at: float | None = None
            loop = asyncio.get_running_loop()
            while True:
                _, pending = await asyncio.wait(tasks[1:], timeout=0.1)
                if not pending:
                    break
                # proc.returncode is set as soon as the program exits, even while something it
                # left behind still holds the pipes open (proc.wait() would wait for that).
                if proc.returncode is not None:
                    exited_at = exited_at or loop.time()
                    if loop.time() - exited_at > 0.5:
                        self._signal_group(proc, signal.SIGKILL)  # no orphans, no hang
            await asyncio.gather(*tasks)
            await proc.wait()
        finally:
            for task in tasks:
                task.cancel()
        return bytes(out), truncated, bytes(err)

    async def _kill_group(self, proc: asyncio.subprocess.Process, *, graceful: bool) -> None:
        if graceful:
            self._signal_group(proc, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proc.wait()), self._grace)
        self._signal_group(proc, signal.SIGKILL)
        await asyncio.shield(proc.wait())

    def _reap_group(self, proc: asyncio.subprocess.Process) -> None:
        """No orphans: whatever the program left running in its group is killed."""
        self._signal_group(proc, signal.SIGKILL)

    @staticmethod
    def _signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return  # the group is already gone
        except PermissionError:
            log.warning("cannot signal process group %d", proc.pid)

    async def aclose(self) -> None:
        return None
