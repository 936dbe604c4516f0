"""Logging helpers: run context on every line about a run, and secrets kept out of every line.

``run_log(logger, job, run_id)`` returns a :class:`logging.LoggerAdapter` whose lines start with
``job NAME run ID:`` and carry ``job``, ``run_id`` and ``action`` as record attributes (for
structured handlers).

Secrets (bot tokens, API keys, gateway tokens) are registered with :func:`register_secret` and
replaced by ``[REDACTED]`` in whole formatted records (message, arguments and traceback) by
:class:`RedactingFormatter`, and in any text passed through :func:`redact` (error messages shown
to users or stored in the database). Telegram bot tokens and ``Bearer`` credentials are
recognised by shape even when not registered.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any

MASK = "[REDACTED]"
_MIN_SECRET = 6
_secrets: set[str] = set()
_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None
_SHAPES = re.compile(
    r"(?P<bot>(?<![0-9])\d{5,}:[A-Za-z0-9_-]{20,})|(?P<bearer>(?i:bearer)\s+)[A-Za-z0-9._~+/=-]{8,}"
)


def register_secret(value: str | None) -> None:
    """Never show ``value`` in logs or error messages from now on (short values are ignored:
    they would mask ordinary words)."""
    global _pattern
    if not value or len(value) < _MIN_SECRET:
        return
    with _lock:
        if value not in _secrets:
            _secrets.add(value)
            ordered = sorted(_secrets, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def _shape(match: re.Match[str]) -> str:
    if match.group("bot"):
        return MASK
    return f"{match.group('bearer')}{MASK}"


def redact(text: str) -> str:
    """``text`` with every registered secret, bot token and bearer credential masked."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _SHAPES.sub(_shape, text)


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks secrets in the whole text (tracebacks included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RunLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes ``job NAME run ID:`` and attaches ``job``/``run_id``/``action`` to records."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        action = kwargs.pop("action", None)
        if action is not None:
            extra["action"] = action
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return f"job {extra['job']} run {extra['run_id']}: {msg}", kwargs


def run_log(logger: logging.Logger, job: str, run_id: str) -> RunLog:
    return RunLog(logger, {"job": job, "run_id": run_id, "action": None})
