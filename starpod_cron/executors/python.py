"""The ``python`` executor: your own ``async def run(ctx: JobContext) -> JobResult | str``,
named as ``module:function`` and imported once at start-up."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ConfigError
from ..models import JobContext, JobResult
from ..store.base import CronStore
from .base import session_for


def load_target(target: str) -> Callable[[JobContext], Awaitable[Any]]:
    """Import ``module:function`` (attribute paths allowed); ConfigError says what is wrong."""
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ConfigError(f"[executor] target {target!r} must look like 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"[executor] target {target!r}: cannot import {module_name!r}: {exc}"
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
    call = getattr(obj, "__call__", None)  # noqa: B004 - async callable objects count too
    if not (inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(call)):
        raise ConfigError(
            f"[executor] target {target!r} must be an async function taking a JobContext"
        )
    return obj  # type: ignore[no-any-return]


class PythonExecutor:
    def __init__(self, store: CronStore, target: str) -> None:
        self._store = store
        self._fn = load_target(target)
        self.description = f"python ({target})"

    async def __call__(self, ctx: JobContext) -> JobResult:
        result = await self._fn(ctx)
        if isinstance(result, JobResult):
            return result
        if isinstance(result, str):
            return JobResult(session_id=await session_for(ctx, self._store), summary=result)
        raise TypeError(
            f"{self.description} returned {type(result).__name__}; return a JobResult or a str"
        )

    async def aclose(self) -> None:
        return None
