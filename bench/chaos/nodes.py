"""One ``starpod-cron serve`` node in its own network namespace: its directory (agent.toml,
log, the executor's call log, the libfaketime offset file), start / SIGKILL / SIGSTOP /
SIGCONT / SIGTERM, and its wall clock moved through libfaketime."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).with_name("starpod-cron"))
TG_TOKEN = "123456:TEST-TOKEN-never-logged"
USERS = ("u0", "u1", "u2")


def faketime_library() -> str | None:
    """The libfaketime shared object (the ``libfaketime`` wheel, else Debian's), or None."""
    try:
        import libfaketime  # type: ignore[import-untyped]

        found = Path(libfaketime.__file__).parent / "vendor" / "libfaketime"
        for so in sorted(found.rglob("libfaketime.so.1")):
            return str(so)
    except ImportError:
        pass
    for path in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",):
        if Path(path).exists():
            return path
    return None


class NodeExited(RuntimeError):
    pass


@dataclass
class Node:
    index: int
    ns: str
    address: str
    dir: Path
    faketime: str | None
    port: int = 8700
    http_port: int = 8701
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    pids: list[int] = field(default_factory=list)
    skew_secs: float = 0.0

    @property
    def log(self) -> Path:
        return self.dir / "node.log"

    @property
    def calls(self) -> Path:
        return self.dir / "calls.jsonl"

    @property
    def clock_file(self) -> Path:
        return self.dir / "faketime"

    def write_config(self, config: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "agent.toml").write_text(config)
        self.set_skew(0)

    def set_skew(self, secs: float) -> None:
        """Move this node's wall clock (libfaketime rereads the file at every call)."""
        self.skew_secs = secs
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(f"{secs:+.0f}\n")
        tmp.replace(self.clock_file)

    def env(self, hook_secret: str) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "CHAOS_TG_TOKEN": TG_TOKEN,
            "CHAOS_HOOK_SECRET": hook_secret,
            "CHAOS_CALLS": str(self.calls),
            "CHAOS_NODE": str(self.index),
        }
        if self.faketime:
            env |= {
                "LD_PRELOAD": self.faketime,
                "FAKETIME_TIMESTAMP_FILE": str(self.clock_file),
                "FAKETIME_NO_CACHE": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            }
        return env

    async def start(self, hook_secret: str, wait_secs: float = 120) -> None:
        """Start it and wait until it serves; a start that fails (the database out of reach:
        ``serve`` exits 1) is tried again a second later, as ``Restart=always`` would."""
        deadline = asyncio.get_running_loop().time() + wait_secs
        while True:
            try:
                return await self._start_once(hook_secret, deadline)
            except NodeExited:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(1)

    async def _start_once(self, hook_secret: str, deadline: float) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                "ip",
                "netns",
                "exec",
                self.ns,
                CLI,
                "serve",
                "--host",
                self.address,
                "--port",
                str(self.port),
                "--http-port",
                str(self.http_port),
                cwd=self.dir,
                env=self.env(hook_secret),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        self.starts += 1
        self.pids.append(self.proc.pid)
        while b"Ctrl-C" not in self.log.read_bytes()[offset:]:
            if self.proc.returncode is not None:
                raise NodeExited(
                    f"node{self.index} exited at start: " + self.log.read_text()[-3000:]
                )
            if asyncio.get_running_loop().time() > deadline:
                await self.kill()  # not left running half-started
                raise RuntimeError(
                    f"node{self.index} did not start: " + self.log.read_text()[-3000:]
                )
            await asyncio.sleep(0.1)

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)

    async def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            await self.proc.wait()

    async def stop(self, wait_secs: float = 40) -> int | None:
        """SIGTERM (a frozen node is woken first); its exit code."""
        if self.proc is None:
            return None
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), wait_secs)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.proc.wait()
            return None
