"""Request-body limits against a real `starpod-cron serve` on 127.0.0.1: a 100 MB body, chunked
or with its Content-Length, is answered 413 (and the client reads it), and the gateway's memory
does not grow by the body's size."""

from __future__ import annotations

import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.processes import serve

pytestmark = pytest.mark.slow

MB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)


async def chunks(size: int) -> AsyncIterator[bytes]:
    """``size`` bytes in 64 KiB chunks, made as sent (the client holds one chunk)."""
    for _ in range(size // len(CHUNK)):
        yield CHUNK


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM): a body read whole and freed since still
    shows, where VmRSS would already be back down."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.mark.timeout(120)
async def test_a_100_mb_body_is_answered_413_without_being_held(tmp_path: Path) -> None:
    gateway = await serve(tmp_path, log=tmp_path / "serve.log")
    text = await gateway.read_until(b"Dashboard and API on")
    match = re.search(r"Dashboard and API on (http://[\d.]+:\d+)/", text)
    assert match, text
    base = match.group(1)
    json_type = {"Content-Type": "application/json"}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            warm = await http.post("/api/jobs", json={"prompt": "p", "every": "1h"})
            assert warm.status_code == 200, warm.text
            before = peak_rss_kib(gateway.proc.pid)

            chunked = await http.post("/api/jobs", content=chunks(100 * MB), headers=json_type)
            assert chunked.status_code == 413, chunked.text
            assert chunked.json()["error"]["code"] == "too_large"
            assert str(64 * 1024) in chunked.json()["error"]["message"]

            length = {**json_type, "Content-Length": str(100 * MB)}
            declared = await http.post("/api/jobs", content=chunks(100 * MB), headers=length)
            assert declared.status_code == 413, declared.text

            after = peak_rss_kib(gateway.proc.pid)
            print(f"serve peak RSS before {before} KiB, after 200 MB of refused bodies {after} KiB")
            assert after - before < 10 * 1024, (before, after)

            form = {"Content-Type": "application/x-www-form-urlencoded"}
            login = await http.post("/login", content=chunks(10 * MB), headers=form)
            assert login.status_code == 413, login.text
            assert str(4 * 1024) in login.json()["error"]["message"]

            # the limit counts bytes: a body just past it is refused, one within it is read
            big = {"prompt": "p" * (64 * 1024), "every": "1h"}
            assert (await http.post("/api/jobs", json=big)).status_code == 413
            ok = await http.post("/api/jobs", json={"prompt": "q", "every": "1h"})
            assert ok.status_code == 200, ok.text
    finally:
        gateway.proc.send_signal(signal.SIGTERM)
        assert await gateway.proc.wait() == 0
