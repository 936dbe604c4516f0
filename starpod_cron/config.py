"""Typed loading of ``agent.toml``. Unknown sections or keys and wrong types are errors that
name the key, never silently ignored.

Loading builds the settings objects the library uses (:class:`StoreSettings`,
:class:`SchedulerSettings`, ...); each validates itself, so defaults and rules live once.
``[cron]`` holds keys of both the store (defaults for new jobs) and the scheduler.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from .bounds import DAY, HOUR, YEAR, check_fields, check_kind_keys, each, identity, whole, within
from .browserkeys import check_browser_keys
from .budget import MAX_BUDGET_USD
from .destinations import Destinations, check_declared, parse_destinations
from .errors import ConfigError, InvalidSchedule
from .logformat import LoggingConfig
from .pricing import PricingConfig, parse_pricing
from .schedules import Schedule
from .settings import SchedulerSettings, StoreSettings
from .telegramconfig import TelegramConfig as TelegramConfig  # re-exported: its old home

S = TypeVar("S")


def _kinds(*kinds: str, rule: dict[str, Any] | None = None) -> dict[str, Any]:
    """Field metadata: the executor kinds a key belongs to (and its bounds, see bounds.py)."""
    return {"kinds": kinds, **(rule or {})}


MAX_DAYS = 36_600  # a hundred years


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """``[store]``: where jobs live (``synchronous`` goes to :class:`StoreSettings`)."""

    url: str = field(default="starpod-cron.db", metadata=identity(4096))
    """A file path, ``sqlite:///path``, or ``postgresql://user@host/db``."""

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, slots=True)
class MaintenanceConfig:
    """``[maintenance]``: built-in jobs that keep the store small (0 or false: that one is off).
    They run at ``cron`` (read in ``[cron] timezone``) as agent-level jobs named
    ``maintenance-runs``, ``maintenance-sessions``, ``maintenance-deliveries``,
    ``maintenance-optimize``; each is also a CLI command with ``--dry-run``."""

    # when the cleanups run
    cron: str = "15 3 * * *"
    # delete run history older than this many days
    runs_days: int = field(default=0, metadata=whole(0, MAX_DAYS))
    # delete conversation messages older than this many hours
    sessions_hours: int = field(default=0, metadata=whole(0, MAX_DAYS * 24))
    # delete delivered, dead and published deliveries older than this many days
    deliveries_days: int = field(default=0, metadata=whole(0, MAX_DAYS))
    optimize: bool = False  # refresh the database's query statistics

    def __post_init__(self) -> None:
        check_fields(self)
        try:  # checked when the file is read, so every command refuses it, not only serve
            Schedule.cron(self.cron)
        except InvalidSchedule as exc:
            raise ConfigError(
                f"cron: must be a cron expression such as '15 3 * * *'; {exc}"
            ) from None


EXECUTOR_KINDS = ("echo", "openai", "command", "python")


