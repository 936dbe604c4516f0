"""Whatever a user types, the library answers with a documented exception (an InvalidInput,
which says what to change) or a value: never OverflowError, OSError or a TypeError."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starpod_cron import InvalidInput, Schedule, StoreSettings
from starpod_cron.durations import at_time, duration_ms, schedule
from starpod_cron.inputrules import check_all_text, name_problem, whole_number
from starpod_cron.jobfields import JobFields, job_spec
from starpod_cron.store import planning, validation
from starpod_cron.timeutil import zone

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ANY_CHAR = st.characters(exclude_categories=[])  # lone surrogates too
texts = st.one_of(
    st.text(max_size=400),
    st.text(ANY_CHAR, max_size=40),
    st.lists(st.sampled_from(["\ud800", "\x00", "\u200f", "\u202e", "²", "١٢", "/", "1", "m"])).map(
        "".join
    ),
    st.from_regex(r"\d{1,40}(ms|s|m|h|d){1,3}", fullmatch=True),
    st.from_regex(r"[0-9*/,\- ]{1,40}", fullmatch=True),
    st.from_regex(
        r"\d{1,6}-\d{1,3}-\d{1,3}[T ]\d{1,3}:\d{1,3}(:\d{1,3})?([+-]\d{2}:\d{2})?", fullmatch=True
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(ANY_CHAR, max_size=50),
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


@FUZZ
@given(texts)
def test_whole_numbers_are_ascii_digits(text: str) -> None:
    try:
        value = whole_number("limit", text, 1, 200)
    except InvalidInput as exc:
        assert "digits 0-9" in str(exc)
        str(exc).encode("utf-8")  # never echoes the text
    else:
        assert text.isascii() and text.isdigit() and 1 <= value <= 200


@FUZZ
@given(texts)
def test_a_name_is_refused_with_a_message_or_is_safe_in_a_url_and_a_terminal(text: str) -> None:
    try:
        validation.name(text)
    except InvalidInput as exc:
        message = str(exc)
        assert message and name_problem(text) == message
        message.encode("utf-8")  # can be sent back: never echoes a lone surrogate raw
    else:
        assert text == text.strip() != "" and not set(text) & set("/\\\x00\t\n")
        text.encode("utf-8")


@FUZZ
@given(st.dictionaries(st.text(ANY_CHAR, max_size=5), json_values, max_size=4))
def test_text_checks_answer_with_a_message_that_can_be_sent(data: dict[str, object]) -> None:
    try:
        check_all_text("arguments", data)
    except InvalidInput as exc:
        str(exc).encode("utf-8")
