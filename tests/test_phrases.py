"""Schedules in words: every form of the README's table parses to the schedule it documents,
ambiguous and unknown phrases are refused (naming the forms it reads), and the tools and
``[[jobs]]`` store a phrase as the schedule it means, on every backend."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starpod_cron import CronStore, ManualClock, Schedule
from starpod_cron.config import parse_config
from starpod_cron.declared import load, sync_jobs
from starpod_cron.durations import schedule as form_schedule
from starpod_cron.errors import ConfigError, InvalidInput, InvalidSchedule
from starpod_cron.phrases import interpret, translate
from starpod_cron.schedules import Interval
from starpod_cron.timeutil import from_ms, zone
from starpod_cron.tools import call_tool
from tests.docstext import documentation

ROOT = Path(__file__).resolve().parent.parent
README = documentation()  # README.md and docs/*.md
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # a Saturday; 13:00 in Rome
ROME = "Europe/Rome"


def table(after: str) -> list[list[str]]:
    """The rows of the README table whose header line starts with ``after``: each cell's
    first backticked text (or the cell as is)."""
    block = README.split(after, 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in block.splitlines()[1:]:
        if not line.startswith("|"):
            break
        if line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append([m.group(1) if (m := re.search(r"`([^`]+)`", c)) else c for c in cells])
    return rows


FORMS = table("| You write | It becomes |")
REFUSED = table("| Refused | Why |")


def test_the_readme_tables_are_read() -> None:
    assert len(FORMS) >= 25 and len(REFUSED) >= 10  # a broken table cannot pass quietly
    assert FORMS[14][:2] == ["every weekday at 9:00", "cron 0 9 * * 1-5"]


@pytest.mark.parametrize(("phrase", "becomes"), [(r[0], r[1]) for r in FORMS])
def test_every_form_in_the_readme_parses_to_the_documented_schedule(
    phrase: str, becomes: str
) -> None:
    meaning = translate(phrase)
    assert f"{meaning.kind} {meaning.value}" == becomes
    understood = interpret(phrase, ROME, NOW)
    kind, value = becomes.split(" ", 1)
    assert understood.schedule == form_schedule(kind, value, ROME, NOW)
    assert 1 <= len(understood.next_runs) <= 5
    assert all(t > NOW for t in understood.next_runs)
    shown = understood.json()
    assert shown["kind"] == kind and shown["delete_after_run"] == (kind == "in")
    # case, spacing and a final full stop do not change the meaning
    assert translate(f"  {phrase.upper()}. ") == meaning or "T" in phrase


@pytest.mark.parametrize("phrase", [r[0] for r in REFUSED])
def test_ambiguous_and_unknown_phrases_are_refused(phrase: str) -> None:
    with pytest.raises(InvalidSchedule) as refused:
        interpret(phrase, ROME, NOW)
    assert phrase in str(refused.value) or repr(phrase) in str(refused.value)


@pytest.mark.parametrize(
    ("phrase", "said"),
    [
        ("every 9", "'every day at 9' or 'every 9 minutes'"),
        ("at 9", "'today at 9' or 'every day at 9'"),
        ("every weekday", "'every weekday at 9:00'"),
        ("at 25:00", "hours are 0-23"),
        ("every day at 13pm", "1-12 with am/pm"),
        ("every blursday at 9", "did you mean 'thursday'?"),
        ("every fortnight", "the nearest forms: 'every"),
        ("remind me sometime", "the nearest forms:"),
        ("every 0 minutes", "longer than zero"),
        ("at 2020-01-01 09:00", "is in the past"),
        ("x" * 201, "the limit is 200"),
    ],
)
def test_a_refusal_says_what_it_reads_instead(phrase: str, said: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(said)):
        interpret(phrase, ROME, NOW)


def test_times_and_days_mean_what_they_say_in_the_jobs_zone() -> None:
    weekday = interpret("every weekday at 9:00", ROME, NOW)
    local = [t.astimezone(zone(ROME)) for t in weekday.next_runs]
    assert [t.strftime("%a %H:%M") for t in local] == [
        "Mon 09:00", "Tue 09:00", "Wed 09:00", "Thu 09:00", "Fri 09:00"
    ]  # fmt: skip
    assert weekday.json()["schedule"] == "cron 0 9 * * 1-5 (Europe/Rome)"
    assert weekday.json()["in_words"] == "At 09:00, Monday through Friday"
    last = interpret("on the last day of every month at 17:00", ROME, NOW).next_runs
    assert [t.astimezone(zone(ROME)).date().isoformat() for t in last[:4]] == [
        "2026-11-30", "2026-12-31", "2027-01-31", "2027-02-28"
    ]  # fmt: skip
    # an interval counts from now; "in" is a one-shot from now, deleted after it runs
    every = interpret("every 30 minutes", ROME, NOW)
    assert every.next_runs[:2] == (NOW + timedelta(minutes=30), NOW + timedelta(minutes=60))
    soon = interpret("in 20 minutes", ROME, NOW)
    assert soon.next_runs == (NOW + timedelta(minutes=20),) and soon.json()["delete_after_run"]
    tomorrow = interpret("tomorrow at 9", ROME, NOW).next_runs
    assert tomorrow == (datetime(2026, 11, 22, 8, 0, tzinfo=UTC),)  # 09:00 in Rome
    assert interpret("tomorrow at 9", "UTC", NOW).next_runs == (
        datetime(2026, 11, 22, 9, 0, tzinfo=UTC),
    )
    assert translate("every day at 9 p.m.").value == "0 21 * * *"  # the final dot is the pm's
    assert translate("every weekday at 9:00 and 5:00 pm").value == "0 9,17 * * 1-5"
    text = "\n".join(weekday.lines())
    assert "Understood 'every weekday at 9:00' as: At 09:00, Monday through Friday" in text
    assert "  2026-11-23 09:00:00 +01:00" in text


async def test_the_tools_store_a_phrase_as_its_schedule_and_say_what_they_understood(
    store: CronStore, clock: ManualClock
) -> None:
    now = from_ms(clock.now_ms())
    answer = await call_tool(
        store,
        "cron_add",
        {"name": "digest", "prompt": "Send the digest", "when": "every weekday at 9:00",
         "timezone": ROME},
    )  # fmt: skip
    job = await store.get_job_by_name("digest")
    assert job is not None and job.schedule == Schedule.cron("0 9 * * 1-5")
    assert (job.timezone, job.description, job.delete_after_run) == (
        ROME,
        "every weekday at 9:00",
        False,
    )
    understood = answer["interpretation"]
    assert understood["schedule"] == "cron 0 9 * * 1-5 (Europe/Rome)"
    assert (
        understood["next_runs"][0] == "2026-11-23T09:00:00+01:00"
        and len(understood["next_runs"]) == 5
    )
    assert answer["job"]["next_run"] == "2026-11-23T08:00:00+00:00"

    reminder = await call_tool(
        store,
        "cron_add",
        {"name": "stretch", "prompt": "Stretch", "when": "in 20 minutes", "description": "legs"},
    )
    stretch = await store.get_job_by_name("stretch")
    assert stretch is not None and stretch.delete_after_run and stretch.description == "legs"
    assert stretch.next_run_at == now + timedelta(minutes=20)
    assert reminder["interpretation"]["delete_after_run"] is True

    poll = await call_tool(
        store, "cron_add", {"name": "poll", "prompt": "p", "when": "every 10 minutes"}
    )
    polled = await store.get_job_by_name("poll")
    assert polled is not None and isinstance(polled.schedule, Interval)
    assert polled.schedule.every_ms == 600_000 and polled.schedule.anchor_ms == clock.now_ms()
    assert poll["interpretation"]["next_runs"][0] == (now + timedelta(minutes=10)).isoformat()

    # a new phrase replaces the schedule, and the description it came from
    changed = await call_tool(store, "cron_update", {"name": "digest", "when": "every day at 7am"})
    assert changed["job"]["schedule"]["expression"] == "0 7 * * *"
    assert changed["job"]["description"] == "every day at 7am"
    assert changed["interpretation"]["in_words"] == "At 07:00"

    before = await store.list_jobs()
    for arguments, error in [
        ({"prompt": "p", "when": "every 9"}, "could mean a time or a count"),
        ({"prompt": "p", "when": "every blursday at 9"}, "unknown day 'blursday'"),
        ({"prompt": "p", "when": "every day at 9", "cron": "0 9 * * *"}, "give only one of"),
        ({"prompt": "p", "when": 9}, "when must be a string"),
    ]:
        with pytest.raises(InvalidInput, match=re.escape(error)):
            await call_tool(store, "cron_add", arguments)
    assert await store.list_jobs() == before  # nothing saved


def test_the_tool_schema_documents_when() -> None:
    from starpod_cron.tools import TOOLS

    when = TOOLS["cron_add"].parameters["properties"]["when"]
    assert when["type"] == "string" and "every weekday at 9:00" in when["description"]
    assert "when" in TOOLS["cron_update"].parameters["properties"]


DECLARED = """
[[jobs]]
name = "poll"
prompt = "Poll the queue"
when = "every 30 minutes"