@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    """``[executor]``: what runs each prompt. Keys other than ``kind`` belong to one kind; a key
    of another kind is an error."""

    # what runs prompts: echo (a demo), openai, command or python
    kind: str = "echo"
    # openai: the OpenAI-compatible API (Ollama, vLLM, OpenAI...)
    base_url: str = field(default="http://127.0.0.1:11434/v1", metadata=_kinds("openai"))
    # openai: the model of jobs without their own
    model: str = field(default="llama3.2", metadata=_kinds("openai"))
    # openai: the variable holding the API key ("": a server that wants none)
    api_key_env: str = field(default="OPENAI_API_KEY", metadata=_kinds("openai"))
    # openai: the system prompt of jobs without their own
    system_prompt: str = field(
        default="You are a scheduled agent run. Do the task and reply with the result.",
        metadata=_kinds("openai"),
    )
    # openai: one request gives up after this long
    request_timeout_secs: float = field(
        default=600, metadata=_kinds("openai", rule=within(0, DAY, above=True))
    )
    # openai: messages of a main-session conversation sent with each run
    max_history_messages: int = field(default=20, metadata=_kinds("openai", rule=whole(1, 10_000)))
    # openai: sampling temperature (None: the server's)
    temperature: float | None = field(default=None, metadata=_kinds("openai", rule=within(0, 2)))
    # openai: the most tokens an answer may have (None: the server's)
    max_tokens: int | None = field(
        default=None, metadata=_kinds("openai", rule=whole(1, 10_000_000))
    )
    allow_scheduling_from_runs: bool = field(default=False, metadata=_kinds("openai"))
    """Runs of jobs without their own ``tools`` may call every cron tool (compatibility)."""
    # command: the program and its arguments (the prompt on stdin)
    argv: tuple[str, ...] = field(default=(), metadata=_kinds("command"))
    # command: run argv through /bin/sh -c
    shell: bool = field(default=False, metadata=_kinds("command"))
    # command: output kept of a run (more is cut)
    output_limit_bytes: int = field(
        default=1024 * 1024, metadata=_kinds("command", rule=whole(1, 2**30, note="1 GiB"))
    )
    # command: SIGTERM, then SIGKILL after this long
    kill_grace_secs: float = field(default=2, metadata=_kinds("command", rule=within(0, HOUR)))
    # python: the function to call, "module:function"
    target: str = field(default="", metadata=_kinds("python"))

    def __post_init__(self) -> None:
        check_fields(self)
        if self.kind not in EXECUTOR_KINDS:
            raise ConfigError(
                f"kind: must be one of {', '.join(EXECUTOR_KINDS)}, got {self.kind!r}"
            )
        if self.kind == "openai":
            if not self.base_url.startswith(("http://", "https://")):
                raise ConfigError("base_url: must start with http:// or https://")
            if not self.model.strip():
                raise ConfigError("model: name the model to call")
        if self.kind == "command" and not self.argv:
            raise ConfigError('argv: kind = "command" needs argv = ["program", ...]')
        if self.kind == "python" and not self.target:
            raise ConfigError('target: kind = "python" needs target = "module:function"')


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """Who a gateway token belongs to: ``{user_id = "u1", admin = false}``."""

    user_id: str = field(metadata=identity())
    admin: bool = False
    budget_usd_per_month: float | None = field(default=None, metadata=within(0, MAX_BUDGET_USD))
    """This owner's monthly budget, in place of ``[gateway] user_budget_usd_per_month``."""

    def __post_init__(self) -> None:
        check_fields(self)


MIN_TOKEN_CHARS = 16
"""Shorter tokens are guessable (and log redaction skips values under 6 characters)."""


