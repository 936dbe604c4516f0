"""Typed loading of ``agent.toml``. Unknown sections or keys and wrong types are errors that
name the key, never silently ignored.

Loading builds the settings objects the library uses (:class:`StoreSettings`,
:class:`SchedulerSettings`, ...); each validates itself, so defaults and rules live once.
``[cron]`` holds keys of both the store (defaults for new jobs) and the scheduler.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .errors import ConfigError
from .settings import SchedulerSettings, StoreSettings

S = TypeVar("S")


def _kinds(*kinds: str) -> dict[str, Any]:
    return {"kinds": kinds}


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """``[store]``: where jobs live (``synchronous`` goes to :class:`StoreSettings`)."""

    url: str = "starpod-cron.db"
    """A file path, ``sqlite:///path``, or ``postgresql://user@host/db``."""


@dataclass(frozen=True, slots=True)
class MaintenanceConfig:
    """``[maintenance]``: built-in jobs that keep the store small (0 or false: that one is off).
    They run at ``cron`` (read in ``[cron] timezone``) as agent-level jobs named
    ``maintenance-runs``, ``maintenance-sessions``, ``maintenance-deliveries``,
    ``maintenance-optimize``; each is also a CLI command with ``--dry-run``."""

    cron: str = "15 3 * * *"
    runs_days: int = 0  # delete run history older than this many days
    sessions_hours: int = 0  # delete conversation messages older than this many hours
    deliveries_days: int = 0  # delete delivered, dead and published deliveries older than this
    optimize: bool = False  # refresh the database's query statistics

    def __post_init__(self) -> None:
        if min(self.runs_days, self.sessions_hours, self.deliveries_days) < 0:
            raise ConfigError("runs_days, sessions_hours and deliveries_days must be >= 0")


