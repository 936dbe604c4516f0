"""Store contract: creating, reading, updating and removing jobs."""

from __future__ import annotations

import asyncio
from dataclasses import MISSING, fields
from datetime import timedelta

import pytest

from starpod_cron import (
    CronStore,
    DuplicateJobName,
    InvalidInput,
    InvalidJob,
    InvalidSchedule,
    InvalidTimezone,
    JobNotFound,
    JobSpec,
    JobUpdate,
    ManualClock,
    MisfirePolicy,
    RunStatus,
    Schedule,
    SessionMode,
    StoreSettings,
)
from starpod_cron.store.ops.jobs import INSERT_CHUNK
from starpod_cron.store.records import JOB_ADD_COLUMNS, JOB_COLUMNS, JobRecord, added_rows
from tests.backends import query
from tests.conftest import START
from tests.contract.conftest import Opener


async def test_add_job_defaults_and_next_fire(store: CronStore) -> None:
    job_id = await store.add_job(
        "morning-check",
        "Summarize overnight alerts",
        Schedule.cron("0 0 9 * * *"),
        timezone="Europe/Rome",
    )
    job = await store.get_job(job_id)
    assert job is not None
    assert (job.name, job.prompt, job.timezone) == (
        "morning-check",
        "Summarize overnight alerts",
        "Europe/Rome",
    )
    assert job.schedule == Schedule.cron("0 0 9 * * *")
    assert job.enabled and not job.delete_after_run
    assert job.next_run_at == START.replace(day=22, hour=8)  # 09:00 CET tomorrow
    assert (job.max_retries, job.timeout_secs, job.retry_count) == (3, 7200, 0)
    assert job.session_mode is SessionMode.ISOLATED and job.user_id is None
    assert job.misfire_policy is MisfirePolicy.RUN_ONCE
    assert job.created_at == START and job.last_run_at is None and job.last_status is None


async def test_add_job_full_keeps_every_option(store: CronStore) -> None:
    job_id = await store.add_job_full(
        "standup",
        "Post the standup",
        Schedule.cron("0 9 * * 1-5"),
        delete_after_run=False,
        timezone="America/New_York",
        max_retries=5,
        timeout_secs=90,
        session_mode=SessionMode.MAIN,
        user_id="u1",
        misfire_policy=MisfirePolicy.SKIP,
    )
    assert await store.get_job_by_name("standup") is None  # not an agent-level job
    job = await store.get_job_by_name("standup", "u1")
    assert job is not None and job.id == job_id
    assert (job.max_retries, job.timeout_secs, job.session_mode, job.user_id) == (
        5,
        90,
        SessionMode.MAIN,
        "u1",
    )
    assert job.misfire_policy is MisfirePolicy.SKIP
    assert job.next_run_at == START.replace(day=23, hour=14)  # Mon 09:00 EST


