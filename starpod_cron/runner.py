"""``run(main())``: ``asyncio.run`` whose clean-up is bounded.

``asyncio.run`` cancels the tasks left when ``main`` returns and then waits for ALL of them,
forever if one ignores cancellation (an executor swallowing ``CancelledError`` in a loop). The
CLI and ``serve`` use this instead: leftover tasks get ``grace`` seconds, then they are
abandoned (logged) and the loop is closed, so the process always exits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger("starpod_cron.runner")
T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], *, grace: float = 5.0) -> T:
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _finish(loop, grace)
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _finish(loop: asyncio.AbstractEventLoop, grace: float) -> None:
    leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in leftover:
        task.cancel()
    if leftover:
        _, stubborn = loop.run_until_complete(asyncio.wait(leftover, timeout=grace))
        for task in stubborn:
            log.error(
                "task %s ignored cancellation for %.1fs; abandoned at exit", task.get_name(), grace
            )
            task._log_destroy_pending = False  # type: ignore[attr-defined]  # reported above
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
