"""The job field declaration (starpod_cron/fields.py) is the one place a field is named: every
dataclass, column list and front end follows it, so a field cannot be added in one place and
forgotten in another."""

from __future__ import annotations

from dataclasses import fields

from starpod_cron import fieldgen
from starpod_cron.fields import JOB_FIELDS, job_field, option_fields, public_fields, user_fields
from starpod_cron.jobfields import JobFields
from starpod_cron.models import CronJob, JobUpdate
from starpod_cron.store.records import JOB_COLUMNS, JobRecord
from starpod_cron.store.types import JobSpec


def test_the_generated_dataclass_blocks_are_fresh() -> None:
    assert fieldgen.generate(check=True) == [], "run: python -m starpod_cron.fieldgen"


def test_each_dataclass_has_exactly_the_declared_fields() -> None:
    assert [f.name for f in fields(CronJob)] == [f.name for f in public_fields()]
    assert [f.name for f in fields(JobUpdate)] == [f.name for f in user_fields()]
    settable = [f.name for f in JOB_FIELDS if f.who in ("user", "internal")]
    assert [f.name for f in fields(JobSpec)] == settable
    assert tuple(f.name for f in fields(JobRecord)) == JOB_COLUMNS
    given = {f.name for f in fields(JobFields)}
    assert {f.name for f in option_fields()} | {"enabled"} <= given


def test_defaults_on_the_dataclasses_are_the_declared_ones() -> None:
    spec = {f.name: f.default for f in fields(JobSpec)}
    for f in JOB_FIELDS:
        if f.who == "runtime" or f.name in ("name", "prompt", "schedule"):
            continue
        want = None if f.setting is not None else f.default
        assert spec[f.name] == want, f.name


def test_a_field_is_found_by_name() -> None:
    assert job_field("timeout_secs").column_name == "timeout_ms"
    assert job_field("overlap").choices == ("skip", "queue", "allow")
    assert job_field("max_retries").default_text() == "[cron] default_max_retries"
