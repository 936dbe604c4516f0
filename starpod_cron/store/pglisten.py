"""The PostgreSQL store's LISTEN connection: wake-ups from other nodes.

One connection per store listens on the store's channel. It is re-established whenever it is
lost (terminated by the server, reset, or silent: it is pinged every ``PING_SECS``), with
backoff while the server is unreachable, and after every (re)connection every topic is
signalled once, so nothing waits for a notification sent while it was down (the tables stay
the truth; a missed notification would only cost latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from .pgerrors import is_connection_error, why
from .types import Topic

log = logging.getLogger("starpod_cron.store")

RETRY_FIRST_SECS = 0.5
RETRY_MAX_SECS = 30.0
PING_SECS = 10.0


class Listener:
    """Hold the LISTEN connection of ``channel`` at ``dsn``; call ``signal`` with the topic of
    each notification (and with every topic after each (re)connection)."""

    def __init__(self, dsn: str, channel: str, where: str, signal: Callable[..., None]) -> None:
        self._dsn = dsn
        self._channel = channel
        self._where = where
        self._signal = signal
        self.connections = 0
        """How many times the LISTEN connection was (re)established."""

    async def run(self) -> None:
        """Listen until cancelled."""
        delay = RETRY_FIRST_SECS
        while True:
            try:
                conn = await asyncpg.connect(self._dsn)
            except Exception as exc:  # noqa: BLE001 - logged; any failure is retried
                level = logging.ERROR if is_connection_error(exc) else logging.CRITICAL
                log.log(
                    level, "LISTEN connection to %s failed: %s; retrying", self._where, why(exc)
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECS)
                continue
            try:
                await self._hold(conn)
                delay = RETRY_FIRST_SECS
            except Exception as exc:  # noqa: BLE001 - the connection broke: reconnect
                log.warning(
                    "LISTEN connection to %s broke (%s); reconnecting", self._where, why(exc)
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECS)
            finally:
                if not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)

    async def _hold(self, conn: asyncpg.Connection[asyncpg.Record]) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        await conn.add_listener(self._channel, self._on_notify)
        self.connections += 1
        self._signal(Topic.JOBS, Topic.DELIVERIES)  # what was sent meanwhile was missed
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), PING_SECS)
            if not lost.is_set():  # a connection can die silently (a failover, a cut cable)
                await conn.execute("SELECT 1", timeout=PING_SECS)
        log.warning("LISTEN connection to %s was lost; reconnecting", self._where)

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        try:
            topic = Topic(str(payload))
        except ValueError:
            log.warning("ignoring a notification with unknown topic %r", payload)
            return
        self._signal(topic)
