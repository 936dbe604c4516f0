"""Whatever a user types, the library answers with a documented exception (an InvalidInput,
which says what to change) or a value: never OverflowError, OSError or a TypeError."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starpod_cron import InvalidInput, Schedule, StoreSettings
from starpod_cron.durations import at_time, duration_ms, schedule
from starpod_cron.jobfields import JobFields, job_spec
from starpod_cron.store import planning
from starpod_cron.timeutil import zone

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
texts = st.one_of(
    st.text(max_size=400),
    st.from_regex(r"\d{1,40}(ms|s|m|h|d){1,3}", fullmatch=True),
    st.from_regex(r"[0-9*/,\- ]{1,40}", fullmatch=True),
    st.from_regex(
        r"\d{1,6}-\d{1,3}-\d{1,3}[T ]\d{1,3}:\d{1,3}(:\d{1,3})?([+-]\d{2}:\d{2})?", fullmatch=True
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def refused_or_fine(call, *args):  # type: ignore[no-untyped-def]
    try:
        call(*args)
    except InvalidInput as exc:
        assert str(exc)  # says something


@FUZZ
@given(texts)
def test_durations_times_and_zones(text: str) -> None:
    refused_or_fine(duration_ms, text)
    refused_or_fine(at_time, text, "Europe/Rome", NOW)
    refused_or_fine(zone, text)
    refused_or_fine(Schedule.cron, text)
    refused_or_fine(Schedule.one_shot, text)
    for kind in ("cron", "every", "at", "in"):
        refused_or_fine(schedule, kind, text, "UTC", NOW)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "prompt",
                "every",
                "in",
                "at",
                "cron",
                "timezone",
                "max_retries",
                "timeout_secs",
                "session_mode",
                "misfire_policy",
                "name",
                "delete_after_run",
            ]
        ),
        json_values,
        max_size=6,
    )
)
def test_job_fields_from_any_json(data: dict[str, object]) -> None:
    def build() -> None:
        fields = JobFields.from_mapping(data)
        spec = job_spec(fields, now=NOW, default_timezone="UTC", user_id="u")
        planning.new_job(spec, 1_795_000_000_000, StoreSettings())

    refused_or_fine(build)