EXECUTOR_KINDS = ("echo", "openai", "command", "python")


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """``[executor]``: what runs each prompt. Keys other than ``kind`` belong to one kind; a key
    of another kind is an error."""

    kind: str = "echo"
    base_url: str = field(default="http://127.0.0.1:11434/v1", metadata=_kinds("openai"))
    model: str = field(default="llama3.2", metadata=_kinds("openai"))
    api_key_env: str = field(default="OPENAI_API_KEY", metadata=_kinds("openai"))
    system_prompt: str = field(
        default="You are a scheduled agent run. Do the task and reply with the result.",
        metadata=_kinds("openai"),
    )
    request_timeout_secs: float = field(default=600, metadata=_kinds("openai"))
    max_history_messages: int = field(default=20, metadata=_kinds("openai"))
    temperature: float | None = field(default=None, metadata=_kinds("openai"))
    max_tokens: int | None = field(default=None, metadata=_kinds("openai"))
    allow_scheduling_from_runs: bool = field(default=False, metadata=_kinds("openai"))
    """A scheduled run's model may call the scheduling tools (a job creating jobs)."""
    argv: tuple[str, ...] = field(default=(), metadata=_kinds("command"))
    shell: bool = field(default=False, metadata=_kinds("command"))
    output_limit_bytes: int = field(default=1024 * 1024, metadata=_kinds("command"))
    kill_grace_secs: float = field(default=2, metadata=_kinds("command"))
    target: str = field(default="", metadata=_kinds("python"))

    def __post_init__(self) -> None:
        if self.kind not in EXECUTOR_KINDS:
            raise ConfigError(
                f"kind: must be one of {', '.join(EXECUTOR_KINDS)}, got {self.kind!r}"
            )
        if self.kind == "openai":
            if not self.base_url.startswith(("http://", "https://")):
                raise ConfigError("base_url: must start with http:// or https://")
            if not self.model.strip():
                raise ConfigError("model: name the model to call")
            if self.request_timeout_secs <= 0 or self.max_history_messages < 1:
                raise ConfigError("request_timeout_secs must be > 0 and max_history_messages >= 1")
        if self.kind == "command":
            if not self.argv:
                raise ConfigError('argv: kind = "command" needs argv = ["program", ...]')
            if self.output_limit_bytes < 1 or self.kill_grace_secs < 0:
                raise ConfigError("output_limit_bytes must be >= 1 and kill_grace_secs >= 0")
        if self.kind == "python" and not self.target:
            raise ConfigError('target: kind = "python" needs target = "module:function"')


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """Who a gateway token belongs to: ``{user_id = "u1", admin = false}``."""

    user_id: str
    admin: bool = False


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """``[gateway]``: the WebSocket server, the delivery outbox and per-user limits."""

    host: str = "127.0.0.1"
    port: int = 8765
    http: bool = True  # the dashboard, HTTP API, /healthz, /readyz and /metrics
    http_port: int = 8766  # 0: any free port
    tokens: dict[str, TokenConfig] = field(default_factory=dict)
    tokens_env: str = "STARPOD_GATEWAY_TOKENS"  # JSON in the same shape as tokens
    share_agent_events: bool = False  # non-admin users also see agent-level jobs' events
    client_queue_size: int = 1000
    max_frame_bytes: int = 64 * 1024
    delivery_max_attempts: int = 8
    delivery_backoff_secs: tuple[float, ...] = (1, 5, 30, 120, 600)
    delivery_lease_secs: float = 60  # a gateway killed mid-send: resent after this long
    max_jobs_per_user: int = 50  # 0: no limit; admins are never limited
    min_interval_secs: float = 60  # shortest repeat non-admins may schedule
    max_prompt_chars: int = 4000  # longest prompt non-admins may schedule
    heartbeat_secs: float = 5  # node heartbeat in the store; gone after 3 missed
    run_started_events: bool = True  # publish run.started for WebSocket clients who subscribe
    session_ttl_secs: float = 7 * 86_400  # a dashboard log-in lasts this long (1 s to 366 days)
    allowed_hosts: tuple[str, ...] = ()
    """Host names a request's ``Host`` may carry (port ignored); empty: 127.0.0.1, localhost,
    ::1. ``host`` (when a specific address) and ``public_url``'s host are served too."""
    public_url: str = ""  # the dashboard's address behind a reverse proxy (its origin is allowed)
    allowed_origins: tuple[str, ...] = ()  # more browser origins allowed, "https://host[:port]"

    def __post_init__(self) -> None:
        _check_browser_keys(self)
        if not self.host.strip():
            raise ConfigError("host: must not be empty")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port: must be 1-65535 (or 0 for any free port), got {self.port}")
        if not 0 <= self.http_port < 65536:
            raise ConfigError(f"http_port: must be 1-65535 (or 0 for any), got {self.http_port}")
        if self.client_queue_size < 1:
            raise ConfigError("client_queue_size: must be at least 1")
        if self.max_frame_bytes < 1024:
            raise ConfigError("max_frame_bytes: must be at least 1024")
        if self.delivery_max_attempts < 1:
            raise ConfigError("delivery_max_attempts: must be at least 1")
        if not self.delivery_backoff_secs or min(self.delivery_backoff_secs) < 0:
            raise ConfigError("delivery_backoff_secs: must be a non-empty list of delays >= 0")
        if self.delivery_lease_secs <= 0:
            raise ConfigError("delivery_lease_secs: must be greater than 0")
        if not 0.1 <= self.heartbeat_secs <= 3600:
            raise ConfigError("heartbeat_secs: must be between 0.1 and 3600")
        if not 1 <= self.session_ttl_secs <= 366 * 86_400:
            raise ConfigError(
                "session_ttl_secs: must be between 1 and 31622400 (366 days), "
                f"got {self.session_ttl_secs:g}"
            )
        if self.max_jobs_per_user < 0 or self.min_interval_secs < 0 or self.max_prompt_chars < 1:
            raise ConfigError(
                "max_jobs_per_user and min_interval_secs must be >= 0, max_prompt_chars >= 1"
            )


def _check_browser_keys(config: GatewayConfig) -> None:
    """``allowed_hosts``: bare names or addresses; ``public_url`` and ``allowed_origins``:
    http(s) URLs with a host (``allowed_origins`` without a path)."""
    for host in config.allowed_hosts:
        bare = host.strip()
        if bare.startswith("[") and bare.endswith("]"):
            bare = bare[1:-1]
        if not bare or any(c in bare for c in "/@ *?#") or (":" in bare and bare.count(":") < 2):
            raise ConfigError(
                f"allowed_hosts: {host!r} is not a host name: give names or addresses without "
                'scheme, port or wildcard, e.g. ["cron.example.com", "127.0.0.1"]'
            )
    if config.public_url and not _web_url(config.public_url):
        raise ConfigError(
            f"public_url: {config.public_url!r} must be an http:// or https:// URL with a host, "
            'e.g. "https://cron.example.com"'
        )
    for origin in config.allowed_origins:
        if not _web_url(origin) or urlsplit(origin).path not in ("", "/"):
            raise ConfigError(
                f'allowed_origins: {origin!r} must be an origin like "https://host[:port]" '
                "(scheme, host and port only)"
            )


def _web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    """``[telegram]``: the chat bot (started when a token is found)."""

    token_env: str = "TELEGRAM_BOT_TOKEN"
    token: str = ""  # prefer token_env: a token in a file is easy to leak
    allowed_user_ids: tuple[int, ...] = ()
    notify_chat_ids: tuple[int, ...] = ()
    base_url: str = "https://api.telegram.org/bot"
    poll_timeout_secs: float = 10
    retry_max_secs: float = 300  # longest wait between attempts while Telegram refuses us
    leader_lease_secs: float = 6  # one node polls; another takes over this long after it dies

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError("base_url: must start with http:// or https://")
        if not 1 <= self.leader_lease_secs <= 300:
            raise ConfigError("leader_lease_secs: must be between 1 and 300")
        if self.poll_timeout_secs <= 0 or self.retry_max_secs <= 0:
            raise ConfigError("poll_timeout_secs and retry_max_secs must be greater than 0")


