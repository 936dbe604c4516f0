"""What every front end (HTTP, WebSocket, MCP, Telegram, CLI, ``agent.toml``) accepts as text
and as a number, checked in one place so that each of them answers bad input the same way:
an :class:`~starpod_cron.errors.InvalidInput` whose message says what to change, before
anything is written.

- Text is Unicode that can be stored and sent back: no lone surrogate (``"\\ud800"``, which
  JSON can carry as an escape and Python's ``surrogateescape`` makes of a non-UTF-8 byte in
  argv) and no NUL (PostgreSQL text cannot hold it). Messages never echo the bad text raw.
- Whole numbers typed as text use ASCII digits only (``"12"``; not ``"²"``, ``"١٢"``, ``"1_0"``
  or ``" 1"``) and are bounded.
- A job name is 1 to :data:`MAX_NAME_CHARS` characters, without leading or trailing
  whitespace, ``/``, ``\\``, control characters (tabs, newlines, NUL, line separators,
  bidirectional overrides) or the shape of a job id: see :func:`name_problem`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from .errors import InvalidInput

MAX_NAME_CHARS = 200
MAX_DEPTH = 20
_WHOLE = re.compile(r"[0-9]{1,18}")
_ID_LIKE = re.compile(r"[0-9a-f]{32}")
_NAME_SEPARATORS = frozenset("/\\")
_SEPARATOR = re.compile(r"[/\\]")
# categories that are never part of a name: controls, lone surrogates, line and paragraph
# separators; plus the bidirectional embeddings, overrides and isolates (which reorder how a
# name is shown: U+202A-U+202E, U+2066-U+2069)
_NAME_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
NAME_RULE = (
    f"a job name is 1 to {MAX_NAME_CHARS} characters, without leading or trailing spaces, "
    "'/', '\\' or control characters"
)


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored or sent back as text, or None when it can."""
    found = _UNSTORABLE.search(value)  # one scan in C: a prompt is checked on every add
    if found is None:
        return None
    index, ch = found.start(), found.group()
    if ch == "\x00":
        return f"contains a NUL character (U+0000) at position {index}; text cannot hold NUL"
    return (
        f"contains a lone surrogate (U+{ord(ch):04X}) at position {index}, which is "
        "not valid Unicode text (send UTF-8)"
    )


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_text(field: str, value: str) -> str:
    """``value`` if it is storable text; else InvalidInput naming ``field``."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidInput(f"{field} {problem}")
    return value


def check_all_text(field: str, value: object, depth: int = 0) -> None:
    """Every string in a JSON-like ``value`` (keys included) is storable text; InvalidInput
    naming the field (never echoing the bad text) otherwise."""
    if depth > MAX_DEPTH:
        raise InvalidInput(f"{field} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        check_text(field, value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and text_problem(key) is not None:
                raise InvalidInput(f"a field name in {field} {text_problem(key)}")
            check_all_text(key if depth == 0 and isinstance(key, str) else field, item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            check_all_text(field, item, depth + 1)


def whole_number(field: str, text: str, low: int, high: int) -> int:
    """A whole number typed as text, in ASCII digits, from ``low`` to ``high``."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text) or not low <= int(text) <= high:
        raise InvalidInput(
            f"{field} must be a whole number from {low} to {high}, written in the digits 0-9"
        )
    return int(text)


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot name a new job, or None when it can (see :data:`NAME_RULE`).
    Names appear in URLs (``/api/jobs/<name>``), chat commands and terminal tables, so a
    name holds nothing that would cut a path, hide or reorder what is shown."""
    if not value.strip():
        return "job name is empty; " + NAME_RULE
    if len(value) > MAX_NAME_CHARS:
        return f"job name is {len(value)} characters; the limit is {MAX_NAME_CHARS}"
    problem = text_problem(value)
    if problem is not None:
        return "job name " + problem
    if value != value.strip():
        return f"job name {value!r} has leading or trailing whitespace; " + NAME_RULE
    if value.isascii() and value.isprintable():  # no control or bidi character: one scan
        separator = _SEPARATOR.search(value)
        if separator is not None:
            return f"job name {value!r} contains {separator.group()!r}; " + NAME_RULE
    else:
        for ch in value:
            if ch in _NAME_SEPARATORS:
                return f"job name {value!r} contains {ch!r}; " + NAME_RULE
            if unicodedata.category(ch) in _NAME_REFUSED_CATEGORIES or ch in _BIDI_CONTROLS:
                return (
                    f"job name {value!r} contains the control character U+{ord(ch):04X}; "
                    + NAME_RULE
                )
    if _ID_LIKE.fullmatch(value):
        return f"job name {value!r} looks like a job id (32 hex digits); choose another name"
    return None
