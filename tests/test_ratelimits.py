"""Reading a provider's rate-limit headers: one table per header family (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from starpod_cron.ratelimits import (
    Budget,
    RateLimits,
    go_duration,
    parse,
    quota_refused,
    retry_after_secs,
)

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "secs"),
    [
        ("6m0s", 360.0),
        ("1s", 1.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("0", 0.0),
        ("2.5", 2.5),  # a bare number (some compatible servers): seconds
        ("500us", 0.0005),
        ("3µs", 3e-6),
        ("1m", 60.0),
        (" 7s ", 7.0),
        ("", None),
        ("soon", None),
        ("-1s", None),
        ("1x", None),
        ("1s2", None),
        ("m", None),
        ("²s", None),
    ],
)
def test_go_durations(text: str, secs: float | None) -> None:
    assert go_duration(text) == (None if secs is None else pytest.approx(secs))


OPENAI = {
    "x-ratelimit-limit-requests": "3000",
    "x-ratelimit-remaining-requests": "2999",
    "x-ratelimit-reset-requests": "20ms",
    "x-ratelimit-limit-tokens": "200000",
    "x-ratelimit-remaining-tokens": "0",
    "x-ratelimit-reset-tokens": "6m0s",
}
ANTHROPIC = {
    "anthropic-ratelimit-requests-limit": "50",
    "anthropic-ratelimit-requests-remaining": "49",
    "anthropic-ratelimit-requests-reset": "2026-12-03T14:00:01Z",
    "anthropic-ratelimit-input-tokens-limit": "40000",
    "anthropic-ratelimit-input-tokens-remaining": "0",
    "anthropic-ratelimit-input-tokens-reset": "2026-12-03T14:05:00+00:00",
    "anthropic-ratelimit-output-tokens-remaining": "8000",
    "anthropic-ratelimit-tokens-reset": "2026-12-03T13:59:00Z",  # passed: 0
}


@pytest.mark.parametrize(
    ("headers", "budgets", "retry", "reset"),
    [
        (
            OPENAI,
            {
                "requests": Budget(2999, 3000, 0.02),
                "tokens": Budget(0, 200000, 360.0),
            },
            None,
            360.0,  # the exhausted budget's reset
        ),
        (
            {k.upper(): v for k, v in OPENAI.items()},  # header names in any case
            {"requests": Budget(2999, 3000, 0.02), "tokens": Budget(0, 200000, 360.0)},
            None,
            360.0,
        ),
        (
            ANTHROPIC,
            {
                "requests": Budget(49, 50, 1.0),
                "input-tokens": Budget(0, 40000, 300.0),
                "output-tokens": Budget(8000, None, None),
                "tokens": Budget(None, None, 0.0),
            },
            None,
            300.0,
        ),
        ({"retry-after-ms": "1500", "retry-after": "9"}, {}, 1.5, 1.5),  # ms wins
        ({"retry-after": "9"}, {}, 9.0, 9.0),
        ({"retry-after": "Thu, 03 Dec 2026 14:00:30 GMT"}, {}, 30.0, 30.0),
        ({"retry-after": "later"}, {}, None, None),
        (
            {"x-ratelimit-remaining-requests": "many", "x-ratelimit-reset-requests": "1s"},
            {"requests": Budget(None, None, 1.0)},  # a typo is left out, never an error
            None,
            None,
        ),
        ({"x-ratelimit-remaining-tokens": "nan"}, {}, None, None),
        ({"content-type": "application/json"}, {}, None, None),
    ],
)
def test_headers_parse_into_budgets(
    headers: dict[str, str],
    budgets: dict[str, Budget],
    retry: float | None,
    reset: float | None,
) -> None:
    limits = parse(headers, NOW)
    assert limits == RateLimits(budgets, retry)
    assert limits.reset_secs() == reset
    assert limits.announced is bool(budgets or retry is not None)


@pytest.mark.parametrize(
    ("status", "body", "quota"),
    [
        (402, "", True),
        (429, '{"error": {"code": "insufficient_quota", "message": "You exceeded"}}', True),
        (429, '{"error": {"code": "rate_limit_exceeded"}}', False),
        (400, '{"error": {"message": "bad"}}', False),
        (403, "", False),
    ],
)
def test_quota_refusals(status: int, body: str, quota: bool) -> None:
    assert quota_refused(status, body) is quota


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_secs("7") == 7
    assert retry_after_secs("Thu, 03 Dec 2026 13:59:00 GMT", NOW) == 0  # passed
    assert retry_after_secs(None) is None and retry_after_secs("²") is None
