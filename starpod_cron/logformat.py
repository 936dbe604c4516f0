"""How log lines look on stderr: ``[logging] format`` (``text`` or ``json``), set up once per
process by :func:`setup_logging` for every command (the CLI's and ``serve``).

``json`` writes one JSON object per line through python-json-logger: ``time``, ``level``,
``logger``, ``message`` and, where known, ``job``, ``run_id``, ``node``, ``delivery_id`` (and
``action``); an exception is the ``exc_info`` field, never a raw traceback. Secrets are masked
in the whole line as in text logs (:func:`starpod_cron.logs.redact`). Python warnings go
through logging (``logging.captureWarnings``), and so do uncaught exceptions of the process
and of threads (``sys.excepthook``, ``threading.excepthook``): nothing else reaches stderr.
"""

from __future__ import annotations

import logging
import sys
import threading
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .logs import RedactingFormatter, redact

FORMATS = ("text", "json")
_json = False
_node: str | None = None


def set_node(node_id: str) -> None:
    """Every JSON line of this process names this node (a gateway's id in the store)."""
    global _node
    _node = node_id


CONTEXT_KEYS = ("job", "run_id", "node", "delivery_id", "action")
"""Record attributes a JSON line carries when a log call set them (``extra=``, RunLog)."""


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """``[logging]``: how log lines on stderr look."""

    format: str = "text"  # "json": one JSON object per line (for journald, Loki, CloudWatch)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"format: must be 'text' or 'json', got {self.format!r}")


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter  # loaded only for JSON logs

    class RedactingJsonFormatter(JsonFormatter):
        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

        def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
            if log_record.get("node") is None and _node is not None:
                log_record["node"] = _node
            for key in CONTEXT_KEYS:
                if log_record.get(key) is None:
                    log_record.pop(key, None)
            return log_record

    return RedactingJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        json_ensure_ascii=False,
        reserved_attrs=None,
    )


def formatter(kind: str, text_format: str) -> logging.Formatter:
    """The formatter of ``kind`` (``text``: ``text_format``, redacted; ``json``)."""
    return _json_formatter() if kind == "json" else RedactingFormatter(text_format)


def setup_logging(kind: str, text_format: str, level: int) -> None:
    """One stderr handler on the root logger (replacing any), warnings and uncaught
    exceptions routed through it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(kind, text_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    global _json
    _json = kind == "json"
    logging.captureWarnings(_json)  # text: Python prints warnings itself, as ever
    if kind == "json":
        sys.excepthook = _excepthook
        threading.excepthook = _thread_excepthook


def _excepthook(
    kind: type[BaseException], exc: BaseException, tb: types.TracebackType | None
) -> None:
    logging.getLogger("starpod_cron").critical("uncaught exception", exc_info=(kind, exc, tb))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return
    logging.getLogger("starpod_cron").critical(
        "uncaught exception in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def is_json() -> bool:
    """Whether this process logs JSON (front ends then log messages instead of printing)."""
    return _json


def early_format(flag: str | None, environ: Mapping[str, str]) -> str | None:
    """The format asked for before the configuration file is read (``--log-format``,
    ``$STARPOD_LOGGING_FORMAT``, ``$STARPOD_LOG_FORMAT``), so that even an error in the file
    is logged as asked."""
    return flag or environ.get("STARPOD_LOGGING_FORMAT") or environ.get("STARPOD_LOG_FORMAT")


def say(message: str, level: int = logging.INFO) -> None:
    """A line for the person at the terminal: printed on stderr, or a log record with JSON
    logs (so that every stderr line is JSON)."""
    if is_json():
        logging.getLogger("starpod_cron").log(level, "%s", redact(message))
    else:
        print(redact(message), file=sys.stderr, flush=True)


def say_error(message: str) -> None:
    """``starpod-cron: error: MESSAGE`` (redacted), or an ERROR record with JSON logs."""
    if is_json():
        logging.getLogger("starpod_cron").error("%s", redact(message))
    else:
        print(f"starpod-cron: error: {redact(message)}", file=sys.stderr, flush=True)
