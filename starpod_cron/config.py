"""Typed loading of ``agent.toml``. Unknown sections or keys and wrong types are errors that
name the key, never silently ignored."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError, InvalidTimezone
from .store.base import StoreSettings
from .timeutil import check_zone

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class CronConfig:
    """``[cron]``: defaults for new jobs and how the scheduler behaves."""

    default_max_retries: int = 3
    default_timeout_secs: float = 7200
    max_concurrent_runs: int = 4
    tick_secs: float = 30
    timezone: str = "UTC"
    runs_keep_per_job: int = 200
    shutdown_timeout_secs: float = 30
    lease_secs: float = 30
    retry_backoff_secs: tuple[float, ...] = (30, 60, 300, 900, 3600)
    misfire_grace_secs: float = 60
    claim_ahead_secs: float = 1


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """``[store]``: where jobs live. A file path or ``sqlite:///path``."""

    url: str = "starpod-cron.db"
    synchronous: str = "full"


EXECUTOR_KINDS = ("echo", "openai", "command", "python")


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """``[executor]``: what runs each prompt. Keys apply to the kind named in their comment."""

    kind: str = "echo"
    # openai
    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = "llama3.2"
    api_key_env: str = "OPENAI_API_KEY"
    system_prompt: str = "You are a scheduled agent run. Do the task and reply with the result."
    request_timeout_secs: float = 600
    max_history_messages: int = 20
    temperature: float | None = None
    max_tokens: int | None = None
    # command
    argv: tuple[str, ...] = ()
    shell: bool = False
    output_limit_bytes: int = 1024 * 1024
    kill_grace_secs: float = 2
    # python
    target: str = ""


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """Who a WebSocket token belongs to: ``{user_id = "u1", admin = false}``."""

    user_id: str
    admin: bool = False


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """``[gateway]``: the WebSocket server and the delivery outbox of ``starpod-cron serve``."""

    host: str = "127.0.0.1"
    port: int = 8765
    tokens: dict[str, TokenConfig] = field(default_factory=dict)
    tokens_env: str = "STARPOD_GATEWAY_TOKENS"  # JSON in the same shape as tokens
    share_agent_events: bool = False  # non-admin users also see agent-level jobs' events
    client_queue_size: int = 1000
    max_frame_bytes: int = 64 * 1024
    delivery_max_attempts: int = 8
    delivery_backoff_secs: tuple[float, ...] = (1, 5, 30, 120, 600)
    delivery_lease_secs: float = 60  # a gateway killed mid-send: resent after this long


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    """``[telegram]``: the chat bot (started when a token is found)."""

    token_env: str = "TELEGRAM_BOT_TOKEN"
    token: str = ""  # prefer token_env: a token in a file is easy to leak
    allowed_user_ids: tuple[int, ...] = ()
    notify_chat_ids: tuple[int, ...] = ()
    base_url: str = "https://api.telegram.org/bot"
    poll_timeout_secs: float = 10


