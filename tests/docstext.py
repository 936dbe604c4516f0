"""The documentation as the tests read it: README.md, then every page of docs/ (sorted), so an
example runs and a table is checked wherever it lives (a section moved from the README into a
docs page keeps its heading, and its tests keep finding it)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_BREAK = "\n\n## (next page)\n\n"
"""Between pages: a heading, so a section read up to the next ``\n## `` ends with its page."""
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documentation() -> str:
    return PAGE_BREAK.join(page.read_text() for page in PAGES)
