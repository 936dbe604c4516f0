"""Rendering: the ``--json`` envelope, tables (rich on a terminal, plain text otherwise), and
times in a job's zone with its offset (schedules in words come from :mod:`starpod_cron.views`)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TextIO

from ..timeutil import zone
from ..views import local

__all__ = ["local"]  # kept here for the CLI's modules

ArtifactType = Literal["table", "presentation_card", "text"]
RICH_ROW_LIMIT = 500  # larger tables print plain: rich takes seconds for 10,000 rows


@dataclass
class Output:
    """One command's result: ``data`` for ``--json``, ``rows``/``fields``/``text`` for people."""

    data: dict[str, Any]
    artifact_type: ArtifactType
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""
    header: str = ""
    exit_code: int = 0

    def envelope(self) -> str:
        return json.dumps(
            {"data": self.data, "artifact_type": self.artifact_type, "title": self.title},
            ensure_ascii=False,
            indent=2,
        )


def emit(output: Output, *, as_json: bool, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    if as_json:
        out.write(output.envelope() + "\n")
        return
    terminal = out.isatty()
    if output.header:
        out.write(output.header + "\n")
    if output.columns:
        if terminal and len(output.rows) <= RICH_ROW_LIMIT:
            _rich_table(output, out)
        else:
            out.write(plain_table(output.columns, output.rows))
    if output.fields:
        width = max(len(k) for k, _ in output.fields)
        for key, value in output.fields:
            first, *more = value.splitlines() or [""]
            out.write(f"{key.ljust(width)}  {first}\n")
            for line in more:
                out.write(f"{' ' * width}  {line}\n")
    if output.text:
        out.write(output.text.rstrip("\n") + "\n")


def plain_table(columns: list[str], rows: list[list[str]]) -> str:
    """Columns aligned with spaces; no colour, no box characters (safe for pipes and grep)."""
    cells = [columns, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def _rich_table(output: Output, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=output.title, title_justify="left", header_style="bold")
    for column in output.columns:
        table.add_column(column, overflow="fold")
    for row in output.rows:
        table.add_row(*row)
    Console(file=out, highlight=False).print(table)


# ---------------------------------------------------------------------------------- times
def iso(dt: datetime | None, tz_name: str) -> str | None:
    """ISO 8601 in ``tz_name`` with its offset (for JSON)."""
    return None if dt is None else dt.astimezone(zone(tz_name)).isoformat()


def relative(dt: datetime | None, now: datetime) -> str:
    """``in 3m``, ``2h ago``, ``now``: the largest unit or two."""
    if dt is None:
        return ""
    seconds = round((dt - now).total_seconds())
    if abs(seconds) < 1:
        return "now"
    rest = abs(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    text = "".join(parts)
    return f"in {text}" if seconds > 0 else f"{text} ago"


def when(dt: datetime | None, tz_name: str, now: datetime) -> str:
    if dt is None:
        return "-"
    return f"{local(dt, tz_name)} ({relative(dt, now)})"


# ------------------------------------------------------------------------------- words
def tokens(prompt: int | None, completion: int | None) -> str:
    """``1,204 in / 310 out``, or ``-`` when the model reported none."""
    if prompt is None and completion is None:
        return "-"
    return f"{prompt or 0:,} in / {completion or 0:,} out"


def ms(value: int | None) -> str:
    """``812 ms``, or ``-`` for none."""
    return "-" if value is None else f"{value} ms"


def one_line(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
