"""Group commit: every item submitted while a write is in flight is written by the next single
transaction. Each submitter learns its answer only after that transaction committed, so
nothing is reported done before it is durable.

A write that fails (a full disk, a database locked for too long) is retried with backoff until
it succeeds: the items wait, they are not lost. Only ``close`` gives up on them, after its
timeout, answering each with the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from .errors import StarpodCronError, StoreLost
from .store.contract import SchedulerStore
from .store.types import ClaimRequest, Completion
from .tasks import TaskSet

log = logging.getLogger("starpod_cron.scheduler")

I = TypeVar("I")  # noqa: E741 - item
R = TypeVar("R")  # answer

RETRY_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


class GiveUp(StarpodCronError):
    """The writer was closed before these items could be written."""


class GroupCommit(Generic[I, R]):
    def __init__(
        self,
        write: Callable[[Sequence[I]], Awaitable[Sequence[R]]],
        *,
        what: str,
        max_batch: int = 2000,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        tasks: TaskSet | None = None,
    ) -> None:
        """``tasks`` holds the writing task (by default a TaskSet of its own)."""
        self._write = write
        self._tasks = tasks if tasks is not None else TaskSet("starpod-cron")
        self._what = what
        self._max_batch = max_batch
        self._delays = list(retry_delays)
        self._pending: list[tuple[I, Callable[[R | BaseException], None]]] = []
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._giving_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failed_writes = 0
        self.writing = False
        """A transaction is in flight: what is submitted now waits for the next one."""

    def submit(self, item: I, on_done: Callable[[R | BaseException], None]) -> None:
        """Write ``item`` with the next batch; ``on_done`` gets its answer (or the error that
        made ``close`` give up on it)."""
        self._pending.append((item, on_done))
        self._idle.clear()
        self._ready.set()
        if self._task is None or self._task.done():
            self._task = self._tasks.spawn(self._drain(), self._what)

    async def write(self, item: I) -> R:
        """Submit ``item`` and wait for its answer (raises the give-up error)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()

        def done(answer: R | BaseException) -> None:
            if future.done():
                return
            if isinstance(answer, BaseException):
                future.set_exception(answer)
            else:
                future.set_result(answer)

        self.submit(item, done)
        return await future

    async def _drain(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self.writing = True
                try:
                    answers = await self._write_batch([item for item, _ in batch])
                finally:
                    self.writing = False
                for (_, on_done), answer in zip(batch, answers, strict=True):
                    try:
                        on_done(answer)
                    except Exception:
                        log.exception("%s callback failed", self._what)
            self._idle.set()

    async def _write_batch(self, items: list[I]) -> Sequence[R | BaseException]:
        attempt = 0
        while True:
            try:
                return list(await self._write(items))
            except Exception as exc:  # noqa: BLE001 - every failed write is logged and retried
                self.failed_writes += 1
                if self._giving_up.is_set() or isinstance(exc, StoreLost):
                    log.error("giving up on %d %s: %s", len(items), self._what, exc)
                    return [GiveUp(f"not recorded: {exc}")] * len(items)
                attempt += 1
                delay = self._delays[min(attempt, len(self._delays)) - 1]
                log.error(
                    "writing %d %s failed (attempt %d): %s; retrying in %.2fs",
                    len(items),
                    self._what,
                    attempt,
                    exc,
                    delay,
                )
                with contextlib.suppress(TimeoutError):  # sleep, unless close() gives up first
                    async with asyncio.timeout(delay):
                        await self._giving_up.wait()

    async def close(self, within: float | None = None) -> bool:
        """Return once every submitted item is written; after ``within`` seconds, give up on
        what is left (its submitters get a GiveUp error). True if nothing was given up."""
        clean = True
        if not self._idle.is_set():
            try:
                async with asyncio.timeout(within):
                    await self._idle.wait()
            except TimeoutError:
                clean = False
                self._giving_up.set()  # each waiting batch gets one last try, then GiveUp
                await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        return clean


class ClaimHook(Protocol):
    """Who asks for claims in a completing transaction (the scheduler's loop, while it runs)."""

    def request(self) -> ClaimRequest | None:
        """The claim to make with the next write (slots reserved), or None."""

    def claimed(self, request: ClaimRequest) -> None:
        """After that write (``request.claimed`` is empty if it failed): admit the claims."""


class CompletionWriter(GroupCommit[Completion, bool]):
    """Group commit of run completions for one lease holder. While ``claims`` is set, each
    write also claims what its hook asks for, in the same transaction (``complete_runs``'
    ``claim``); after a failed write the next one goes without, so a claim can never keep
    completions from being recorded."""

    def __init__(
        self,
        store: SchedulerStore,
        owner: str,
        max_batch: int = 2000,
        *,
        tasks: TaskSet | None = None,
    ) -> None:
        self.claims: ClaimHook | None = None
        self._claim_next = True

        async def write(items: Sequence[Completion]) -> Sequence[bool]:
            hook = self.claims
            request = None if hook is None or not self._claim_next else hook.request()
            if hook is None or request is None:
                self._claim_next = True
                return await store.complete_runs(items, owner=owner)
            self._claim_next = False
            try:
                answers = await store.complete_runs(items, owner=owner, claim=request)
            finally:
                hook.claimed(request)
            self._claim_next = True
            return answers

        super().__init__(write, what="run completion(s)", max_batch=max_batch, tasks=tasks)
