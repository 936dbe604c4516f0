"""Named destinations (starpod_cron/destinations.py): ``[destinations.NAME]`` read strictly,
what a job's ``deliver_to`` / ``alerts_to`` entries mean, the planner's choices (result per
``notify``, alerts elsewhere, ``events``), and who may point a job where (refused in the
operation, nothing written)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from starpod_cron import CronStore, RunStatus, Schedule
from starpod_cron.access import LOCAL_ADMIN, Principal
from starpod_cron.config import parse_config
from starpod_cron.destinations import Destinations
from starpod_cron.errors import (
    ConfigError,
    DestinationNotAllowed,
    InvalidJob,
    UnknownDestination,
)
from starpod_cron.jobfields import JobFields
from starpod_cron.operations import JobOperations
from starpod_cron.routing import DeliveryRouter, serves
from tests.docstext import documentation
from tests.test_routing import job, run_of

TOML = """
[cron]
alerts_to = ["pager"]

[destinations.ops-hook]
kind = "webhook"
url = "https://example.org/hooks/cron"
secret_env = "OPS_HOOK_SECRET"
users = ["alice"]

[destinations.ops]
kind = "webhook"
url = "https://example.org/hooks/ops"
secret_env = "OPS_SECRET"
events = ["run.finished", "run.started"]

[destinations.pager]
kind = "slack"
url_env = "PAGER_URL"

[destinations.email]
kind = "email"
host = "smtp.example.org"
from = "cron@example.org"
password_env = "SMTP_PASSWORD"
users = ["alice"]

