"""Ids of jobs, runs and sessions: time-ordered (UUIDv7-style), so a claim that visits jobs in
id order and inserts their runs writes the id indexes at their ends, not on random pages.

An id is 32 lowercase hex characters (a UUID's 128 bits without dashes), laid out as RFC 9562
version 7 with a dedicated counter (its "method 1"):

    48 bits   milliseconds since the epoch (the store's clock)
     4 bits   version 7
    12 bits   counter, high part
     2 bits   variant (binary 10)
    30 bits   counter, low part
    32 bits   random

The 42-bit counter starts at a random value below 2**41 in each new millisecond and counts up
by one per id in it, so ids made in one millisecond by one process sort in the order they were
made (the headroom of 2**41 means it never overflows in practice; if it did, the id borrows the
next millisecond). A clock that steps back reuses the last millisecond seen, so ids of a process
never go backwards. Ids made before this layout (48 bits of time then 80 random bits) are still
valid ids: they have the same shape and sort by their millisecond the same way.

The bits come from the process's PRNG (re-seeded after ``fork``), not ``os.urandom``: ids are
not secrets, and ``os.urandom`` releases and re-takes the GIL on every call, which starved the
event loop for hundreds of milliseconds while the store's thread planned a large claim.
"""

from __future__ import annotations

import os
import random
import threading

_COUNTER_BITS = 42
_COUNTER_LOW_BITS = 30
_COUNTER_START = 1 << (_COUNTER_BITS - 1)  # a new millisecond's counter starts below this
_COUNTER_END = 1 << _COUNTER_BITS
_MS_MASK = (1 << 48) - 1
_LOW_MASK = (1 << _COUNTER_LOW_BITS) - 1
_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62


class _Sequence:
    """The last millisecond and counter handed out by this process (every store's thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ms = -1
        self.counter = 0

    def next(self, now_ms: int) -> tuple[int, int]:
        with self.lock:
            if now_ms > self.ms:
                self.ms, self.counter = now_ms, random.getrandbits(_COUNTER_BITS - 1)
            else:
                self.counter += 1
                if self.counter >= _COUNTER_END:
                    self.ms, self.counter = self.ms + 1, random.getrandbits(_COUNTER_BITS - 1)
            return self.ms, self.counter


_sequence = _Sequence()


def _after_fork() -> None:
    global _sequence
    _sequence = _Sequence()  # the parent's lock may have been held by one of its threads


os.register_at_fork(after_in_child=_after_fork)


def new_id(now_ms: int) -> str:
    """A new id at ``now_ms`` (epoch ms): later than every id this process made before."""
    ms, counter = _sequence.next(now_ms & _MS_MASK)
    value = (
        (ms & _MS_MASK) << 80
        | _VERSION
        | (counter >> _COUNTER_LOW_BITS) << 64
        | _VARIANT
        | (counter & _LOW_MASK) << 32
        | random.getrandbits(32)
    )
    return f"{value:032x}"
