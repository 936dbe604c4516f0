"""The time every node agrees on: the database's.

Leases, leadership, heartbeats and "is it due" compare times written by different nodes, so
they must come from one clock. :class:`DatabaseClock` is the store clock ``serve`` uses: at
each :meth:`~DatabaseClock.sync` (every scheduler pass) it reads the database server's clock
(PostgreSQL ``clock_timestamp()``; SQLite: this machine's clock, read through SQLite) and from
then on counts from it with the monotonic clock, so a node's wall clock that is off, or jumps
(a VM resumed, an NTP step, a person with ``date -s``), moves none of its decisions. The
difference between the node's own wall clock and the database's is its *skew*: beyond
``[cron] max_clock_skew_secs`` (default 5) the scheduler claims nothing until it is back within
(one log line each way) and ``/readyz`` answers 503.

With SQLite every process of a machine reads the same clock, so the skew is 0 unless a process
is given a clock of its own (``CronStore.open(clock=...)``, libfaketime); with PostgreSQL it is
how far this host's clock is from the database server's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from .clock import Clock, SystemClock

DEFAULT_MAX_SKEW_SECS = 5.0
GOOD_SAMPLE_MS = 100
"""A sync whose half round trip is within this is taken as is; a slower one (a pool waiting
for a connection, a delayed link, a starved process) only if it is no worse than what the
clock counts from now, since the database may have answered anywhere in that round trip."""
SYNC_EVERY_SECS = 1.0
"""How often the claim loop reads the database's clock: not on every pass (a burst makes many),
since the monotonic clock carries the estimate between readings."""
DRIFT_PPM = 100  # what the monotonic clock may drift: an anchor's uncertainty grows with age


class DatabaseClock(SystemClock):
    """A :class:`~starpod_cron.clock.Clock` counting from the database's time at the last
    :meth:`sync` with the monotonic clock; before the first sync, ``local``'s time. Waits
    are the event loop's timers (monotonic), as :class:`SystemClock`'s."""

    def __init__(
        self,
        local: Clock | None = None,
        *,
        max_skew_secs: float = DEFAULT_MAX_SKEW_SECS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.local = local or SystemClock()
        self.max_skew_ms = round(max_skew_secs * 1000)
        self._monotonic = monotonic
        self._anchor: tuple[int, float] | None = None  # (database ms, monotonic s)
        self.skew_ms: int | None = None
        """This node's wall clock minus the database's, at the last sync (None: never)."""
        self.uncertainty_ms = 0
        """Half the round trip of the last sync: how far off the estimate may be."""
        self.synced_at: float | None = None
        """The monotonic time of the last sync (None: never)."""

    def now_ms(self) -> int:
        if self._anchor is None:
            return self.local.now_ms()
        database_ms, at = self._anchor
        return database_ms + round((self._monotonic() - at) * 1000)

    async def sync(self, read: Callable[[], Awaitable[int]]) -> int:
        """Read the database's clock with ``read`` (``store.database_now_ms``) and count from
        it; returns the skew in ms. Raises what ``read`` raises (the store unavailable)."""
        sent = self._monotonic()
        database_ms = await read()
        back = self.synced_at = self._monotonic()
        local_ms = self.local.now_ms()
        half_ms = round((back - sent) * 500)
        if self._anchor is None or half_ms <= max(GOOD_SAMPLE_MS, self.current_uncertainty_ms):
            self._anchor = (database_ms, (sent + back) / 2)
            self.uncertainty_ms = half_ms
        self.skew_ms = local_ms - self.now_ms()
        return self.skew_ms

    def sync_due(self) -> bool:
        """Whether :data:`SYNC_EVERY_SECS` have passed since the last sync (or none was made)."""
        return self.synced_at is None or self._monotonic() - self.synced_at >= SYNC_EVERY_SECS

    @property
    def current_uncertainty_ms(self) -> int:
        """How far off :meth:`now_ms` may be: the anchor's half round trip, plus drift since."""
        if self._anchor is None:
            return 0
        age = self._monotonic() - self._anchor[1]
        return self.uncertainty_ms + round(age * DRIFT_PPM / 1000)

    @property
    def too_far(self) -> bool:
        """The last sync found this node's clock beyond ``max_skew_secs`` of the database's."""
        return self.skew_ms is not None and abs(self.skew_ms) > self.max_skew_ms