def check_token(token: str, where: str = "tokens") -> None:
    """A gateway token (``[gateway.tokens]`` or ``$tokens_env``): at least
    :data:`MIN_TOKEN_CHARS` characters, no spaces or control characters. ``where`` names the
    entry by position; the message never shows the token."""
    if any(c.isspace() or not c.isprintable() for c in token):
        raise ConfigError(f"{where}: must be a token without spaces or control characters")
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"{where}: must be a token of at least {MIN_TOKEN_CHARS} characters "
            f"(got {len(token)}); make one with: openssl rand -hex 16"
        )


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """``[gateway]``: the WebSocket server, the delivery outbox and per-user limits."""

    # the address both ports listen on
    host: str = field(default="127.0.0.1", metadata=identity(255))
    # the standalone WebSocket port
    port: int = field(default=8765, metadata=whole(0, 65535, note="0: any free port"))
    # the standalone WebSocket port above; the same protocol is always at /ws on http_port
    standalone_ws: bool = True
    http: bool = True  # the dashboard, HTTP API, /healthz, /readyz and /metrics
    # the dashboard, HTTP API, /ws, /healthz, /readyz and /metrics port
    http_port: int = field(default=8766, metadata=whole(0, 65535, note="0: any free port"))
    # token -> {user_id, admin, budget_usd_per_month}
    tokens: dict[str, TokenConfig] = field(default_factory=dict)
    # JSON in the same shape as tokens
    tokens_env: str = field(default="STARPOD_GATEWAY_TOKENS", metadata=identity())
    share_agent_events: bool = False  # non-admin users also see agent-level jobs' events
    # events queued per WebSocket client before it is dropped
    client_queue_size: int = field(default=1000, metadata=whole(1, 1_000_000))
    # largest WebSocket message accepted
    max_frame_bytes: int = field(
        default=64 * 1024, metadata=whole(1024, 64 * 1024 * 1024, note="64 MiB")
    )
    # a delivery failing this often is dead
    delivery_max_attempts: int = field(default=8, metadata=whole(1, 1000))
    # waits between delivery attempts; the last repeats
    delivery_backoff_secs: tuple[float, ...] = field(
        default=(1, 5, 30, 120, 600), metadata=each(0, DAY)
    )
    # a gateway killed mid-send: resent after this long
    delivery_lease_secs: float = field(default=60, metadata=within(0, HOUR, above=True))
    # 0: no limit; admins are never limited
    max_jobs_per_user: int = field(default=50, metadata=whole(0, 1_000_000, note="0: no limit"))
    # shortest repeat non-admins may schedule
    min_interval_secs: float = field(default=60, metadata=within(0, YEAR, note="a year"))
    # longest prompt non-admins may schedule (the store takes 64 KiB at most)
    max_prompt_chars: int = field(default=4000, metadata=whole(1, 64 * 1024))
    # node heartbeat in the store; gone after 3 missed
    heartbeat_secs: float = field(default=5, metadata=within(0.1, HOUR))
    run_started_events: bool = True  # publish run.started for WebSocket clients who subscribe
    run_finished_events: bool = True  # publish run.finished (every run, delivered or not) too
    session_ttl_secs: float = field(  # a dashboard log-in lasts this long
        default=7 * 86_400, metadata=within(1, 366 * 86_400, note="1 s to 366 days")
    )
    allowed_hosts: tuple[str, ...] = ()
    """Host names a request's ``Host`` may carry (port ignored); empty: 127.0.0.1, localhost,
    ::1. ``host`` (when a specific address) and ``public_url``'s host are served too."""
    public_url: str = ""  # the dashboard's address behind a reverse proxy (its origin is allowed)
    allowed_origins: tuple[str, ...] = ()  # more browser origins allowed, "https://host[:port]"
    # what each owner's runs may spend per month (their /tz months); None: no owner budget
    user_budget_usd_per_month: float | None = field(
        default=None, metadata=within(0, MAX_BUDGET_USD)
    )

    def __post_init__(self) -> None:
        check_fields(self)
        for n, token in enumerate(self.tokens, 1):
            check_token(token, f"tokens entry {n}")
        check_browser_keys(self)


def gateway_tokens(
    config: GatewayConfig, environ: Mapping[str, str] | None = None
) -> dict[str, TokenConfig]:
    """The tokens of ``[gateway] tokens`` plus the JSON object in ``$tokens_env``
    (``{"<token>": {"user_id": "u1", "admin": false}}``), each entry read by the same checker
    as ``[gateway.tokens]``: a wrong type (``"admin": "false"``), an unknown key or an empty
    ``user_id`` raises ConfigError naming the entry by position and the key, never the token."""
    tokens = dict(config.tokens)
    env = config.tokens_env
    raw = (os.environ if environ is None else environ).get(env, "")
    if not raw:
        return tokens
    import json  # (only a command given tokens in the environment parses JSON)

    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(
            f"${env} must be JSON like "
            '{"<token>": {"user_id": "u1", "admin": false}}: ' + type(exc).__name__
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f'${env} must be a JSON object like {{"<token>": {{"user_id": "u1"}}}}, '
            f"not a {type(data).__name__}"
        )
    for n, token in enumerate(data, 1):
        check_token(token, f"${env} entry {n}")
    tokens.update(_coerce(data, dict[str, TokenConfig], f"${env}"))
    return tokens


