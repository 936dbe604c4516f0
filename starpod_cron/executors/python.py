"""The ``python`` executor: your own function taking a :class:`JobContext` and returning a
``JobResult`` or a ``str``, named as ``module:function`` and imported once at start-up.

An ``async def`` runs on the event loop (it must not block it: use ``asyncio.to_thread`` for
blocking work). A plain ``def`` runs in a thread of its own, so it may block; on timeout its
run is recorded ``timeout`` at once, though Python cannot stop the thread, which finishes in
the background. A module next to ``agent.toml`` can be named without setting ``PYTHONPATH``:
the config file's directory is added to the import path.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..models import JobContext, JobResult
from ..store.contract import SessionStore
from ..tasks import in_daemon_thread
from .base import session_for


def load_target(target: str, base_dir: Path | None = None) -> Callable[[JobContext], Any]:
    """Import ``module:function`` (attribute paths allowed), looking in ``base_dir`` too;
    ConfigError says what is wrong."""
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ConfigError(f"[executor] target {target!r} must look like 'package.module:function'")
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        where = f" (looked in {base_dir} and sys.path)" if base_dir is not None else ""
        raise ConfigError(
            f"[executor] target {target!r}: cannot import {module_name!r}{where}: {exc}"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"[executor] target {target!r}: {module_name!r} has no attribute {attr_path!r}"
            ) from None
    if not callable(obj):
        raise ConfigError(f"[executor] target {target!r} is not callable")
    return obj  # type: ignore[no-any-return]


def is_async(fn: Callable[..., Any]) -> bool:
    call = getattr(fn, "__call__", None)  # noqa: B004 - async callable objects count too
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


class PythonExecutor:
    def __init__(self, store: SessionStore, target: str, base_dir: Path | None = None) -> None:
        self._store = store
        self._fn = load_target(target, base_dir)
        self._async = is_async(self._fn)
        kind = "" if self._async else ", sync: runs in a thread"
        self.description = f"python ({target}{kind})"
        self.notes: tuple[str, ...] = ()

    async def __call__(self, ctx: JobContext) -> JobResult:
        if self._async:
            result = await self._fn(ctx)
        else:
            result = await in_daemon_thread(self._fn, ctx, name=f"starpod-cron:job:{ctx.job_name}")
        if isinstance(result, Awaitable):
            result = await result
        if isinstance(result, JobResult):
            return result
        if isinstance(result, str):
            return JobResult(session_id=await session_for(ctx, self._store), summary=result)
        raise TypeError(
            f"{self.description} returned {type(result).__name__}; return a JobResult or a str"
        )

    async def aclose(self) -> None:
        return None
