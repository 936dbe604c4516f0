"""What every operation of the store stands on: the dialect driver that runs its transaction
scripts, the settings, the clock, the planners handed over at open, and the change signals.

:meth:`StoreCore._write` is the ONE place a committed write turns into local wake-ups: the
script records what it changed (``tx.changed``), the driver tells other nodes inside the
transaction (PostgreSQL ``NOTIFY``; SQLite's are told by the file's ``data_version``), and
this process's listeners are called here after the commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from ..clock import Clock
from ..models import CronJob, CronRun
from ..settings import StoreSettings
from .contract import FinishedListener, Listener
from .driver import Driver, Row, Script, Tx
from .held import HeldRuns
from .records import JobRecord, RunRecord
from .types import DeliveryPlanner, RunFinished, Topic

log = logging.getLogger("starpod_cron.store")
T = TypeVar("T")


class StoreCore:
    """The plumbing shared by the operation families of ``ops/`` (mixed into ``CronStore``)."""

    def __init__(
        self,
        driver: Driver,
        settings: StoreSettings,
        clock: Clock,
        *,
        delivery_planner: DeliveryPlanner | None = None,
        start_planner: DeliveryPlanner | None = None,
    ) -> None:
        self._driver = driver
        self.settings = settings
        self.clock = clock
        self.url = driver.url
        self._planner = delivery_planner
        self._start_planner = start_planner
        self._listeners: dict[Topic, list[Listener]] = {topic: [] for topic in Topic}
        self._finished_listeners: list[FinishedListener] = []
        self._watching = False
        self._held = HeldRuns()
        """The runs this object claimed, until completed (``ops/scheduling.py``)."""

    # ------------------------------------------------------------------ running scripts
    async def _write(self, script: Script[T]) -> T:
        """Run ``script`` in one transaction; after the commit, wake this process's
        listeners of every topic it changed."""
        result, topics = await self._driver.write(script)
        if topics:
            self._signal(*(topic for topic in Topic if topic in topics))
        return result

    async def _read(self, script: Script[T]) -> T:
        return await self._driver.read(script)

    async def _rows(self, name: str, params: Mapping[str, object] | None = None) -> list[Row]:
        async def script(tx: Tx) -> list[Row]:
            return await tx.rows(name, params)

        return await self._read(script)

    async def _value(self, name: str, params: Mapping[str, object] | None = None) -> Any:
        async def script(tx: Tx) -> Any:
            return await tx.value(name, params)

        return await self._read(script)

    async def _jobs(self, name: str, params: Mapping[str, object] | None = None) -> list[CronJob]:
        async def script(tx: Tx) -> list[CronJob]:
            return [JobRecord.from_row(r).to_public() for r in await tx.rows(name, params)]

        return await self._read(script)

    async def _runs(self, name: str, params: Mapping[str, object] | None = None) -> list[CronRun]:
        async def script(tx: Tx) -> list[CronRun]:
            return [RunRecord.from_row(r).to_public() for r in await tx.rows(name, params)]

        return await self._read(script)

    # ------------------------------------------------------------------------ signals
    def on_change(self, callback: Listener, topic: Topic = Topic.JOBS) -> Listener:
        """See :meth:`~starpod_cron.store.contract.StoreSignals.on_change`."""
        listeners = self._listeners[Topic(topic)]
        listeners.append(callback)
        self._watch_others()

        def unsubscribe() -> None:
            if callback in listeners:
                listeners.remove(callback)

        return unsubscribe

    def on_run_finished(self, callback: FinishedListener) -> Listener:
        """See :meth:`~starpod_cron.store.contract.StoreSignals.on_run_finished`."""
        self._finished_listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._finished_listeners:
                self._finished_listeners.remove(callback)

        return unsubscribe

    def _watch_others(self) -> None:
        """Watch other processes' commits once someone listens (needs a running loop)."""
        if self._watching:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._watching = True
        self._driver.watch(self._signal)

    def _signal(self, *topics: Topic) -> None:
        for topic in topics:
            for callback in list(self._listeners[topic]):
                try:
                    callback()
                except Exception:
                    log.exception("store change listener %r failed", callback)

    def _finished(self, events: Sequence[RunFinished]) -> None:
        if not events:
            return
        for callback in list(self._finished_listeners):
            try:
                callback(events)
            except Exception:
                log.exception("run-finished listener %r failed", callback)

    # ---------------------------------------------------------------------- lifecycle
    async def close(self) -> None:
        """Finish in-flight writes and release the database. Idempotent. A store that is
        never closed does not keep the process from exiting."""
        await self._driver.close()

    async def ping(self) -> None:
        """Raise StoreUnavailable if the database cannot be used now (unreachable, or, for
        SQLite, its file was deleted or replaced while open); return otherwise."""
        await self._driver.ping()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
