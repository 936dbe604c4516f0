"""Every key of the fixed sections of ``agent.toml``, read from the settings dataclasses (never
listed by hand): its section and name, its type, default, bounds and description (the
dataclass's attribute docstring or comment), the environment variable that sets it and where
its effective value lives in :class:`~starpod_cron.config.AgentConfig`.

Used by the environment overlay (:mod:`starpod_cron.envconfig`), ``starpod-cron config`` and
the generated reference (:mod:`starpod_cron.configdoc`).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any

from .bounds import Each, Identity, Within
from .config import (
    AgentConfig,
    ExecutorConfig,
    GatewayConfig,
    MaintenanceConfig,
    StoreConfig,
    TelegramConfig,
)
from .logformat import LoggingConfig
from .pricing import PricingConfig
from .settings import SchedulerSettings, StoreSettings

ENV_PREFIX = "STARPOD_"
SECTIONS = ("cron", "store", "executor", "gateway", "telegram", "maintenance", "logging", "pricing")
"""The fixed sections :func:`config_keys` reads, in its order (a variable of the environment
that starts with none of their ``STARPOD_<SECTION>_`` prefixes sets no key)."""
SECRET_KEYS = frozenset({("telegram", "token"), ("gateway", "tokens")})
"""Keys whose values are never shown (``starpod-cron config`` prints ``"***"``)."""


@dataclass(frozen=True, slots=True)
class Key:
    section: str
    name: str
    declared: Any
    """The key's type as given with it (else :attr:`hint` reads it from ``owner``)."""
    default: Any
    note: str
    """The description given with the key (else :attr:`doc` reads it from ``owner``)."""
    rule: Any
    attr: str | None
    """The AgentConfig attribute holding the value's dataclass (None: AgentConfig itself)."""
    field: str
    owner: type[Any] | None = None
    """The settings dataclass declaring the key, whose source holds its description."""

    @property
    def hint(self) -> Any:
        """The key's type: its field's annotation, evaluated when first asked (the overlay of
        an environment without configuration variables asks none)."""
        if self.owner is None:
            return self.declared
        if self.owner not in _HINTS:
            _HINTS[self.owner] = typing.get_type_hints(self.owner)
        return _HINTS[self.owner][self.field]

    @property
    def doc(self) -> str:
        """The key's description: the attribute docstring or comment of its field (read from
        the source only when asked: the environment overlay of every command needs none)."""
        if self.note or self.owner is None:
            return self.note
        if self.owner not in _DOCS:
            _DOCS[self.owner] = _docs(self.owner)
        return _DOCS[self.owner].get(self.field, "")

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section.upper()}_{self.name.upper()}"

    @property
    def secret(self) -> bool:
        return (self.section, self.name) in SECRET_KEYS

    @property
    def table(self) -> bool:
        return typing.get_origin(self.hint) is dict

    def value(self, config: AgentConfig) -> Any:
        holder = config if self.attr is None else getattr(config, self.attr)
        return getattr(holder, self.field)


_HINTS: dict[type[Any], dict[str, Any]] = {}
"""The evaluated annotations of each settings class, read once."""
_DOCS: dict[type[Any], dict[str, str]] = {}
"""The descriptions of each settings class's fields, read once."""


def _docs(cls: type[Any]) -> dict[str, str]:
    """Each field's attribute docstring, else its comment (same line or the lines above)."""
    import ast  # (the parsers load only for the commands that show descriptions)
    import inspect
    import io
    import textwrap
    import tokenize

    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}
    alone: set[int] = set()  # lines that are only a comment
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
            if tok.line.lstrip().startswith("#"):
                alone.add(tok.start[0])
    body = typing.cast(ast.ClassDef, ast.parse(source).body[0]).body
    docs: dict[str, str] = {}
    for n, stmt in enumerate(body):
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            continue
        after = body[n + 1] if n + 1 < len(body) else None
        text = ""
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            text = str(after.value.value)
        else:
            end = stmt.end_lineno or stmt.lineno
            inline = [comments[i] for i in range(stmt.lineno, end + 1) if i in comments]
            inline = [c for c in inline if not c.startswith("noqa")]
            above: list[str] = []
            line = stmt.lineno - 1
            while line in alone:
                above.insert(0, comments[line])
                line -= 1
            text = " ".join(above + inline)
        docs[stmt.target.id] = " ".join(text.split())
    return docs


def _keys(
    section: str,
    cls: type[Any],
    attr: str | None,
    skip: frozenset[str] = frozenset(),
    renames: dict[str, str] | None = None,
) -> list[Key]:
    out = []
    names = {v: k for k, v in (renames or {}).items()}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:  # pragma: no cover - every fixed-section key has a default
            default = None
        out.append(
            Key(
                section,
                names.get(f.name, f.name),
                None,
                default,
                "",
                f.metadata.get("rule"),
                attr,
                f.name,
                cls,
            )
        )
    return out


@functools.cache
def config_keys() -> tuple[Key, ...]:
    """Every key of ``[cron]``, ``[store]``, ``[executor]``, ``[gateway]``, ``[telegram]``,
    ``[maintenance]``, ``[logging]`` and ``[pricing] default_output_tokens``."""
    store_only = frozenset({"synchronous", "spend"})
    keys = [
        *_keys(
            "cron", StoreSettings, "store_settings", store_only, {"timezone": "default_timezone"}
        ),
        *_keys("cron", SchedulerSettings, "scheduler"),
        Key(
            "cron",
            "job_modules",
            tuple[str, ...],
            (),
            "Modules whose decorated functions declare jobs.",
            None,
            None,
            "job_modules",
        ),
        Key(
            "cron",
            "alerts_to",
            tuple[str, ...],
            (),
            "Where failure and pause alerts of jobs without their own alerts_to go.",
            None,
            "destinations",
            "alerts_to",
        ),
        *_keys("store", StoreConfig, "store"),
        *[k for k in _keys("store", StoreSettings, "store_settings") if k.name == "synchronous"],
        *_keys("executor", ExecutorConfig, "executor"),
        *_keys("gateway", GatewayConfig, "gateway"),
        *_keys("telegram", TelegramConfig, "telegram"),
        *_keys("maintenance", MaintenanceConfig, "maintenance"),
        *_keys("logging", LoggingConfig, "logging"),
        *_keys("pricing", PricingConfig, "pricing", frozenset({"models"})),
    ]
    return tuple(keys)


def sections() -> dict[str, dict[str, Key]]:
    out: dict[str, dict[str, Key]] = {}
    for key in config_keys():
        out.setdefault(key.section, {})[key.name] = key
    return out


def type_words(hint: Any) -> str:
    """``int`` -> "integer", ``tuple[float, ...]`` -> "list of numbers", ..."""
    origin = typing.get_origin(hint)
    if origin is tuple:
        return f"list of {type_words(typing.get_args(hint)[0])}s"
    if origin is dict:
        return "table (JSON in the environment)"
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return f"{type_words(options[0])} (optional)"
    words = {int: "integer", float: "number", str: "string", bool: "boolean"}
    return words.get(hint, str(hint))


def rule_words(rule: Any) -> str:
    if isinstance(rule, Within):
        return rule.describe()
    if isinstance(rule, Each):
        return f"{rule.min_items}-{rule.max_items} items, each {rule.item.describe()}"
    if isinstance(rule, Identity):
        return f"not empty, at most {rule.max_chars} characters"
    return ""


def plain(value: Any) -> Any:
    """A setting's value as JSON would hold it (tuples as lists, dataclasses as objects)."""
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value
