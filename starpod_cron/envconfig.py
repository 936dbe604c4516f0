"""The effective configuration: defaults, then ``agent.toml``, then the environment, then
command-line flags (each later one wins), and where each value came from.

Every key of the fixed sections (:mod:`starpod_cron.configkeys`) can be set as
``STARPOD_<SECTION>_<KEY>``; the value is read as TOML (``7``, ``true``, ``[1, 5]``,
``"text"``; a string key takes the text as it is). A table (``[gateway] tokens``) is JSON in
``STARPOD_<SECTION>_<TABLE>``. ``STARPOD_CONFIG`` names the file, ``STARPOD_DB`` is an alias of
``STARPOD_STORE_URL`` and ``STARPOD_LOG_FORMAT`` of ``STARPOD_LOGGING_FORMAT``. A variable that
starts like a section's (``STARPOD_CRON_``) but names no key is an error, unless it is one of
:data:`NON_CONFIG` or the name a ``*_env`` key points at.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import AgentConfig, load_config, parse_config
from .configkeys import ENV_PREFIX, SECTIONS, Key, config_keys, sections
from .errors import ConfigError

CONFIG_ENV = "STARPOD_CONFIG"
ALIASES = {"STARPOD_DB": "STARPOD_STORE_URL", "STARPOD_LOG_FORMAT": "STARPOD_LOGGING_FORMAT"}
"""Older or shorter names of a key's variable (the key's own name wins when both are set)."""
NON_CONFIG = {
    CONFIG_ENV: "the agent.toml to read (as --config)",
    "STARPOD_PG_DSN": "the PostgreSQL server of the test suite",
    "STARPOD_JOB_ID": "set for a command run: its job's id",
    "STARPOD_JOB_NAME": "set for a command run: its job's name",
    "STARPOD_RUN_ID": "set for a command run: the run's id",
    "STARPOD_ATTEMPT": "set for a command run: the attempt",
    "STARPOD_SESSION_ID": "set for a command run: its conversation",
    "STARPOD_PREVIOUS_AT": "set for a command run: when the last result was recorded",
    "STARPOD_PREVIOUS_RESULT": "set for a command run: the last result",
    "STARPOD_PREVIOUS_RESULT_FILE": "set for a command run: a file holding the last result",
    "STARPOD_FUZZ_EXAMPLES": "the test suite's fuzzing examples",
    "STARPOD_FUZZ_RANDOM": "the test suite's fuzzing seed",
}
"""Variables starting with ``STARPOD_`` that are not configuration keys."""
DEFAULT_FILE = "agent.toml"


@dataclass(frozen=True, slots=True)
class Effective:
    config: AgentConfig
    sources: dict[tuple[str, str], str] = field(default_factory=dict)
    """(section, key) -> "env NAME" / "file PATH" / "flag --x" (absent: the default)."""
    file: str | None = None

    def source(self, key: Key) -> str:
        return self.sources.get((key.section, key.name), "default")


def config_file(given: str | None, environ: Mapping[str, str]) -> str | None:
    """``--config``, else ``$STARPOD_CONFIG``, else ./agent.toml if present, else none."""
    if given:
        return given
    if environ.get(CONFIG_ENV):
        return environ[CONFIG_ENV]
    return DEFAULT_FILE if Path(DEFAULT_FILE).is_file() else None


def _pointed(data: Any) -> set[str]:
    """The variable names ``*_env`` keys name (an API key in $STARPOD_EXECUTOR_KEY is fine)."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if str(key).endswith("_env") and isinstance(value, str):
                found.add(value)
            found |= _pointed(value)
    elif isinstance(data, list):
        for item in data:
            found |= _pointed(item)
    return found


def _value(key: Key, name: str, raw: str) -> Any:
    if key.hint is str:
        return raw
    import tomllib  # (only a variable set to a TOML value pays for the parser)

    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        raise ConfigError(
            f"${name}: {raw!r} is not a TOML value; give it as in agent.toml, "
            'e.g. 7, 2.5, true, [1, 5] or "text"'
        ) from None


def env_values(
    environ: Mapping[str, str], data: dict[str, Any] | None = None
) -> dict[tuple[str, str], tuple[str, Any]]:
    """(section, key) -> (variable, value) for every configuration variable set; ConfigError
    names an unknown ``STARPOD_<SECTION>_...`` variable."""
    prefixes = tuple(f"{ENV_PREFIX}{s.upper()}_" for s in SECTIONS)
    if not any(name.startswith(prefixes) or name in ALIASES for name in environ):
        return {}  # none set (the keys need not be read)
    by_env = {key.env: key for key in config_keys()}
    allowed = set(NON_CONFIG) | set(ALIASES) | _pointed(data or {})
    found: dict[tuple[str, str], tuple[str, Any]] = {}
    for name in sorted(environ, key=lambda n: n in ALIASES):  # aliases last: the key wins
        raw = environ[name]
        key = by_env.get(ALIASES.get(name, name))
        if key is None:
            if name.startswith(prefixes) and name not in allowed:
                raise ConfigError(
                    f"${name} is not a configuration key (see starpod-cron config, or "
                    "docs/configuration.md, for the STARPOD_* variables)"
                )
            continue
        if key.table:  # read where the table is used (gateway.gateway_tokens, as JSON)
            found[(key.section, key.name)] = (name, None)
            continue
        if (key.section, key.name) not in found:
            found[(key.section, key.name)] = (name, _value(key, name, raw))
    return found


def load_effective(
    path: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    db: str | None = None,
    flags: Mapping[tuple[str, str], tuple[str, Any]] | None = None,
) -> Effective:
    """The configuration of a command: ``path`` (see :func:`config_file`) overlaid by the
    environment, then ``db`` (``--db``) and ``flags`` ((section, key) -> (flag, value))."""
    env = os.environ if environ is None else environ
    file = config_file(path, env)
    sources: dict[tuple[str, str], str] = {}
    applied: dict[tuple[str, str], str] = {}

    def overlay(data: dict[str, Any]) -> None:
        for section, table in data.items():
            if section in sections() and isinstance(table, dict):
                for name in table:
                    sources[(section, name)] = f"file {file}"
        for (section, name), (var, value) in env_values(env, data).items():
            sources[(section, name)] = f"env {var}"
            applied[(section, name)] = var
            if value is not None:
                table = data.setdefault(section, {})
                if isinstance(table, dict):
                    table[name] = value

    try:
        if file is None:
            config = parse_config("", source="the environment", overlay=overlay)
        else:
            config = load_config(file, overlay=overlay)
    except ConfigError as exc:
        raise ConfigError(_named(str(exc), applied)) from None
    extra = dict(flags or {})
    if db:
        extra[("store", "url")] = ("--db", db)
    for (section, name), (flag, value) in extra.items():
        if value is None:
            continue
        key = sections()[section][name]
        if key.attr is None:
            config = replace(config, **{key.field: value})
        else:
            updated = replace(getattr(config, key.attr), **{key.field: value})
            config = replace(config, **{key.attr: updated})
        sources[(section, name)] = f"flag {flag}"
    return Effective(config, sources, file)


def _named(message: str, applied: Mapping[tuple[str, str], str]) -> str:
    """A validation error about a key the environment set says which variable set it."""
    for (section, name), var in applied.items():
        if f"[{section}] {name}" in message or f"[{section}]: {name}" in message:
            return f"{message} (set by ${var})"
    return message