@dataclass(frozen=True, slots=True)
class AgentConfig:
    cron: CronConfig = field(default_factory=CronConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    configured: frozenset[str] = frozenset()
    """The sections present in the file (``executor`` absent means the demo default)."""

    def store_settings(self) -> StoreSettings:
        c = self.cron
        return StoreSettings(
            default_max_retries=c.default_max_retries,
            default_timeout_secs=c.default_timeout_secs,
            default_timezone=c.timezone,
            runs_keep_per_job=c.runs_keep_per_job,
            retry_backoff_secs=c.retry_backoff_secs,
            misfire_grace_secs=c.misfire_grace_secs,
            synchronous=self.store.synchronous,
        )

    def scheduler_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~starpod_cron.CronScheduler` from ``[cron]``."""
        c = self.cron
        return {
            "tick_secs": c.tick_secs,
            "timezone": c.timezone,
            "max_concurrent_runs": c.max_concurrent_runs,
            "shutdown_timeout_secs": c.shutdown_timeout_secs,
            "lease_secs": c.lease_secs,
            "claim_ahead_secs": c.claim_ahead_secs,
        }


_SECTIONS: dict[str, type[Any]] = {
    "cron": CronConfig,
    "store": StoreConfig,
    "executor": ExecutorConfig,
    "gateway": GatewayConfig,
    "telegram": TelegramConfig,
}


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate ``agent.toml`` at ``path``; raises ConfigError naming the problem."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from exc
    return parse_config(text, source=str(p))


def parse_config(text: str, *, source: str = "agent.toml") -> AgentConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from exc
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _SECTIONS:
            known = ", ".join(f"[{s}]" for s in _SECTIONS)
            raise ConfigError(f"{source}: unknown section [{name}] (known: {known})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        sections[name] = _section(_SECTIONS[name], value, f"{source} [{name}]")
    config = AgentConfig(**sections, configured=frozenset(sections))
    _check(config, source)
    return config


def _section(cls: type[S], values: dict[str, Any], where: str) -> S:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        out[key] = _coerce(value, hints[key], f"{where} {key}")
    for f in fields(cls):  # type: ignore[arg-type]
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and f.name not in out:
            raise ConfigError(f"{where}: missing required key {f.name!r}")
    return cls(**out)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        if isinstance(item, type) and dataclasses.is_dataclass(item):
            for key, sub in value.items():
                if not isinstance(sub, dict):
                    raise ConfigError(f"{where}.{key}: expected a table")
            return {str(k): _section(item, v, f"{where}.{k}") for k, v in value.items()}
        return {str(k): _coerce(v, item, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        (item, _) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_coerce(v, item, where) for v in value)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, options[0], where)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported setting type {hint!r}")  # pragma: no cover


def _check(config: AgentConfig, source: str) -> None:
    c = config.cron
    positive = {
        "default_timeout_secs": c.default_timeout_secs,
        "tick_secs": c.tick_secs,
        "lease_secs": c.lease_secs,
        "max_concurrent_runs": c.max_concurrent_runs,
        "runs_keep_per_job": c.runs_keep_per_job,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{source} [cron] {key}: must be greater than 0, got {value}")
    non_negative = {
        "default_max_retries": c.default_max_retries,
        "shutdown_timeout_secs": c.shutdown_timeout_secs,
        "misfire_grace_secs": c.misfire_grace_secs,
        "claim_ahead_secs": c.claim_ahead_secs,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"{source} [cron] {key}: must be 0 or more, got {value}")
    if not c.retry_backoff_secs or min(c.retry_backoff_secs) < 0:
        raise ConfigError(f"{source} [cron] retry_backoff_secs: must be a non-empty list of >= 0")
    try:
        check_zone(c.timezone)
    except InvalidTimezone as exc:
        raise ConfigError(f"{source} [cron] timezone: {exc}") from exc
    if config.store.synchronous not in ("full", "normal"):
        raise ConfigError(f"{source} [store] synchronous: must be 'full' or 'normal'")
    _check_executor(config.executor, f"{source} [executor]")
    g = config.gateway
    if not 0 < g.port < 65536:
        raise ConfigError(f"{source} [gateway] port: must be 1-65535, got {g.port}")
    if g.client_queue_size < 1 or g.max_frame_bytes < 1024 or g.delivery_max_attempts < 1:
        raise ConfigError(
            f"{source} [gateway]: client_queue_size >= 1, max_frame_bytes >= 1024 and "
            "delivery_max_attempts >= 1 are required"
        )
    if not g.delivery_backoff_secs or min(g.delivery_backoff_secs) < 0:
        raise ConfigError(f"{source} [gateway] delivery_backoff_secs: a non-empty list of >= 0")


def _check_executor(e: ExecutorConfig, where: str) -> None:
    if e.kind not in EXECUTOR_KINDS:
        raise ConfigError(
            f"{where} kind: must be one of {', '.join(EXECUTOR_KINDS)}, got {e.kind!r}"
        )
    if e.kind == "openai":
        if not e.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where} base_url: must start with http:// or https://")
        if not e.model.strip():
            raise ConfigError(f"{where} model: name the model to call")
        if e.request_timeout_secs <= 0 or e.max_history_messages < 1:
            raise ConfigError(
                f"{where}: request_timeout_secs must be > 0 and max_history_messages >= 1"
            )
    if e.kind == "command" and not e.argv:
        raise ConfigError(f'{where} argv: kind = "command" needs argv = ["program", ...]')
    if e.kind == "command" and (e.output_limit_bytes < 1 or e.kill_grace_secs < 0):
        raise ConfigError(f"{where}: output_limit_bytes must be >= 1 and kill_grace_secs >= 0")
    if e.kind == "python" and not e.target:
        raise ConfigError(f'{where} target: kind = "python" needs target = "module:function"')
