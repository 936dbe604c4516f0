"""The ``echo`` executor: returns the prompt unchanged. A demo default, so a fresh install runs
end to end without a model; configure ``[executor]`` to run prompts for real."""

from __future__ import annotations

import logging

from ..models import JobContext, JobResult
from ..store.contract import SessionStore
from .base import session_for

log = logging.getLogger("starpod_cron.executors")


class EchoExecutor:
    description = "echo (demo: returns each prompt unchanged; configure [executor] for a model)"
    notes: tuple[str, ...] = ()

    def __init__(self, store: SessionStore) -> None:
        self._store = store
        log.debug("using the echo executor: a demo that returns each prompt unchanged")

    async def __call__(self, ctx: JobContext) -> JobResult:
        return JobResult(session_id=await session_for(ctx, self._store), summary=ctx.prompt)

    async def aclose(self) -> None:
        return None
