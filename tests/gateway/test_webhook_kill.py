"""A gateway SIGKILLed in the middle of delivering to webhooks (real ``starpod-cron serve``
processes, receivers verifying every signature): after each kill at most the one message in
flight per destination is sent again, counted by the receivers by ``webhook-id``."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from starpod_cron import CronStore, JobSpec, Schedule
from tests.gateway.hookreceiver import HookReceiver, running_receiver
from tests.gateway.test_telegram import until
from tests.processes import serve

COUNT = 80
NAMES = ("left", "right")


def toml(receivers: dict[str, HookReceiver]) -> str:
    text = (
        '[executor]\nkind = "python"\ntarget = "tests.targets:run"\n'
        "[cron]\ntick_secs = 0.5\n"
        "[gateway]\ndelivery_backoff_secs = [0.2]\ndelivery_lease_secs = 2\n"
        "delivery_max_attempts = 100\n"
    )
    for name, receiver in receivers.items():
        text += (
            f'[destinations.{name}]\nkind = "webhook"\nurl = "{receiver.url}/{name}"\n'
            f'secret_env = "HOOK_{name.upper()}"\n'
        )
    return text


@pytest.mark.slow
async def test_kills_mid_delivery_repeat_at_most_the_message_in_flight_per_destination(
    tmp_path: Path,
) -> None:
    async with AsyncExitStack() as stack:
        receivers = {
            n: await stack.enter_async_context(running_receiver(hold_secs=0.02)) for n in NAMES
        }
        (tmp_path / "agent.toml").write_text(toml(receivers))
        env = {f"HOOK_{n.upper()}": r.secret for n, r in receivers.items()}
        async with CronStore.open(str(tmp_path / "starpod-cron.db")) as store:
            at = datetime.now(UTC) + timedelta(seconds=2)
            specs = [
                JobSpec(f"r{i:03}", f"number {i}", Schedule.one_shot(at), deliver_to=NAMES)
                for i in range(COUNT)
            ]
            await store.add_jobs(specs)
        kills = 0
        for target in (20, 50):
            gateway = await serve(tmp_path, env=env)
            await until(
                lambda t=target: len(receivers["left"].accepted) >= t, timeout=60, what="sent"
            )
            gateway.proc.kill()  # SIGKILL mid-delivery
            await gateway.proc.wait()
            kills += 1
        gateway = await serve(tmp_path, env=env)
        try:
            for receiver in receivers.values():
                await until(
                    lambda r=receiver: len(set(r.ids())) >= COUNT, timeout=60, what="all results"
                )
            await asyncio.sleep(2.5)  # past the delivery lease: a late resend shows up now
        finally:
            gateway.proc.send_signal(signal.SIGTERM)
            await gateway.finish()
    for name, receiver in receivers.items():
        seen = Counter(receiver.ids())
        assert len(seen) == COUNT and receiver.unverified == 0, name
        repeats = sum(n - 1 for n in seen.values())
        assert repeats <= kills, f"{name}: {repeats} repeats after {kills} kills"
        numbers = {r.body["data"]["result"] for r in receiver.accepted}
        assert numbers == {f"done: number {i}" for i in range(COUNT)}
