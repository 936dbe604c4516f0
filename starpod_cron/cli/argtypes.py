"""Argument types of the command line that need nothing of the library (the parser imports
them at start-up)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

WHOLE = re.compile(r"-?[0-9]{1,4000}")  # int() refuses longer digit strings


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not WHOLE.fullmatch(text):  # ASCII digits only: int() would take "١٢" and " 1_2"
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse
