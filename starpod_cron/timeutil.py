"""Pure time helpers: epoch milliseconds <-> aware UTC datetimes, zone lookup, local wall times.

The database stores epoch milliseconds; the public API speaks aware UTC datetimes. All
conversions here are exact integer arithmetic (no float rounding).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InvalidTimezone

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)
"""No schedule fires at or after this instant (leaves room for any zone's offset and for
arithmetic on times near it, which overflows at the year 9999)."""
MAX_ZONE_CHARS = 64
_MS = timedelta(milliseconds=1)


def to_ms(dt: datetime) -> int:
    """Epoch milliseconds of an aware datetime (sub-millisecond part truncated)."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime given where an aware one is required")
    return (dt - EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds (exact: integer timedelta arithmetic, twice as
    fast as building a ``timedelta(milliseconds=ms)`` for every value read)."""
    return EPOCH + _MS * ms


def opt_from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else from_ms(ms)


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; raises :class:`InvalidTimezone` for anything else."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidTimezone("time zone must be a non-empty IANA name such as 'Europe/Rome'")
    return _zone(name)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    if len(name) > MAX_ZONE_CHARS:
        raise InvalidTimezone(
            f"time zone name is {len(name)} characters long; IANA names such as "
            f"'Europe/Rome' have at most {MAX_ZONE_CHARS}"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        shown = name if len(name) <= 40 else name[:39] + "…"
        raise InvalidTimezone(
            f"unknown time zone {shown!r}: use an IANA name such as 'Europe/Rome' or 'UTC'"
        ) from exc


def check_zone(name: str) -> str:
    """Validate a zone name and return it unchanged."""
    zone(name)
    return name


def resolve_local(naive: datetime, tz: ZoneInfo) -> datetime:
    """The instant (aware UTC) a local wall time means in ``tz``.

    A wall time that occurs twice (fall-back fold) means its first occurrence. A wall time that
    does not exist (spring-forward gap) means the first instant after the gap, i.e. the moment of
    the transition, the same rule cron uses for jobs in a skipped hour.
    """
    first = naive.replace(tzinfo=tz, fold=0)
    as_utc = first.astimezone(UTC)
    if as_utc.astimezone(tz).replace(tzinfo=None) == naive:
        return as_utc  # exists; fold=0 is the first occurrence when ambiguous
    # In a gap: fold=0 maps with the offset before the transition (too late an instant),
    # fold=1 with the offset after (too early). The transition lies between; find it.
    lo = int(naive.replace(tzinfo=tz, fold=1).timestamp())  # offset after: before transition
    hi = int(as_utc.timestamp()) + 1  # after the transition
    before = datetime.fromtimestamp(lo, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)
