"""Group commit of run completions: every run that finishes while a write is in flight is
recorded by the next single transaction. Each run's callback fires only after that transaction
has committed, so nothing is reported complete before it is durable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .store.base import Completion, CronStore

log = logging.getLogger("starpod_cron.scheduler")

Recorded = Callable[[bool | BaseException], None]
"""Told True (recorded), False (the run was no longer held by this owner) or the write error."""


class CompletionWriter:
    def __init__(self, store: CronStore, owner: str, max_batch: int = 2000) -> None:
        self._store = store
        self._owner = owner
        self._max_batch = max_batch
        self._pending: list[tuple[Completion, Recorded]] = []
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def submit(self, completion: Completion, on_recorded: Recorded) -> None:
        self._pending.append((completion, on_recorded))
        self._idle.clear()
        self._ready.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="starpod-cron:completions")

    async def _drain(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                answers: list[bool | BaseException]
                try:
                    answers = list(
                        await self._store.complete_runs([c for c, _ in batch], owner=self._owner)
                    )
                except Exception as exc:
                    log.exception("recording %d run completion(s) failed", len(batch))
                    answers = [exc] * len(batch)
                for (_, on_recorded), answer in zip(batch, answers, strict=True):
                    try:
                        on_recorded(answer)
                    except Exception:
                        log.exception("run completion callback failed")
            self._idle.set()

    async def close(self) -> None:
        """Return once every submitted completion is written; then stop the writer task."""
        await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
