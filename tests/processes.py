"""Helpers for tests that run `starpod-cron` as users do: real processes, real signals."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

CLI = str(Path(sys.executable).with_name("starpod-cron"))
ROOT = Path(__file__).resolve().parent.parent


def _ports_of_this_worker() -> Iterator[int]:
    """Under pytest-xdist, this worker's own block of ports below the kernel's ephemeral range
    (32768 and up), taken in turn: two workers never pick the same port, and no client socket
    is ever given one. Which blocks a run uses depends on its run id, so two runs at once
    seldom share one either."""
    worker = os.environ["PYTEST_XDIST_WORKER"]  # "gw3"
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")
    block = (zlib.crc32(run.encode()) + int(worker.removeprefix("gw"))) % PORT_BLOCKS
    start = PORT_BASE + block * PORT_BLOCK
    return itertools.cycle(range(start, start + PORT_BLOCK))


PORT_BASE, PORT_BLOCK, PORT_BLOCKS = 16000, 400, 40
_ports: Iterator[int] | None = None


def free_port() -> int:
    """A port on 127.0.0.1 that nobody listens on, for a server the test starts. Asking the
    kernel for port 0 and closing the socket is not enough in a parallel run: the kernel may
    hand the same port to another worker before this test's server binds it."""
    global _ports
    if "PYTEST_XDIST_WORKER" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    if _ports is None:
        _ports = _ports_of_this_worker()
    for _ in range(PORT_BLOCK):
        port = next(_ports)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # someone else's (another run, or a service of the machine)
            return port
    raise RuntimeError(f"no free port in this worker's block of {PORT_BLOCK}")


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment, with this checkout importable (for tests.* executor targets)."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


@dataclass
class McpHttp:
    proc: asyncio.subprocess.Process
    url: str
    """The ``/mcp`` endpoint."""
    seen: bytes
    """What it wrote to stderr before it listened."""


@contextlib.asynccontextmanager
async def mcp_http(cwd: Path, db: str, host: str = "127.0.0.1") -> AsyncIterator[McpHttp]:
    """``starpod-cron mcp --http`` on a free port (with ``cwd``'s agent.toml), yielded once it
    listens; at the end SIGTERM, which it must answer by exiting 0."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *(CLI, "--db", db, "mcp", "--http", f"{host}:{port}"),
        cwd=cwd,
        env=environment(),
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        seen = b""
        while b"/mcp" not in seen:  # log lines (a migration, say) may come first
            line = await asyncio.wait_for(proc.stderr.readline(), 20)
            assert line, seen
            seen += line
        yield McpHttp(proc, f"http://{host}:{port}/mcp", seen)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


@dataclass
class Serve:
    proc: asyncio.subprocess.Process
    port: int
    seen: bytearray = field(default_factory=bytearray)
    log: Path | None = None
    """Where stderr goes, if to a file (nobody has to keep reading it then)."""

    async def read_until(self, marker: bytes, timeout: float = 20) -> str:
        """Read stderr until ``marker`` shows up (or fail); returns all read so far."""
        if self.log is not None:
            deadline = asyncio.get_running_loop().time() + timeout
            while marker not in (text := self.log.read_bytes()):
                if self.proc.returncode is not None:
                    raise AssertionError(f"gateway exited before {marker!r}: {text.decode()}")
                assert asyncio.get_running_loop().time() < deadline, text.decode()
                await asyncio.sleep(0.05)
            return text.decode()
        assert self.proc.stderr is not None
        while marker not in self.seen:
            line = await asyncio.wait_for(self.proc.stderr.readline(), timeout)
            if not line:
                raise AssertionError(f"gateway exited before {marker!r}: {self.seen.decode()}")
            self.seen += line
        return self.seen.decode()

    async def finish(self, timeout: float = 30) -> tuple[int, str]:
        """Wait for exit; return the code and everything it wrote on stderr."""
        assert self.proc.stderr is not None
        rest = await asyncio.wait_for(self.proc.stderr.read(), timeout)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        self.seen += rest
        return code, self.seen.decode()


async def serve(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    log: Path | None = None,
    ready: bytes = b"Ctrl-C",
) -> Serve:
    """``starpod-cron [args] serve --port P`` in ``cwd``, once it says it is ready; its stderr
    is a pipe to read, or the file ``log``."""
    port = free_port() if port is None else port
    with open(log or os.devnull, "wb") as out:
        proc = await asyncio.create_subprocess_exec(
            CLI,
            *args,
            "serve",
            "--port",
            str(port),
            "--http-port",
            "0",
            cwd=cwd,
            env=environment(env),
            stderr=asyncio.subprocess.PIPE if log is None else out,
        )
    running = Serve(proc, port, log=log)
    await running.read_until(ready)
    return running


async def run_cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        CLI,
        *args,
        cwd=cwd,
        env=environment(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
