"""The bounds of every setting, declared beside its field, checked in one place.

A settings dataclass gives each field a rule in its metadata and calls :func:`check_fields`
first thing in ``__post_init__``::

    max_concurrent_runs: int = field(default=4, metadata=whole(1, 1_000_000))
    tick_secs: float = field(default=30, metadata=within(0, 3600, above=True))
    retry_backoff_secs: tuple[float, ...] = field(default=(30,), metadata=each(0, WEEK))
    user_id: str = field(metadata=identity())

A value outside its bounds raises :class:`~starpod_cron.errors.ConfigError` naming the field
(``max_concurrent_runs: must be a whole number from 1 to 1000000, got 10``...);
``agent.toml`` loading prefixes the file and section. Numbers must be finite (TOML's ``inf`` and
``nan`` are refused); a field whose value is None (optional) is not checked. Rules that relate
two fields (``claim_ahead_secs`` shorter than ``lease_secs``) stay in ``__post_init__``.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import ConfigError

MINUTE, HOUR, DAY = 60, 3600, 86_400
WEEK, YEAR = 7 * DAY, 366 * DAY


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True, slots=True)
class Within:
    """A number from ``low`` to ``high`` (``low`` itself refused when ``above``)."""

    low: float
    high: float
    above: bool = False
    integer: bool = False
    note: str = ""
    """Said after the bound, e.g. ``"30 days"``."""

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        low, high = _num(self.low), _num(self.high)
        bound = f"greater than {low} and at most {high}" if self.above else f"from {low} to {high}"
        return f"{kind} {bound}" + (f" ({self.note})" if self.note else "")

    def check(self, name: str, value: object) -> None:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if self.integer and not isinstance(value, int):
            number = False
        if not number or not math.isfinite(value):  # type: ignore[arg-type]
            raise ConfigError(f"{name}: must be {self.describe()}, got {_shown(value)}")
        low_ok = value > self.low if self.above else value >= self.low  # type: ignore[operator]
        if not low_ok or value > self.high:  # type: ignore[operator]
            raise ConfigError(f"{name}: must be {self.describe()}, got {_shown(value)}")


@dataclass(frozen=True, slots=True)
class Each:
    """A list of ``min_items`` to ``max_items`` numbers, each :class:`Within` its bounds."""

    item: Within
    min_items: int = 1
    max_items: int = 100

    def check(self, name: str, value: object) -> None:
        if not isinstance(value, tuple):
            raise ConfigError(f"{name}: expected a list (a tuple in Python), got {_shown(value)}")
        if not self.min_items <= len(value) <= self.max_items:
            raise ConfigError(
                f"{name}: must be a list of {self.min_items} to {self.max_items} values, "
                f"got {len(value)}"
            )
        for item in value:
            self.item.check(name, item)


@dataclass(frozen=True, slots=True)
class Identity:
    """A name that identifies someone or something: not empty, no surrounding spaces, no
    control characters, at most ``max_chars``."""

    max_chars: int = 200

    def check(self, name: str, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{name}: must not be empty")
        if value != value.strip():
            raise ConfigError(f"{name}: must not begin or end with spaces")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
            raise ConfigError(f"{name}: must not contain control characters")
        if len(value) > self.max_chars:
            raise ConfigError(f"{name}: must be at most {self.max_chars} characters")


Rule = Within | Each | Identity


def within(low: float, high: float, *, above: bool = False, note: str = "") -> dict[str, Any]:
    """Field metadata: a number from ``low`` (exclusive when ``above``) to ``high``."""
    return {"rule": Within(low, high, above=above, note=note)}


def whole(low: int, high: int, *, note: str = "") -> dict[str, Any]:
    """Field metadata: a whole number from ``low`` to ``high``."""
    return {"rule": Within(low, high, integer=True, note=note)}


def each(
    low: float,
    high: float,
    *,
    above: bool = False,
    integer: bool = False,
    min_items: int = 1,
    max_items: int = 100,
) -> dict[str, Any]:
    """Field metadata: a list whose every item is from ``low`` to ``high``."""
    item = Within(low, high, above=above, integer=integer)
    return {"rule": Each(item, min_items, max_items)}


def identity(max_chars: int = 200) -> dict[str, Any]:
    """Field metadata: a non-empty name (see :class:`Identity`)."""
    return {"rule": Identity(max_chars)}


def check_fields(obj: Any) -> None:
    """Check every field of the dataclass ``obj`` that declares a rule; ConfigError names the
    first field out of bounds."""
    for f in fields(obj):
        rule: Rule | None = f.metadata.get("rule")
        value = getattr(obj, f.name)
        if rule is not None and value is not None:
            rule.check(f.name, value)


def rules(cls: type[Any]) -> dict[str, Rule]:
    """The declared rules of a settings class, by field name (for documentation and tests)."""
    return {f.name: f.metadata["rule"] for f in fields(cls) if "rule" in f.metadata}


def check_kind_keys(
    cls: type[Any], values: Mapping[str, Any], where: str, kind: object, shown: Mapping[str, str]
) -> None:
    """A table's keys that belong to other kinds (``metadata["kinds"]``) are errors: ``[executor]
    argv`` with ``kind = "openai"``, ``[destinations.x] url_env`` with ``kind = "webhook"``.
    ``shown`` names fields whose key in the file differs (``sender`` is ``from``)."""
    for f in fields(cls):
        kinds = f.metadata.get("kinds")
        if f.name in values and kinds and kind not in kinds:
            raise ConfigError(
                f"{where} {shown.get(f.name, f.name)}: applies to kind = "
                f"{' or '.join(repr(k) for k in kinds)}, not {kind!r}; remove it or change kind"
            )