@dataclass(frozen=True, slots=True)
class AgentConfig:
    store_settings: StoreSettings = field(default_factory=StoreSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    store: StoreConfig = field(default_factory=StoreConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    configured: frozenset[str] = frozenset()
    """The sections present in the file (``executor`` absent means the demo default)."""
    base_dir: Path | None = None
    """The directory of the file: a ``python`` executor target is imported from there too."""
    jobs: tuple[dict[str, Any], ...] = ()
    """The ``[[jobs]]`` tables: jobs declared in this file (see :mod:`starpod_cron.declared`)."""
    job_modules: tuple[str, ...] = ()
    """``[cron] job_modules``: modules whose decorated functions declare jobs."""


_SECTIONS: dict[str, type[Any]] = {
    "store": StoreConfig,
    "executor": ExecutorConfig,
    "gateway": GatewayConfig,
    "telegram": TelegramConfig,
    "maintenance": MaintenanceConfig,
}
_CRON_RENAMES = {"timezone": "default_timezone"}


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate ``agent.toml`` at ``path``; raises ConfigError naming the problem."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {p} is not UTF-8 text: {exc}") from exc
    config = parse_config(text, source=str(p))
    return dataclasses.replace(config, base_dir=p.resolve().parent)


def parse_config(text: str, *, source: str = "agent.toml") -> AgentConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from exc
    known = ["cron", *_SECTIONS]
    values: dict[str, Any] = {}
    store_keys: dict[str, Any] = {}
    declared = data.pop("jobs", [])
    if not isinstance(declared, list) or not all(isinstance(j, dict) for j in declared):
        raise ConfigError(f"{source}: jobs must be [[jobs]] tables, one per job")
    for name, value in data.items():
        if name not in known:
            listed = ", ".join(f"[{s}]" for s in [*known, "[jobs]"])
            raise ConfigError(f"{source}: unknown section [{name}] (known: {listed})")
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
    cron = dict(data.get("cron", {}))
    modules = cron.pop("job_modules", [])
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ConfigError(f"{source} [cron]: job_modules must be a list of module names")
    values["jobs"] = tuple(declared)
    values["job_modules"] = tuple(modules)
    store = dict(data.get("store", {}))
    if "synchronous" in store:
        store_keys["synchronous"] = store.pop("synchronous")
    values.update(_cron(cron, store_keys, f"{source} [cron]"))
    for name, cls in _SECTIONS.items():
        if name == "store":
            section = store
        elif name in data:
            section = data[name]
        else:
            continue
        where = f"{source} [{name}]"
        if name == "executor":
            _check_executor_keys(section, where)
        values[name] = _section(cls, section, where)
    return AgentConfig(**values, configured=frozenset(data) | ({"jobs"} if declared else set()))


def _cron(cron: dict[str, Any], store_keys: dict[str, Any], where: str) -> dict[str, Any]:
    """``[cron]`` split between StoreSettings and SchedulerSettings by field name."""
    store_fields = {f.name for f in fields(StoreSettings)} - {"synchronous", "default_timezone"}
    store_fields |= set(_CRON_RENAMES)
    sched_fields = {f.name for f in fields(SchedulerSettings)}
    for key in cron:
        if key not in store_fields and key not in sched_fields:
            listed = ", ".join(sorted(store_fields | sched_fields))
            raise ConfigError(f"{where}: unknown key {key!r} (known: {listed})")
    store_values = {_CRON_RENAMES.get(k, k): v for k, v in cron.items() if k in store_fields}
    store_values.update(store_keys)
    sched_values = {k: v for k, v in cron.items() if k in sched_fields}
    return {
        "store_settings": _section(StoreSettings, store_values, where),
        "scheduler": _section(SchedulerSettings, sched_values, where),
    }


def _check_executor_keys(values: dict[str, Any], where: str) -> None:
    kind = values.get("kind", "echo")
    for f in fields(ExecutorConfig):
        kinds = f.metadata.get("kinds")
        if f.name in values and kinds and kind not in kinds:
            raise ConfigError(
                f"{where} {f.name}: applies to kind = {' or '.join(repr(k) for k in kinds)}, "
                f"not {kind!r}; remove it or change kind"
            )


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
    try:
        return cls(**out)
    except ConfigError as exc:
        raise ConfigError(f"{where} {exc}") from None


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
