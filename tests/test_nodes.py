"""A library CronScheduler heartbeats while it runs, so a job added meanwhile gets no warning;
once it stopped (cleanly, or silent for 3 heartbeats) the tool answer warns, on every backend."""

from __future__ import annotations

from importlib import metadata

from starpod_cron import CronStore, ManualClock, NodeStatus
from starpod_cron.executors.echo import EchoExecutor
from starpod_cron.nodes import NodeHeartbeat, package_version
from starpod_cron.operations import NO_SCHEDULER
from starpod_cron.scheduler import CronScheduler
from starpod_cron.timeutil import from_ms
from starpod_cron.tools import call_tool
from tests.conftest import eventually


async def test_a_job_added_with_no_scheduler_up_is_saved_with_a_warning(
    store: CronStore,
) -> None:
    answer = await call_tool(store, "cron_add", {"prompt": "hi", "every": "1h", "name": "a"})
    assert answer["warning"] == NO_SCHEDULER and "fires only once" in answer["warning"]
    assert await store.get_job_by_name("a") is not None


async def test_a_running_library_scheduler_silences_the_warning_until_it_stops(
    store: CronStore, clock: ManualClock
) -> None:
    scheduler = CronScheduler(store, EchoExecutor(store), tick_secs=1)
    scheduler.start()
    try:
        await eventually(store.schedulers_up, what="the scheduler's first heartbeat")
        (node,) = await store.list_nodes()
        assert node.id == scheduler.owner and node.roles == ("scheduler",)
        answer = await call_tool(store, "cron_add", {"prompt": "hi", "every": "1h", "name": "a"})
        assert "warning" not in answer
    finally:
        await scheduler.stop()
    (node,) = await store.list_nodes()
    assert node.status(from_ms(clock.now_ms())) is NodeStatus.STOPPED
    answer = await call_tool(store, "cron_add", {"prompt": "hi", "every": "1h", "name": "b"})
    assert answer["warning"] == NO_SCHEDULER


async def test_a_scheduler_silent_for_three_heartbeats_counts_as_not_up(
    store: CronStore, clock: ManualClock
) -> None:
    beat = NodeHeartbeat(store, "node-1", every_secs=60, roles=lambda: ["scheduler", "websocket"])
    scheduler = CronScheduler(store, EchoExecutor(store), tick_secs=1, heartbeat=beat)
    scheduler.start()
    try:
        await eventually(store.schedulers_up, what="the first heartbeat")
        assert [n.id for n in await store.list_nodes()] == ["node-1"]  # one row per process
        clock.advance(181)  # the next real beat is a minute away: 3 intervals pass silently
        answer = await call_tool(store, "cron_add", {"prompt": "hi", "every": "1h", "name": "c"})
        assert answer["warning"] == NO_SCHEDULER
    finally:
        await scheduler.stop()


def test_a_node_reports_the_installed_version() -> None:
    # one definition (starpod_cron/version.py, read by pyproject.toml), no metadata lookup
    assert package_version() == metadata.version("starpod-cron")
