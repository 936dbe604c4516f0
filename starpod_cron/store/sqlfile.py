"""Load SQL kept as SQL: named blocks (``-- name: claim_due``) with ``:name`` parameters, and
numbered migrations.

A dialect's queries are ``sql/common.sql`` (written once, the same in every dialect) plus
``sql/<dialect>.sql`` (only what really differs: locking, lists, bulk writes); a name in both
is an error. A block whose body is only comments is a statement the dialect does not need (an
advisory lock where SQLite's single writer already serializes): it is skipped.

``{job_columns}``-style templates expand to the column lists of :mod:`.records` (the single
source of the column order), so adding a column needs no edit here or in the SQL files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from importlib import resources

from .batches import DELIVERY_INSERT_COLUMNS
from .briefs import BRIEF_COLUMNS
from .budgets import SPEND_COLUMNS
from .records import (
    DELIVERY_COLUMNS,
    JOB_COLUMNS,
    JOB_RUNTIME_COLUMNS,
    JOB_STATE_COLUMNS,
    RUN_COLUMNS,
    RUN_RESULT_COLUMNS,
)

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\w+)_(\d{4})_\w+\.sql$")
_PARAM = re.compile(r"'(?:[^']|'')*'|(?<![:\w]):([A-Za-z_]\w*)")
"""A string literal (kept as it is) or a ``:name`` parameter (never the ``::`` of a cast)."""

_COLUMN_LISTS: dict[str, Sequence[str]] = {
    "job": JOB_COLUMNS,
    "job_state": JOB_STATE_COLUMNS,
    "job_runtime": JOB_RUNTIME_COLUMNS,
    "job_brief": BRIEF_COLUMNS,
    "run": RUN_COLUMNS,
    "run_result": RUN_RESULT_COLUMNS,
    "delivery": DELIVERY_COLUMNS,
    "delivery_insert": DELIVERY_INSERT_COLUMNS,
    "spend": SPEND_COLUMNS,
}


def templates() -> dict[str, str]:
    """For each column list X of :mod:`.records`: ``{X_columns}`` (``a, b``), ``{X_values}``
    (``:a, :b``), ``{X_assign}`` (``a = :a, b = :b``) and ``{X_assign_v}`` (``a = v.a``, the
    SET of an UPDATE from ``unnest(...) AS v``)."""
    found: dict[str, str] = {}
    for key, columns in _COLUMN_LISTS.items():
        found[f"{key}_columns"] = ", ".join(columns)
        found[f"{key}_values"] = ", ".join(f":{c}" for c in columns)
        found[f"{key}_assign"] = ", ".join(f"{c} = :{c}" for c in columns)
        found[f"{key}_assign_v"] = ", ".join(f"{c} = v.{c}" for c in columns)
    found["delivery_columns_qualified"] = ", ".join(f"deliveries.{c}" for c in DELIVERY_COLUMNS)
    return found


def _read(filename: str) -> str:
    return resources.files(__package__ + ".sql").joinpath(filename).read_text("utf-8")


def _blocks(filename: str) -> dict[str, str]:
    parts = _NAME.split(_read(filename))
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _statement(body: str) -> str:
    """``body`` without its comment lines (they are for readers of the file)."""
    return "\n".join(ln for ln in body.splitlines() if not ln.lstrip().startswith("--")).strip()


def load_queries(dialect: str) -> dict[str, str | None]:
    """The queries of ``dialect`` by name, templates expanded; None for a block the dialect
    does not need."""
    common, own = _blocks("common.sql"), _blocks(f"{dialect}.sql")
    twice = sorted(set(common) & set(own))
    if twice:
        raise ValueError(f"queries in both common.sql and {dialect}.sql: {', '.join(twice)}")
    subs = templates()
    found: dict[str, str | None] = {}
    for name, body in {**common, **own}.items():
        statement = _statement(body)
        found[name] = statement.format(**subs) if statement else None
    return found


def parameters(sql: str, number: Callable[[str], str]) -> str:
    """``sql`` with each ``:name`` parameter replaced by ``number(name)`` (string literals and
    ``::casts`` untouched)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return match.group(0) if name is None else number(name)

    return _PARAM.sub(replace, sql)


def parameter_names(sql: str) -> list[str]:
    """The ``:name`` parameters of ``sql``, each once, in order of first appearance."""
    names: list[str] = []
    for match in _PARAM.finditer(sql):
        name = match.group(1)
        if name is not None and name not in names:
            names.append(name)
    return names


def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """``(version, script)`` of ``<dialect>_NNNN_*.sql``, in version order."""
    found: list[tuple[int, str]] = []
    for entry in resources.files(__package__ + ".sql").iterdir():
        match = _MIGRATION.match(entry.name)
        if match and match.group(1) == dialect:
            found.append((int(match.group(2)), entry.read_text("utf-8")))
    found.sort()
    return found
