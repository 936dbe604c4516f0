"""timeutil: epoch milliseconds to aware datetimes and back, exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starpod_cron.timeutil import EPOCH, from_ms, opt_from_ms, to_ms

LAST_MS = to_ms(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))


@given(st.integers(min_value=to_ms(datetime(1, 1, 1, tzinfo=UTC)), max_value=LAST_MS))
def test_from_ms_is_exact_and_round_trips(ms: int) -> None:
    at = from_ms(ms)
    assert at == EPOCH + timedelta(milliseconds=ms)
    assert at.tzinfo is UTC and at.microsecond % 1000 == 0
    assert to_ms(at) == ms


def test_edges() -> None:
    assert from_ms(0) == EPOCH
    assert from_ms(-1) == EPOCH - timedelta(milliseconds=1)
    assert opt_from_ms(None) is None
    with pytest.raises(OverflowError):
        from_ms(LAST_MS + 1)