[destinations.family]
kind = "telegram"
chat_id = -1001
thread_id = 7
"""


def destinations(extra: str = "") -> Destinations:
    return parse_config(TOML + extra).destinations


def test_each_entry_means_one_outbox_destination() -> None:
    d = destinations()
    assert [d.target(e).address for e in ("ops-hook", "email:me@example.org", "family")] == [
        "dest:ops-hook",
        "dest:email:me@example.org",
        "tg:-1001:7",
    ]
    assert d.target("telegram:42").address == "tg:42"
    assert d.target("telegram:-100:3").address == "tg:-100:3"
    assert d.alerts_to == ("pager",)
    with pytest.raises(UnknownDestination, match="no destination named 'nope'"):
        d.target("nope")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('kind = "webhook"\nurl = "https://a"\nsecret_env = "S"\nurl_env = "U"', "url_env"),
        ('kind = "webhook"\nurl = "https://a"\nsecret_env = "S"\ncolour = 1', "'colour'"),
        ('kind = "webhook"\nurl = "https://a"\nsecret = "whsec_x"', "'secret'"),
        ('kind = "slack"\nurl = "https://hooks.slack.com/x"', "url: applies to kind"),
        ('kind = "pigeon"', "kind: must be one of"),
        ('kind = "webhook"\nurl = "ftp://a"\nsecret_env = "S"', "url: must start"),
        ('kind = "webhook"\nurl = "https://a"\nsecret_env = "S"\nevents = ["x"]', "events"),
        ('kind = "email"\nhost = "h"', "from"),
        ('kind = "email"\nhost = "h"\nfrom = "a@b.c"\nsecurity = "ssl"', "security"),
        ('kind = "telegram"', "chat_id"),
    ],
)
def test_a_bad_table_is_an_error_naming_the_key(table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(f"[destinations.x]\n{table}\n")
    assert "[destinations.x]" in str(caught.value)


def test_declared_jobs_and_alerts_name_declared_destinations() -> None:
    with pytest.raises(ConfigError, match=r"\[\[jobs\]\] 'j' deliver_to: no destination"):
        destinations('[[jobs]]\nname = "j"\nprompt = "p"\nevery = "1h"\ndeliver_to = ["x"]\n')
    with pytest.raises(ConfigError, match="alerts_to"):
        parse_config('[cron]\nalerts_to = ["nowhere"]\n')


def test_a_channel_owns_its_name_exactly() -> None:
    assert serves("dest:ops", "dest:ops") and serves("dest:email", "dest:email:me@x.org")
    assert not serves("dest:ops", "dest:ops-hook")
    assert serves("tg:", "tg:42:3") and not serves("tg:", "ws:user:a")


def planned(d: Destinations, status: RunStatus, **fields: Any) -> list[tuple[str, str, str]]:
    record = job(Schedule.interval(60_000), user_id="alice")
    public = dataclasses.replace(record.to_public(), name="report", **fields)
    run = run_of(
        status, summary="all good " * 500, error=None if status is RunStatus.SUCCESS else "boom"
    )
    specs = DeliveryRouter(destinations=d, finished_events=False)(public, run)
    return [
        (s.destination, s.event, s.payload.get("type", "text")) for s in specs if not s.broadcast
    ]


def test_the_result_goes_to_deliver_to_and_failures_to_alerts_to() -> None:
    d = destinations()
    to = ("ops-hook", "family", "email:me@example.org", "telegram:5")
    assert planned(d, RunStatus.SUCCESS, deliver_to=to) == [
        ("dest:ops-hook", "", "run.finished"),
        ("tg:-1001:7", "", "text"),
        ("dest:email:me@example.org", "", "run.finished"),
        ("tg:5", "", "text"),
    ]
    # a failure goes to alerts_to instead: the job's own, else [cron] alerts_to
    assert planned(d, RunStatus.FAILED, deliver_to=to, alerts_to=("ops",)) == [
        ("dest:ops", "", "run.finished")
    ]
    assert planned(d, RunStatus.TIMEOUT, deliver_to=to) == [("dest:pager", "", "run.finished")]
    # a destination removed from the config since: skipped, the others still hear
    gone = planned(d, RunStatus.SUCCESS, deliver_to=("removed", "ops-hook"))
    assert gone == [("dest:ops-hook", "", "run.finished")]
    notice = planned(d, RunStatus.FAILED, deliver_to=to, alerts_to=("ops-hook", "ops"))
    assert notice == [("dest:ops-hook", "", "run.finished"), ("dest:ops", "", "run.finished")]


def test_a_notice_reaches_alerts_and_events_filter_what_a_destination_hears() -> None:
    d = destinations()
    record = job(Schedule.interval(60_000), user_id="alice")
    public = dataclasses.replace(record.to_public(), deliver_to=("ops-hook", "ops"))
    run = dataclasses.replace(run_of(RunStatus.FAILED, error="boom"), notice="paused after 3")
    specs = DeliveryRouter(destinations=d, finished_events=False)(public, run)
    by = {(s.destination, s.event): s.payload for s in specs if s.destination.startswith("dest:")}
    # ops lists only run.finished and run.started: no notice for it; pager gets both
    assert set(by) == {("dest:pager", ""), ("dest:pager", "notice")}
    assert by[("dest:pager", "notice")]["data"]["notice"] == "paused after 3"
    started = DeliveryRouter(destinations=d).started(public, run)
    assert [s.destination for s in started if not s.broadcast] == ["dest:ops"]
    assert started[-1].payload["type"] == "run.started"


def test_the_payload_is_the_interface_with_the_whole_result() -> None:
    d = destinations()
    record = job(Schedule.interval(60_000), user_id="alice")
    public = dataclasses.replace(record.to_public(), deliver_to=("ops-hook",))
    run = run_of(RunStatus.SUCCESS, summary="x" * 50_000)
    (spec,) = [s for s in DeliveryRouter(destinations=d)(public, run) if not s.broadcast]
    assert set(spec.payload) == {"type", "timestamp", "data"}
    assert set(spec.payload["data"]) == {
        "job_id", "job_name", "run_id", "status", "success", "scheduled_for",
        "completed_at", "result", "error", "cost_usd", "notice",
    }  # fmt: skip
    assert spec.payload["data"]["result"] == "x" * 50_000
    assert spec.payload["data"]["success"] is True


async def test_a_non_admin_may_use_only_what_an_admin_allowed_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    store = await CronStore.open(str(tmp_path / "d.db"))
    try:
        ops = JobOperations(store, destinations=destinations())
        alice, bob = Principal("alice"), Principal("bob")
        chat = {"telegram_chat_id": 42}

        def add(name: str, *to: str) -> JobFields:
            return JobFields(name=name, prompt="p", every="1h", deliver_to=to)

        made = await ops.add(
            alice, add("a", "ops-hook", "email:me@example.org", "telegram:42"), chat
        )
        assert made.deliver_to == ["ops-hook", "email:me@example.org", "telegram:42"]
        refused = [
            (bob, add("b1", "ops-hook"), chat, "ops-hook"),  # not in its users
            (alice, add("b2", "ops"), chat, "'ops'"),  # no users at all: admins only
            (alice, add("b3", "telegram:43"), chat, "telegram:43"),  # someone else's chat
            (alice, add("b4", "telegram:42"), None, "telegram:42"),  # not writing from it
        ]
        for who, fields, origin, named in refused:
            with pytest.raises(DestinationNotAllowed, match=named):
                await ops.add(who, fields, origin)
        with pytest.raises(DestinationNotAllowed, match="ops"):
            await ops.update(alice, "a", JobFields(alerts_to=("ops",)))
        with pytest.raises(UnknownDestination):
            await ops.add(LOCAL_ADMIN, add("b5", "nope"))
        with pytest.raises(InvalidJob, match="email:ADDRESS"):
            await ops.add(LOCAL_ADMIN, add("b6", "email:nobody"))
        assert [j.name for j in await store.list_jobs()] == ["a"]
        assert (await store.get_job(made.id)).alerts_to is None  # type: ignore[union-attr]
        admin = await ops.add(LOCAL_ADMIN, add("c", "ops", "telegram:43"))
        assert admin.deliver_to == ["ops", "telegram:43"]
        cleared = await ops.update(alice, "a", JobFields(deliver_to=("",)))
        assert cleared.deliver_to == []
    finally:
        await store.close()


def test_the_readme_destinations_example_is_a_valid_config() -> None:
    section = documentation().split("### Destinations", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```toml\n")[1:]]
    for each in blocks[1:]:  # the subsections' examples (Slack, Discord, email) parse too
        assert parse_config(each).destinations.named
    found = parse_config(blocks[0]).destinations
    assert sorted(found.named) == ["alerts", "email", "family", "ops-hook", "team"]
    assert {c.kind for c in found.named.values()} == {
        "webhook", "slack", "discord", "email", "telegram",
    }  # fmt: skip
    assert found.target("email:me@example.org").address == "dest:email:me@example.org"
    assert found.target("family").address == "tg:-1001234567890:42"
    assert found.alerts_to == ("alerts",)
