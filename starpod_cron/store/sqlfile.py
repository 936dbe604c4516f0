"""Load SQL kept as SQL: named blocks (``-- name: claim_due``) and numbered migrations."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\w+)_(\d{4})_\w+\.sql$")


def _read(filename: str) -> str:
    return resources.files(__package__ + ".sql").joinpath(filename).read_text("utf-8")


def load_queries(filename: str, **substitutions: str) -> dict[str, str]:
    """The named blocks of ``filename`` with ``{placeholders}`` substituted."""
    parts = _NAME.split(_read(filename))
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        queries[name] = body.strip().format(**substitutions)
    return queries


def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """``(version, script)`` of ``<dialect>_NNNN_*.sql``, in version order."""
    found: list[tuple[int, str]] = []
    for entry in resources.files(__package__ + ".sql").iterdir():
        match = _MIGRATION.match(entry.name)
        if match and match.group(1) == dialect:
            found.append((int(match.group(2)), entry.read_text("utf-8")))
    found.sort()
    return found