async def test_default_timezone_comes_from_settings(open_store, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    from starpod_cron import StoreSettings

    s = await open_store(StoreSettings(default_timezone="Asia/Tokyo"), clock)
    try:
        job = await s.get_job(await s.add_job("tokyo", "p", Schedule.cron("0 9 * * *")))
        assert job is not None and job.timezone == "Asia/Tokyo"
        assert job.next_run_at == START.replace(day=22, hour=0)
    finally:
        await s.close()


async def test_interval_is_anchored_at_creation(store: CronStore) -> None:
    job = await store.get_job(await store.add_job("tick", "p", Schedule.interval(every_ms=60_000)))
    assert job is not None
    assert job.next_run_at == START + timedelta(minutes=1)
    assert job.schedule == Schedule.interval(every_ms=60_000, anchor=START)


async def test_naive_one_shot_is_read_in_the_jobs_zone(store: CronStore) -> None:
    job = await store.get_job(
        await store.add_job(
            "remind", "p", Schedule.one_shot("2026-12-01T09:00:00"), timezone="Europe/Rome"
        )
    )
    assert job is not None and job.next_run_at == START.replace(month=12, day=1, hour=8)


async def test_text_round_trips_unchanged(store: CronStore) -> None:
    name = 'résumé\'; DROP TABLE jobs;-- "x" % _ 名前 🚀 \u200fשלום\u200e'  # RTL marks
    prompt = (
        "Line 1\nLine 2 with 'quotes', \"doubles\", NUL-free \t tabs, emoji 👩‍💻 and ∑\u200b"
        " a\\b/c \u202eevil\u202c"
    )
    job_id = await store.add_job_full(name, prompt, Schedule.cron("*/5 * * * *"), user_id="ü'ser")
    job = await store.get_job_by_name(name, "ü'ser")
    assert job is not None and job.id == job_id
    assert (job.name, job.prompt, job.user_id) == (name, prompt, "ü'ser")
    assert [j.name for j in await store.list_jobs_for_user("ü'ser")] == [name]


async def test_list_jobs_sorted_and_filtered_by_user(store: CronStore) -> None:
    for name, user in [("b", "u1"), ("a", None), ("c", "u2"), ("d", "u1")]:
        await store.add_job_full(name, "p", Schedule.cron("0 * * * *"), user_id=user)
    assert [j.name for j in await store.list_jobs()] == ["a", "b", "c", "d"]
    assert [j.name for j in await store.list_jobs_for_user("u1")] == ["b", "d"]
    assert await store.list_jobs_for_user("nobody") == []
    assert await store.get_job("missing") is None
    assert await store.get_job_by_name("missing") is None


BAD_JOBS = [
    (dict(name=""), InvalidJob),
    (dict(name="   "), InvalidJob),
    (dict(name=" padded"), InvalidJob),
    (dict(name="line\nbreak"), InvalidJob),
    (dict(name="x" * 201), InvalidJob),
    (dict(name="a/runs"), InvalidJob),  # would be a path in /api/jobs/<name>
    (dict(name="a\\b"), InvalidJob),
    (dict(name="tab\tbed"), InvalidJob),
    (dict(name="nul\x00"), InvalidJob),
    (dict(name="lone\ud800"), InvalidJob),  # no store can hold it
    (dict(name="line\u2028sep"), InvalidJob),
    (dict(name="\u202eevil"), InvalidJob),  # a bidirectional override reorders the name
    (dict(name="\u3000"), InvalidJob),  # ideographic space only
    (dict(prompt="nul \x00 inside"), InvalidJob),  # PostgreSQL text cannot hold NUL
    (dict(prompt="lone \udcff surrogate"), InvalidJob),
    (dict(description="lone \ud800"), InvalidJob),
    (dict(user_id="u\x00"), InvalidJob),
    (dict(timezone="UTC\ud800"), InvalidJob),
    (dict(prompt=""), InvalidJob),
    (dict(prompt=" \n "), InvalidJob),
    (dict(prompt="x" * (64 * 1024 + 1)), InvalidJob),
    (dict(prompt="é" * (32 * 1024 + 1)), InvalidJob),  # 64 KiB counted in UTF-8 bytes
    (dict(timezone="Mars/Olympus"), InvalidTimezone),
    (dict(timezone=""), InvalidTimezone),
    (dict(schedule=Schedule.one_shot("2026-11-21T11:59:59Z")), InvalidSchedule),  # past
    (dict(schedule=Schedule.one_shot("2026-11-21T12:00:00Z")), InvalidSchedule),  # now
    (dict(schedule="0 * * * *"), InvalidSchedule),
    (dict(max_retries=-1), InvalidJob),
    (dict(max_retries=101), InvalidJob),
    (dict(timeout_secs=0), InvalidJob),
    (dict(timeout_secs=float("nan")), InvalidJob),
    (dict(session_mode="shared"), InvalidJob),
    (dict(misfire_policy="later"), InvalidJob),
    (dict(user_id=""), InvalidJob),
    (dict(name="existing"), DuplicateJobName),
]


@pytest.mark.parametrize(("override", "error"), BAD_JOBS)
async def test_bad_input_raises_and_writes_nothing(
    store: CronStore, override: dict[str, object], error: type[Exception]
) -> None:
    await store.add_job("existing", "p", Schedule.cron("0 * * * *"))
    before = await store.list_jobs()
    fields: dict[str, object] = dict(name="new", prompt="p", schedule=Schedule.cron("0 * * * *"))
    fields.update(override)
    with pytest.raises(error) as err:
        await store.add_job_full(**fields)  # type: ignore[arg-type]
    assert isinstance(err.value, InvalidInput) and str(err.value)
    assert await store.list_jobs() == before
    assert await store.list_recent_runs(10) == []


async def test_prompt_of_exactly_64_kib_is_accepted(store: CronStore) -> None:
    job_id = await store.add_job("big", "x" * 64 * 1024, Schedule.cron("0 * * * *"))
    job = await store.get_job(job_id)
    assert job is not None and len(job.prompt) == 64 * 1024


async def test_add_jobs_is_all_or_nothing(store: CronStore) -> None:
    cron = Schedule.cron("0 * * * *")
    ids = await store.add_jobs([JobSpec(f"j{i}", "p", cron) for i in range(100)])
    assert len(set(ids)) == 100 and len(await store.list_jobs()) == 100
    with pytest.raises(InvalidJob):
        await store.add_jobs([JobSpec("ok", "p", cron), JobSpec("", "p", cron)])
    with pytest.raises(DuplicateJobName):
        await store.add_jobs([JobSpec("ok", "p", cron), JobSpec("ok", "p", cron)])
    with pytest.raises(DuplicateJobName, match="j7"):
        await store.add_jobs([JobSpec("ok", "p", cron), JobSpec("j7", "p", cron)])
    assert await store.get_job_by_name("ok") is None
    assert len(await store.list_jobs()) == 100


async def test_a_batch_inserted_in_chunks_is_still_all_or_nothing(store: CronStore) -> None:
    """A batch larger than one insert statement: a taken name in its last chunk leaves none
    of the earlier chunks written."""
    cron = Schedule.cron("0 * * * *")
    await store.add_job("taken", "p", cron)
    batch = [JobSpec(f"n{i}", "p", cron) for i in range(INSERT_CHUNK * 2)]
    with pytest.raises(DuplicateJobName, match="'taken' already exists"):
        await store.add_jobs([*batch, JobSpec("taken", "p", cron)])
    assert [j.name for j in await store.list_jobs()] == ["taken"]
    ids = await store.add_jobs(batch[: INSERT_CHUNK + 1])
    assert len(await store.list_jobs()) == INSERT_CHUNK + 2 == len(set(ids)) + 1


async def test_a_taken_name_is_refused_with_its_owner_named_and_nothing_written(
    store: CronStore,
) -> None:
    cron = Schedule.cron("0 * * * *")
    await store.add_jobs([JobSpec("daily", "p", cron, user_id="bob"), JobSpec("daily", "p", cron)])
    batch = [JobSpec(f"new-{i}", "p", cron, user_id="bob") for i in range(50)]
    with pytest.raises(DuplicateJobName, match="'daily' already exists for user 'bob'"):
        await store.add_jobs([*batch, JobSpec("daily", "p", cron, user_id="bob")])
    with pytest.raises(DuplicateJobName, match="an agent-level job named 'daily'"):
        await store.add_job("daily", "p", cron)
    assert sorted(j.name for j in await store.list_jobs()) == ["daily", "daily"]
    assert await store.add_job_full("daily", "p", cron, user_id="carol")  # another owner


async def test_update_prompt_keeps_schedule(store: CronStore) -> None:
    job_id = await store.add_job("j", "old", Schedule.cron("0 * * * *"))
    before = await store.get_job(job_id)
    job = await store.update_job(job_id, JobUpdate(prompt="new", max_retries=0, user_id="u9"))
    assert job.prompt == "new" and job.max_retries == 0 and job.user_id == "u9"
    assert before is not None and job.next_run_at == before.next_run_at
    assert await store.get_job(job_id) == job
    cleared = await store.update_job(job_id, JobUpdate(user_id=None))
    assert cleared.user_id is None and cleared.prompt == "new"


async def test_update_schedule_or_zone_recomputes_from_now(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    clock.advance(90)
    job = await store.update_job(job_id, JobUpdate(schedule=Schedule.interval(every_ms=3_600_000)))
    assert job.next_run_at == START + timedelta(seconds=90, hours=1)  # re-anchored at now
    job = await store.update_job(job_id, JobUpdate(schedule=Schedule.cron("0 9 * * *")))
    assert job.next_run_at == START.replace(day=22, hour=9)
    job = await store.update_job(job_id, JobUpdate(timezone="Europe/Rome"))
    assert job.next_run_at == START.replace(day=22, hour=8)


async def test_bad_update_changes_nothing(store: CronStore) -> None:
    await store.add_job("other", "p", Schedule.cron("0 * * * *"))
    job_id = await store.add_job("j", "p", Schedule.cron("0 * * * *"))
    before = await store.get_job(job_id)
    for update, error in [
        (JobUpdate(name="other"), DuplicateJobName),
        (
            JobUpdate(prompt="new", schedule=Schedule.one_shot("2020-01-01T00:00:00Z")),
            InvalidSchedule,
        ),
        (JobUpdate(prompt="new", timezone="Nowhere/City"), InvalidTimezone),
        (JobUpdate(prompt="new", max_retries=-3), InvalidJob),
    ]:
        with pytest.raises(error):
            await store.update_job(job_id, update)
        assert await store.get_job(job_id) == before
    with pytest.raises(JobNotFound):
        await store.update_job("missing", JobUpdate(prompt="x"))


async def test_rename(store: CronStore) -> None:
    job_id = await store.add_job("old", "p", Schedule.cron("0 * * * *"))
    await store.update_job(job_id, JobUpdate(name="new"))
    assert await store.get_job_by_name("old") is None
    renamed = await store.get_job_by_name("new")
    assert renamed is not None and renamed.id == job_id


async def test_disable_and_enable(store: CronStore, clock: ManualClock) -> None:
    job_id = await store.add_job("j", "p", Schedule.cron("0 * * * *"))
    job = await store.disable_job(job_id)
    assert not job.enabled and job.next_run_at is None
    clock.advance(3 * 3600 + 30)  # three fires pass while disabled
    assert await store.get_due_jobs() == []
    job = await store.enable_job(job_id)
    assert job.enabled and job.next_run_at == START + timedelta(hours=4)  # no catch-up
    with pytest.raises(JobNotFound):
        await store.enable_job("missing")


async def test_enabling_a_past_one_shot_asks_for_a_new_time(
    store: CronStore, clock: ManualClock
) -> None:
    job_id = await store.add_job("once", "p", Schedule.one_shot("2026-11-21T13:00:00Z"))
    await store.disable_job(job_id)
    clock.advance(7200)
    with pytest.raises(InvalidSchedule, match="past"):
        await store.enable_job(job_id)
    job = await store.update_job(
        job_id, JobUpdate(enabled=True, schedule=Schedule.one_shot("2026-11-21T15:00:00Z"))
    )
    assert job.enabled and job.next_run_at == START.replace(hour=15)


async def test_remove(store: CronStore) -> None:
    a = await store.add_job("a", "p", Schedule.cron("0 * * * *"))
    await store.add_job("b", "p", Schedule.cron("0 * * * *"))
    await store.remove_job(a)
    await store.remove_by_name("b")
    assert await store.list_jobs() == []
    with pytest.raises(JobNotFound):
        await store.remove_job(a)
    with pytest.raises(JobNotFound):
        await store.remove_by_name("b")


async def test_get_due_jobs_is_read_only(store: CronStore, clock: ManualClock) -> None:
    job_id = await store.add_job("j", "p", Schedule.interval(every_ms=60_000))
    await store.add_job("later", "p", Schedule.cron("0 0 1 1 *"))
    assert await store.get_due_jobs() == []
    clock.advance(60)
    due = await store.get_due_jobs()
    assert [j.id for j in due] == [job_id]
    assert await store.get_due_jobs() == due
    assert await store.list_runs(job_id) == []
    assert await store.next_due_at() == START + timedelta(minutes=1)


async def test_changes_notify_listeners(store: CronStore) -> None:
    """Every committed change signals at once (at least once: a signal is a hint, and on
    PostgreSQL a store also hears its own NOTIFY); after unsubscribing, nothing."""
    seen: list[int] = []
    unsubscribe = store.on_change(lambda: seen.append(1))
    job_id = await store.add_job("j", "p", Schedule.cron("0 * * * *"))
    assert seen  # synchronously, as the add returns
    before = len(seen)
    await store.update_job(job_id, JobUpdate(prompt="q"))
    assert len(seen) > before
    unsubscribe()
    after = len(seen)
    await store.disable_job(job_id)
    assert len(seen) == after


async def test_status_enum_values_are_the_documented_strings() -> None:
    assert [s.value for s in RunStatus] == [
        "running",
        "success",
        "failed",
        "timeout",
        "interrupted",
        "skipped",
        "held",
    ]


async def test_a_change_through_another_store_wakes_this_one(
    store: CronStore, open_store: Opener, settings: StoreSettings, clock: ManualClock
) -> None:
    """Another process or node (here: another store object) adding a job wakes this store's
    listeners within about a quarter second, without polling the tables."""
    woken = asyncio.Event()
    store.on_change(woken.set)
    other = await open_store(settings, clock)
    try:
        for n in range(3):  # from the second round on, the watcher is surely up
            woken.clear()
            await other.add_job(f"from-elsewhere-{n}", "p", Schedule.cron("0 * * * *"))
            await asyncio.wait_for(woken.wait(), 2)
    finally:
        await other.close()


async def test_a_plain_job_written_narrow_reads_back_as_a_new_job(
    store: CronStore, url: str
) -> None:
    """add_jobs binds a plain job's first 28 columns and leaves the later ones (policies,
    limits, model, budgets, destinations) to the table's defaults: read back, those are
    exactly a new record's defaults, on every dialect; a batch where one job sets a later
    field is written whole, its values kept."""
    hourly = Schedule.interval(every_ms=3_600_000)
    start = int(START.timestamp() * 1000)
    await store.add_jobs([JobSpec("plain", "p", hourly, user_id="bob", description="d")])
    rich = JobSpec("rich", "p", hourly, model="m", max_runs=5, pause_after_failures=2)
    await store.add_jobs([JobSpec("plain-2", "p", hourly), rich])
    rows = await query(url, f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs ORDER BY name")
    plain, plain_2, stored_rich = (JobRecord.from_row(r) for r in rows)
    later = [c for c in JOB_COLUMNS if c not in JOB_ADD_COLUMNS]
    fresh = {f.name: f.default for f in fields(JobRecord) if f.default is not MISSING}
    for job in (plain, plain_2):
        assert {c: getattr(job, c) for c in later} == {c: fresh[c] for c in later}
    assert (plain.user_id, plain.description, plain.next_run_at) == ("bob", "d", start + 3_600_000)
    assert added_rows([plain]) == [tuple(getattr(plain, c) for c in JOB_ADD_COLUMNS)]
    assert (stored_rich.model, stored_rich.max_runs, stored_rich.pause_after_failures) == (
        "m",
        5,
        2,
    )
    assert added_rows([plain, stored_rich]) is None
    assert [j.name for j in await store.list_jobs()] == ["plain", "plain-2", "rich"]
