"""Rendering: the ``--json`` envelope, tables (rich on a terminal, plain text otherwise), and
times in a job's zone with its offset (schedules in words come from :mod:`starpod_cron.views`).

On a terminal, output fits its width (``COLUMNS``, else the terminal's): tables fold or cut
their cells and lines wrap. Colour and bold only on a terminal, and never with ``NO_COLOR``
set (https://no-color.org). A table's rows may be an iterator: they are written as they come
(``jobs list`` of 100,000 jobs starts at once and holds no more than a sample in memory).
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from typing import Any, Literal, TextIO

from ..scheduletext import local
from ..timeutil import zone

__all__ = ["local"]  # kept here for the CLI's modules

ArtifactType = Literal["table", "presentation_card", "text"]
RICH_ROW_LIMIT = 500  # larger tables print plain: rich takes seconds for 10,000 rows
SAMPLE_ROWS = 1000
"""A streamed table's column widths come from its first rows (a later, longer cell is cut on
a terminal, and only lengthens its own line in a pipe)."""
MIN_COLUMN = 6
BATCH_LINES = 1000
"""A streamed table is written this many lines at a time."""
"""The narrowest a column is cut to when a table must fit a terminal."""


@dataclass
class Output:
    """One command's result: ``data`` for ``--json``, ``rows``/``fields``/``text`` for people."""

    data: dict[str, Any]
    artifact_type: ArtifactType
    title: str
    columns: list[str] = field(default_factory=list)
    rows: Iterable[list[str]] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""
    header: str = ""
    exit_code: int = 0

    def envelope(self) -> str:
        import json  # (a table needs no JSON)

        return json.dumps(
            {"data": self.data, "artifact_type": self.artifact_type, "title": self.title},
            ensure_ascii=False,
            indent=2,
        )


def no_color() -> bool:
    """``NO_COLOR`` set to anything but the empty string: no colour, no bold."""
    return bool(os.environ.get("NO_COLOR"))


def terminal_width(out: TextIO) -> int | None:
    """The width output must fit: ``COLUMNS`` or the terminal's, None when ``out`` is no
    terminal (a pipe or a file takes lines of any length)."""
    if not out.isatty():
        return None
    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return max(20, int(given))
    try:
        return max(20, os.get_terminal_size(out.fileno()).columns)
    except (OSError, ValueError):  # no size to be had (a stream without a descriptor)
        return 80


def emit(output: Output, *, as_json: bool, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    if as_json:
        out.write(output.envelope() + "\n")
        return
    width = terminal_width(out)
    if output.header:
        out.write(_wrapped(output.header, width) + "\n")
    if output.columns:
        rows = iter(output.rows)
        sample = list(islice(rows, SAMPLE_ROWS))
        if width is not None and len(sample) <= RICH_ROW_LIMIT:
            _rich_table(output.columns, sample, output.title, out, width)
        else:
            write_table(out, output.columns, chain(sample, rows), sample, width)
    if output.fields:
        key_width = max(len(k) for k, _ in output.fields)
        lines = []
        for key, value in output.fields:
            first, *more = value.splitlines() or [""]
            lines.append(f"{key.ljust(key_width)}  {first}")
            lines += [f"{' ' * key_width}  {line}" for line in more]
        out.write(_wrapped("\n".join(lines), width, indent=key_width + 2) + "\n")
    if output.text:
        out.write(_wrapped(output.text.rstrip("\n"), width) + "\n")


def _wrapped(text: str, width: int | None, indent: int = 0) -> str:
    """``text`` with each line longer than ``width`` wrapped (continued under ``indent``)."""
    if width is None:
        return text
    lines: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width:
            lines.append(line)
            continue
        lead = " " * min(indent or len(line) - len(line.lstrip(" ")), width // 2)
        lines += textwrap.wrap(
            line, width, subsequent_indent=lead, break_long_words=True, break_on_hyphens=False
        ) or [""]
    return "\n".join(lines)


def plain_table(columns: list[str], rows: list[list[str]], width: int | None = None) -> str:
    """Columns aligned with spaces; no colour, no box characters (safe for pipes and grep)."""
    lines: list[str] = []
    _write_lines(lines.append, columns, iter(rows), rows, width)
    return "".join(lines)


def write_table(
    out: TextIO,
    columns: list[str],
    rows: Iterator[list[str]],
    sample: list[list[str]],
    width: int | None,
) -> None:
    """Write a plain table row by row; widths from ``columns`` and ``sample`` (its first rows),
    cut to fit ``width`` when given."""
    _write_lines(out.write, columns, rows, sample, width)


def _write_lines(
    write: Any, columns: list[str], rows: Iterator[list[str]], sample: list[list[str]],
    width: int | None,
) -> None:  # fmt: skip
    widths = [max(len(r[i]) for r in [columns, *sample]) for i in range(len(columns))]
    if width is None:  # each cell padded to its column's width, the last one as it is
        pads = [f"{{:<{w}}}" if w else "{}" for w in widths[:-1]]
        line: Callable[..., str] = "  ".join([*pads, "{}"]).format
    else:
        widths = fit(widths, width)
        line = lambda *cells: "  ".join(map(_cut, cells, widths))  # noqa: E731
    lines: list[str] = []
    for row in chain([columns], rows):
        if len(row) != len(columns):
            raise ValueError(f"a row of {len(row)} cells in a table of {len(columns)} columns")
        lines.append(line(*row).rstrip())
        if len(lines) == BATCH_LINES:
            write("\n".join(lines) + "\n")
            lines.clear()
    if lines:
        write("\n".join(lines) + "\n")


def fit(widths: list[int], width: int) -> list[int]:
    """Column widths narrowed (the widest first, none below :data:`MIN_COLUMN`) so that a row
    with two spaces between cells fits ``width``."""
    fitted = list(widths)
    excess = sum(fitted) + 2 * (len(fitted) - 1) - width
    while excess > 0:
        widest = max(range(len(fitted)), key=fitted.__getitem__)
        if fitted[widest] <= MIN_COLUMN:
            break
        fitted[widest] -= 1
        excess -= 1
    return fitted


def _cut(cell: str, width: int) -> str:
    return cell.ljust(width) if len(cell) <= width else cell[: max(width - 1, 0)] + "…"


def _rich_table(
    columns: list[str], rows: list[list[str]], title: str, out: TextIO, width: int
) -> None:
    from rich.console import Console
    from rich.table import Table

    plain = no_color()
    table = Table(title=title, title_justify="left", header_style="" if plain else "bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = Console(
        file=out, highlight=False, width=width, color_system=None if plain else "auto"
    )
    console.print(table)


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


def at_time(dt: datetime | None, tz_name: str, now: datetime) -> str:
    """``2026-12-01 09:00:00 (in 3m)`` in ``tz_name``, without the offset: for a table's time
    column, whose header names the zone (one zone per column)."""
    if dt is None:
        return "-"
    return f"{dt.astimezone(zone(tz_name)):%Y-%m-%d %H:%M:%S} ({relative(dt, now)})"


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
