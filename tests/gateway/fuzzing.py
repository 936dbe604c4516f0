"""What the front-end fuzz tests send: arbitrary Unicode (lone surrogates, NUL, RTL marks and
bidirectional overrides, Unicode digits, line separators, strings at each limit and one past
it) in every argument of every tool, and a gateway node in a thread of its own so that
hypothesis (which is synchronous) can drive the real HTTP, WebSocket, MCP and Telegram front
ends. Shared by ``tests/gateway/test_fuzz_frontends.py`` and ``bench/fuzz_frontends.py``."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from hypothesis import strategies as st

from starpod_cron.tools import TOOLS

T = TypeVar("T")

SPECIAL = [
    "\ud800",  # lone surrogates: JSON can carry them escaped; argv makes them of bad bytes
    "\udcff",
    "\udfff",
    "\x00",
    "\u200f",  # right-to-left mark
    "\u200e",
    "\u202e",  # right-to-left override
    "\u2066",
    "\u2028",  # line separator
    "\ufeff",
    "\u3000",
    "/",
    "\\",
    "%2F",
    "..",
    "²",  # digits to isdigit(), not to people: "²", "١٢"
    "١٢",
    "٣",
    "１",
    " ",
    "\t",
    "\n",
    "'",
    '"',
    "@",
    "*",
    "😀",
    "é",
]
AT_LIMITS = [
    "x" * 200,  # job names
    "x" * 201,
    "x" * 1000,  # descriptions
    "x" * 1001,
    "x" * 4000,  # chat messages, the users' prompt limit
    "x" * 4001,
    "é" * (16 * 1024),  # big, still under a WebSocket frame
]
# every code point, lone surrogates included (hypothesis leaves out Cs unless told)
CHARS = st.characters(exclude_categories=[])
fuzz_text = st.one_of(
    st.text(CHARS, max_size=30),
    st.lists(st.sampled_from([*SPECIAL, *"aZ09:- "]), max_size=10).map("".join),
    st.sampled_from(AT_LIMITS),
)
short_text = fuzz_text.filter(lambda text: len(text) <= 1001)  # fits in a URL
VALID: dict[str, list[Any]] = {
    "name": ["keep", "new-job"],
    "rename": ["renamed"],
    "prompt": ["check the build"],
    "cron": ["0 9 * * 1-5", "*/5 * * * *"],
    "every": ["1h", "30m"],
    "at": ["2030-12-01 09:00", "tomorrow 9:00"],
    "in": ["20m"],
    "timezone": ["Europe/Rome", "UTC"],
    "expression": ["0 9 * * *"],
    "session_mode": ["isolated", "main"],
    "misfire_policy": ["run_once", "skip"],
    "overlap": ["skip", "queue", "allow"],
}
numbers = st.one_of(
    st.integers(),
    st.sampled_from([0, 1, 20, 200, 201, 1000, 1001, 2**63, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
)


def value_for(field: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value for ``field``: right in kind or valid sometimes, arbitrary text always."""
    kind = schema.get("type")
    valid = st.sampled_from(VALID[field]) if field in VALID else st.nothing()
    if kind == "string":
        return st.one_of(valid, fuzz_text, st.sampled_from(schema.get("enum", ["x"])))
    if kind in ("integer", "number"):
        return st.one_of(numbers, fuzz_text, st.booleans())
    if kind == "boolean":
        return st.one_of(st.booleans(), fuzz_text, numbers)
    return st.one_of(fuzz_text, numbers)


def arguments(tool: str) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments for ``tool``: its required fields (usually), any of its optional ones."""
    params = TOOLS[tool].parameters
    props: dict[str, Any] = params["properties"]
    required = set(params.get("required", []))
    return st.fixed_dictionaries(
        {},
        optional={name: value_for(name, schema) for name, schema in props.items()},
    ).flatmap(
        lambda extra: st.fixed_dictionaries(
            {name: value_for(name, props[name]) for name in required if name not in extra}
        ).map(lambda needed: {**needed, **extra})
    )


def json_text(value: Any) -> str:
    """``value`` as JSON text that any client could send: lone surrogates as ``\\udXXX``
    escapes (valid JSON; no UTF-8 encoder can carry them raw)."""
    text = json.dumps(value, ensure_ascii=False)
    return re.sub(r"[\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text)


class LoopThread:
    """An event loop in a thread of its own; :meth:`run` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop")
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
