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

import importlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\w+)_(\d{4})_\w+\.sql$")
_PARAM = re.compile(r"'(?:[^']|'')*'|(?<![:\w]):([A-Za-z_]\w*)")
"""A string literal (kept as it is) or a ``:name`` parameter (never the ``::`` of a cast)."""

_COLUMN_LISTS: dict[str, tuple[str, str]] = {
    "job": ("records", "JOB_COLUMNS"),
    "job_state": ("records", "JOB_STATE_COLUMNS"),
    "job_runtime": ("records", "JOB_RUNTIME_COLUMNS"),
    "job_add": ("records", "JOB_ADD_COLUMNS"),
    "job_brief": ("briefs", "BRIEF_COLUMNS"),
    "run": ("records", "RUN_COLUMNS"),
    "run_result": ("records", "RUN_RESULT_COLUMNS"),
    "run_start": ("records", "RUN_START_COLUMNS"),
    "delivery": ("records", "DELIVERY_COLUMNS"),
    "delivery_insert": ("batches", "DELIVERY_INSERT_COLUMNS"),
    "spend": ("budgets", "SPEND_COLUMNS"),
}
"""Each column list X: the module of this package holding it and its name there (imported
when a query uses it: the queries of a listing need no more than the briefs' columns)."""
_FORMS: dict[str, Callable[[str], str]] = {
    "_assign_v": lambda c: f"{c} = v.{c}",
    "_assign": lambda c: f"{c} = :{c}",
    "_values": lambda c: f":{c}",
    "_columns": lambda c: c,
}
"""The template suffixes, the longest first (``_assign_v`` before ``_assign``)."""


def columns(key: str) -> Sequence[str]:
    """The column list ``key`` (``job``, ``run_result``, ...) of :data:`_COLUMN_LISTS`."""
    module, name = _COLUMN_LISTS[key]
    found: Sequence[str] = getattr(importlib.import_module(f".{module}", __package__), name)
    return found


class _Templates(dict[str, str]):
    """The templates, each made when a query first names it."""

    def __missing__(self, template: str) -> str:
        if template == "delivery_columns_qualified":
            text = ", ".join(f"deliveries.{c}" for c in columns("delivery"))
        else:
            suffix = next((s for s in _FORMS if template.endswith(s)), None)
            key = template.removesuffix(suffix) if suffix else template
            if suffix is None or key not in _COLUMN_LISTS:
                raise KeyError(template)
            text = ", ".join(_FORMS[suffix](c) for c in columns(key))
        self[template] = text
        return text


_TEMPLATES = _Templates()


def templates() -> dict[str, str]:
    """For each column list X of :mod:`.records`: ``{X_columns}`` (``a, b``), ``{X_values}``
    (``:a, :b``), ``{X_assign}`` (``a = :a, b = :b``) and ``{X_assign_v}`` (``a = v.a``, the
    SET of an UPDATE from ``unnest(...) AS v``)."""
    names = [f"{key}{suffix}" for key in _COLUMN_LISTS for suffix in reversed(_FORMS)]
    return {name: _TEMPLATES[name] for name in [*names, "delivery_columns_qualified"]}


class Queries(Mapping[str, str | None]):
    """A dialect's queries by name: each statement's templates are expanded on its first use
    (a command that runs one query loads only the column lists that query names)."""

    def __init__(self, statements: dict[str, str]) -> None:
        self._statements = statements
        self._expanded: dict[str, str | None] = {}

    def __getitem__(self, name: str) -> str | None:
        try:
            return self._expanded[name]
        except KeyError:
            statement = self._statements[name]
            sql = self._expanded[name] = statement.format_map(_TEMPLATES) if statement else None
            return sql

    def __iter__(self) -> Iterator[str]:
        return iter(self._statements)

    def __len__(self) -> int:
        return len(self._statements)


def _read(filename: str) -> str:
    return resources.files(__package__ + ".sql").joinpath(filename).read_text("utf-8")


def _blocks(filename: str) -> dict[str, str]:
    parts = _NAME.split(_read(filename))
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def _statement(body: str) -> str:
    """``body`` without its comment lines (they are for readers of the file)."""
    return "\n".join(ln for ln in body.splitlines() if not ln.lstrip().startswith("--")).strip()


def load_queries(dialect: str) -> Queries:
    """The queries of ``dialect`` by name, templates expanded (on first use); None for a
    block the dialect does not need."""
    common, own = _blocks("common.sql"), _blocks(f"{dialect}.sql")
    twice = sorted(set(common) & set(own))
    if twice:
        raise ValueError(f"queries in both common.sql and {dialect}.sql: {', '.join(twice)}")
    return Queries({name: _statement(body) for name, body in {**common, **own}.items()})


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
