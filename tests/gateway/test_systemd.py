"""systemd readiness (Type=notify) of a real `serve`: a unix datagram socket as NOTIFY_SOCKET
sees READY=1 once the port answers, WATCHDOG=1 with WATCHDOG_USEC, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path

import pytest

from starpod_cron.sdnotify import Notifier
from tests.processes import CLI, environment, free_port

pytestmark = pytest.mark.slow


def _listener(tmp_path: Path) -> tuple[socket.socket, str]:
    """An abstract datagram socket (no path length limit), and its NOTIFY_SOCKET value."""
    name = f"starpod-test-{os.getpid()}-{abs(hash(tmp_path))}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    return sock, "@" + name


async def _next(sock: socket.socket, timeout: float = 30) -> str:
    loop = asyncio.get_running_loop()
    return (await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout)).decode()


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_ready_after_the_port_answers_watchdog_and_stopping(tmp_path: Path) -> None:
    sock, address = _listener(tmp_path)
    port = free_port()
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "400000"}
    proc = await asyncio.create_subprocess_exec(
        *(CLI, "--db", str(tmp_path / "s.db"), "serve", "--port", str(port), "--http-port", "0"),
        cwd=tmp_path,
        env=environment(env),
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        seen: list[str] = []
        while "READY=1" not in seen:
            message = await _next(sock)
            if message == "READY=1":
                assert _answers(port), "READY=1 before the WebSocket port answers"
            seen.append(message)
        watchdogs = 0
        while watchdogs < 3:  # every 0.2 s (half of WATCHDOG_USEC)
            message = await _next(sock, 10)
            assert message == "WATCHDOG=1", message
            watchdogs += 1
        proc.send_signal(signal.SIGTERM)
        while (message := await _next(sock, 10)) == "WATCHDOG=1":
            pass
        assert message == "STOPPING=1"
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        sock.close()


def test_without_notify_socket_nothing_is_sent_and_a_dead_socket_only_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)  # whatever level an earlier test left the root at
    assert not Notifier({}).enabled
    Notifier({}).send("READY=1")  # nothing to send to: no error
    assert Notifier({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000"}).watchdog_secs == 1
    other_pid = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert Notifier(other_pid).watchdog_secs is None  # meant for another process
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    gone.send("READY=1")
    gone.send("STOPPING=1")
    warnings = [r for r in caplog.records if "cannot notify systemd" in r.getMessage()]
    assert len(warnings) == 1
