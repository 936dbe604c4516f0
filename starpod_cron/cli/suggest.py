""" "Did you mean ...?" for a mistyped command, choice or job name (difflib's close matches)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

MAX_SUGGESTIONS = 3


def close_matches(word: str, known: Iterable[str]) -> list[str]:
    """The known words closest to ``word``, best first (none when nothing is close)."""
    return difflib.get_close_matches(word, list(known), n=MAX_SUGGESTIONS, cutoff=0.6)


def did_you_mean(word: str, known: Iterable[str]) -> str | None:
    """``did you mean 'list'?`` (or ``'list' or 'lost'``), or None when nothing is close."""
    matches = close_matches(word, known)
    if not matches:
        return None
    return "did you mean " + " or ".join(repr(m) for m in matches) + "?"
