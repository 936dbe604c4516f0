"""Node heartbeats: each process serving a shared store says, every few seconds, that it is
alive and in which roles, so ``starpod-cron nodes list`` shows who is up, who is gone (no
heartbeat for 3 intervals) and who stopped cleanly."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import replace

from .errors import StoreUnavailable
from .models import NodeInfo
from .store import CronStore
from .timeutil import from_ms
from .version import __version__

log = logging.getLogger("starpod_cron.nodes")


def package_version() -> str:
    return __version__


class NodeHeartbeat:
    """Heartbeats ``node_id`` into the store every ``every_secs`` until cancelled, then says
    goodbye (``stopped``). ``roles()`` is asked at every beat (e.g. ``["telegram"]`` while
    this node polls the bot). Store errors are logged and retried at the next beat."""

    def __init__(
        self,
        store: CronStore,
        node_id: str,
        *,
        every_secs: float = 5.0,
        roles: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        if every_secs <= 0:
            raise ValueError("every_secs must be positive")
        now = from_ms(store.clock.now_ms())
        self.store = store
        self.every_secs = every_secs
        self.roles = roles
        self.node = NodeInfo(
            id=node_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=package_version(),
            started_at=now,
            last_seen=now,
            heartbeat_secs=every_secs,
        )

    def _current(self) -> NodeInfo:
        return replace(self.node, roles=tuple(self.roles()))

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.store.heartbeat(self._current())
                except StoreUnavailable as exc:
                    log.warning("heartbeat of node %s not recorded: %s", self.node.id, exc)
                await asyncio.sleep(self.every_secs)
        finally:
            await self._goodbye()

    async def _goodbye(self) -> None:
        try:
            beat = self.store.heartbeat(self._current(), stopped=True)
            await asyncio.wait_for(asyncio.shield(beat), timeout=2)
        except (StoreUnavailable, TimeoutError) as exc:
            log.warning("node %s could not record its stop: %s", self.node.id, exc)