[[jobs]]
name = "standup"
prompt = "Post the standup"
when = "every weekday at 9:00"
timezone = "Europe/Rome"
"""


async def test_declared_phrases_sync_once_and_a_restart_changes_nothing(
    store: CronStore, clock: ManualClock
) -> None:
    config = parse_config(DECLARED)
    first = await sync_jobs(store, load(config.jobs, []), now=from_ms(clock.now_ms()))
    assert sorted(first.created) == ["poll", "standup"]
    poll = await store.get_job_by_name("poll")
    standup = await store.get_job_by_name("standup")
    assert poll is not None and standup is not None
    assert standup.schedule == Schedule.cron("0 9 * * 1-5") and standup.timezone == ROME
    assert poll.description == "every 30 minutes"
    clock.advance(7 * 60)  # a restart later: the interval keeps its anchor, nothing changes
    again = await sync_jobs(
        store, load(parse_config(DECLARED).jobs, []), now=from_ms(clock.now_ms())
    )
    assert sorted(again.unchanged) == ["poll", "standup"] and again.changes() == 0
    assert await store.get_job_by_name("poll") == poll


@pytest.mark.parametrize("phrase", ["in 20 minutes", "tomorrow at 9", "today at 17:00"])
def test_declared_phrases_relative_to_now_are_refused(phrase: str) -> None:
    text = f'[[jobs]]\nname = "x"\nprompt = "p"\nwhen = "{phrase}"\n'
    with pytest.raises(ConfigError, match="another time each time the jobs are synced"):
        parse_config(text)


def test_the_example_config_declares_a_job_in_words() -> None:
    example = (ROOT / "agent.toml.example").read_text()
    blocks = example.split("# [[jobs]]\n")[1:]
    text = "".join(
        "[[jobs]]\n"
        + "\n".join(line[2:] for line in b.splitlines() if line.startswith("# "))
        + "\n"
        for b in blocks
    )
    config = parse_config(text)
    worded = [j for j in config.jobs if "when" in j]
    assert worded and translate(worded[0]["when"]).value == "0 17 L * *"
    load(config.jobs, [])  # checked as the store checks it


WORDS = [
    "every",
    "at",
    "on",
    "in",
    "the",
    "day",
    "of",
    "month",
    "hour",
    "and",
    ",",
    "9",
    ":15",
    "12pm",
    "monday",
    "weekday",
    "1st",
    "last",
    "2030-12-01",
    "minutes",
    "tomorrow",
    "25:00",
]


@given(
    st.one_of(
        st.text(max_size=60),
        st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join),
    )
)
@settings(max_examples=400, deadline=None)
def test_any_text_is_a_schedule_or_an_invalid_input(phrase: str) -> None:
    try:
        understood = interpret(phrase, ROME, NOW)
    except InvalidInput as exc:
        assert str(exc)
    else:
        assert understood.next_runs and understood.json()["phrase"]