@dataclass(frozen=True, slots=True)
class AgentConfig:
    store_settings: StoreSettings = field(default_factory=StoreSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    store: StoreConfig = field(default_factory=StoreConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    """``[pricing]``: what each model costs (see :mod:`starpod_cron.pricing`)."""
    destinations: Destinations = field(default_factory=Destinations)
    """``[destinations.NAME]`` and ``[cron] alerts_to`` (see :mod:`starpod_cron.destinations`)."""
    configured: frozenset[str] = frozenset()
    """The sections present in the file (``executor`` absent means the demo default)."""
    base_dir: Path | None = None
    """The directory of the file: a ``python`` executor target is imported from there too."""
    jobs: tuple[dict[str, Any], ...] = ()
    """The ``[[jobs]]`` tables: jobs declared in this file (see :mod:`starpod_cron.declared`)."""
    job_modules: tuple[str, ...] = ()
    """``[cron] job_modules``: modules whose decorated functions declare jobs."""
    source: str = "agent.toml"
    """The file read (errors found later, such as a job module that does not import, name it)."""


_SECTIONS: dict[str, type[Any]] = {
    "store": StoreConfig,
    "executor": ExecutorConfig,
    "gateway": GatewayConfig,
    "telegram": TelegramConfig,
    "maintenance": MaintenanceConfig,
    "logging": LoggingConfig,
}
_CRON_RENAMES = {"timezone": "default_timezone"}


Overlay = Callable[[dict[str, Any]], None]
"""Changes the file's tables before they are read (the environment: envconfig.py)."""


def load_config(path: str | Path, *, overlay: Overlay | None = None) -> AgentConfig:
    """Read and validate ``agent.toml`` at ``path``; raises ConfigError naming the problem."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {p} is not UTF-8 text: {exc}") from exc
    config = parse_config(text, source=str(p), overlay=overlay)
    return dataclasses.replace(config, base_dir=p.resolve().parent)


def parse_config(
    text: str, *, source: str = "agent.toml", overlay: Overlay | None = None
) -> AgentConfig:
    data: dict[str, Any] = {}
    if text.strip():  # only a command that reads a file pays for the parser
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: invalid TOML: {exc}") from exc
    if overlay is not None:
        overlay(data)
    known = ["cron", "pricing", "destinations", *_SECTIONS]
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
    values["destinations"] = parse_destinations(
        data.get("destinations", {}), cron.pop("alerts_to", []), source, _section
    )
    check_declared(values["destinations"], declared, source)
    if "pricing" in data:
        values["pricing"] = parse_pricing(data["pricing"], f"{source} [pricing]", _section)
    values["jobs"] = tuple(declared)
    values["job_modules"] = tuple(modules)
    store = dict(data.get("store", {}))
    if "synchronous" in store:
        store_keys["synchronous"] = store.pop("synchronous")
    values.update(_cron(cron, store_keys, f"{source} [cron]"))
    # checked when the file is read (as the store checks a new job), so every command
    # refuses a bad [[jobs]] table, not only serve and jobs sync
    if values["jobs"]:  # (declared.py, with the job fields, loads only for a file with jobs)
        from .declared import from_config

        from_config(values["jobs"], source, values["store_settings"])
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
    configured = frozenset(data) | ({"jobs"} if declared else set())
    return AgentConfig(**values, configured=configured, source=source)


def _cron(cron: dict[str, Any], store_keys: dict[str, Any], where: str) -> dict[str, Any]:
    """``[cron]`` split between StoreSettings and SchedulerSettings by field name."""
    store_fields = {f.name for f in fields(StoreSettings)}
    store_fields -= {"synchronous", "default_timezone", "spend"}
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
    check_kind_keys(ExecutorConfig, values, where, values.get("kind", "echo"), {})


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


section_of = _section
"""A settings table read into its dataclass (for sections parsed in their own module)."""


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {type(value).__name__}")
        if isinstance(item, type) and dataclasses.is_dataclass(item):
            # entries are named by position: a key may be a secret (a gateway token)
            for n, sub in enumerate(value.values(), 1):
                if not isinstance(sub, dict):
                    raise ConfigError(f"{where} entry {n}: expected a table")
            return {
                str(k): _section(item, v, f"{where} entry {n}")
                for n, (k, v) in enumerate(value.items(), 1)
            }
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
