"""Supervised background tasks: every task is named, kept, its failure logged with its
traceback, and cancelled on stop with a bounded wait, so one task that ignores cancellation can
never hang a shutdown.

A task is one of three kinds, chosen when it is started:

- **restartable** (``keep(factory, name)``): a service loop that must always run (the event
  feed, the outbox, a heartbeat). Whenever it ends, raising or returning, before ``stop``, it is
  logged and started again from ``factory()`` after a backoff: 1 s, doubling up to 60 s, back
  to 1 s once a run has lasted ``healthy_secs`` (60 s). It never stops the service.
- **critical** (``spawn(coro, name, critical=True)``): something the service cannot run
  without (a listening server). If it raises or ends before ``stop``, ``on_failure`` is called
  and the service stops (``serve`` then exits 1, so a supervisor restarts it).
- **plain** (``spawn(coro, name)``): one piece of work; a failure is logged, nothing else.
- **handed over** (``spawn(coro, name, on_done=callback)``): one piece of work whose outcome
  belongs to the caller (a run's executor call): ``callback(task)`` gets the ended task, its
  failure is not logged here. Cheap enough for one task per run (one done callback each).

>>> tasks = TaskSet("gateway", on_failure=lambda task: stop.set())
>>> tasks.keep(outbox.run, "outbox")
>>> tasks.spawn(http.serve(sock), "http", critical=True)
>>> await tasks.stop(grace=5)
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("starpod_cron.tasks")
T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """How a restartable task is restarted: after ``first`` seconds, doubling up to ``most``;
    back to ``first`` once a run has lasted ``healthy`` seconds."""

    first: float = 1.0
    most: float = 60.0
    healthy: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.first <= self.most or self.healthy <= 0:
            raise ValueError(f"impossible restart backoff {self}")


RESTART = Backoff()


async def cancel_and_wait(
    tasks: Iterable[asyncio.Future[Any]],
    *,
    grace: float,
    what: str = "task",
    log_errors: bool = True,
) -> list[asyncio.Future[Any]]:
    """Cancel ``tasks`` and wait up to ``grace`` seconds for them to end. Errors they end with
    are logged (never raised); tasks still running afterwards are abandoned, logged and
    returned. Cancelling the caller cancels only the wait."""
    tasks = list(tasks)
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        _, still = await asyncio.wait(pending, timeout=grace)
    else:
        still = set()
    for task in tasks:
        if log_errors and task.done() and task not in still:
            _log_outcome(task)
    for task in still:
        log.error(
            "%s %s ignored cancellation for %.1fs; abandoning it",
            what,
            _name(task),
            grace,
        )
    return list(still)


def _name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)


def _log_outcome(task: asyncio.Future[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("task %s failed", _name(task), exc_info=exc)


class TaskSet:
    """A named group of background tasks (the kinds are described in the module docstring).

    ``spawn`` and ``keep`` keep a reference (asyncio keeps only weak ones) and name the task
    ``<prefix>:<name>``; a failure is logged with its traceback; a ``critical`` task's failure
    also calls ``on_failure`` (a service stops instead of running half-alive); a kept task is
    restarted with backoff (``restarts`` counts them per name). ``stop`` cancels what is left
    and waits at most ``grace`` seconds.
    """

    def __init__(
        self, prefix: str, *, on_failure: Callable[[asyncio.Task[Any]], None] | None = None
    ) -> None:
        self.prefix = prefix
        self.on_failure = on_failure
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._handed: dict[asyncio.Task[Any], Callable[[asyncio.Task[Any]], None]] = {}
        self._hand_over = self._handed_over  # one bound method for every handed-over task
        self.restarts: dict[str, int] = {}
        """How many times each kept task was restarted."""

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Any:
        return iter(list(self._tasks))

    def spawn(
        self,
        coro: Coroutine[Any, Any, T],
        name: str,
        *,
        critical: bool = False,
        on_done: Callable[[asyncio.Task[T]], None] | None = None,
    ) -> asyncio.Task[T]:
        """Start ``coro`` as the task ``<prefix>:<name>``. With ``on_done``, its outcome is the
        caller's: ``on_done(task)`` is called when it ends (instead of logging a failure)."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self.prefix}: cannot start {name!r} after stop()")
        if critical and on_done is not None:
            coro.close()
            raise ValueError("a critical task's outcome cannot be handed over")
        task = asyncio.create_task(coro, name=f"{self.prefix}:{name}")
        self._tasks.add(task)
        if on_done is None:
            task.add_done_callback(lambda t: self._done(t, critical))
        else:  # no closure per task: thousands of runs at once keep the GC's work down
            self._handed[task] = on_done
            task.add_done_callback(self._hand_over)
        return task

    def _handed_over(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        on_done = self._handed.pop(task)
        try:
            on_done(task)
        except Exception:
            log.exception("the done callback of %s failed", task.get_name())

    def keep(
        self,
        factory: Callable[[], Coroutine[Any, Any, object]],
        name: str,
        *,
        backoff: Backoff = RESTART,
    ) -> asyncio.Task[None]:
        """Run ``factory()`` as the restartable task ``name`` until ``stop``: each time it ends
        (an exception is logged with its traceback), it is started again after ``backoff``."""
        return self.spawn(self._keep(factory, name, backoff), name)

    async def _keep(
        self, factory: Callable[[], Coroutine[Any, Any, object]], name: str, backoff: Backoff
    ) -> None:
        full = f"{self.prefix}:{name}"
        delay = backoff.first
        while True:
            started = time.monotonic()
            try:
                await factory()
            except Exception:  # logged with its traceback, then restarted
                if self._closed:
                    raise
                if time.monotonic() - started >= backoff.healthy:
                    delay = backoff.first
                log.exception("%s failed; restarting it in %.1fs", full, delay)
            else:
                if self._closed:
                    return
                if time.monotonic() - started >= backoff.healthy:
                    delay = backoff.first
                log.error("%s ended unexpectedly; restarting it in %.1fs", full, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, backoff.most)
            self.restarts[name] = self.restarts.get(name, 0) + 1

    def adopt(self, task: asyncio.Task[Any]) -> None:
        """Keep (and supervise) a task created elsewhere, e.g. one abandoned after a timeout."""
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, False))

    def _done(self, task: asyncio.Task[Any], critical: bool) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            if critical and not self._closed:  # cancelled by someone else than stop()
                log.error("%s was cancelled", task.get_name())
                if self.on_failure is not None:
                    self.on_failure(task)
            return
        exc = task.exception()
        if exc is None:
            if critical and not self._closed:
                log.error("%s ended unexpectedly", task.get_name())
                if self.on_failure is not None:
                    self.on_failure(task)
            return
        log.error("%s failed", task.get_name(), exc_info=exc)
        if critical and self.on_failure is not None:
            self.on_failure(task)

    async def stop(self, grace: float = 5.0) -> None:
        """Cancel every task (but the one calling ``stop``) and wait up to ``grace`` seconds;
        idempotent."""
        self._closed = True
        current = asyncio.current_task()
        others = [t for t in self._tasks if t is not current]
        await cancel_and_wait(others, grace=grace, what="task", log_errors=False)

    def close(self) -> int:
        """Refuse new tasks from now on, and leave those still running alone (held until they
        end: tasks that ignored cancellation, already logged); returns how many there are."""
        self._closed = True
        return len(self._tasks)

    async def wait(self, within: float | None = None) -> bool:
        """Wait (without cancelling) until every task has ended; False after ``within``."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(list(self._tasks), timeout=within)
        return not pending


async def in_daemon_thread(fn: Callable[..., T], *args: Any, name: str = "starpod-cron:sync") -> T:
    """Run ``fn(*args)`` in a new daemon thread and await its result.

    Unlike ``asyncio.to_thread`` (whose pool threads are joined at interpreter exit), a call
    that never returns cannot keep the process from exiting; cancelling the await abandons the
    thread (Python cannot stop it) and returns at once.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def post(result: T | None, error: BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("%s finished after its event loop closed; result dropped", name)

    def target() -> None:
        try:
            result = context.run(fn, *args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            post(None, exc)
            return
        post(result, None)

    threading.Thread(target=target, name=name, daemon=True).start()
    return await future
