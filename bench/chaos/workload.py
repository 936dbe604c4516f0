"""The workload: per-second crons (queue), every-2-s jobs with ``overlap = allow`` that run
3 s, a few long runs, one-shots added as the schedule goes, results to three Telegram chats
and a webhook; and a WebSocket client per node that reconnects and replays from the last
event it saw whenever its connection breaks (a partition, a kill, a restart)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.asyncio.client import connect

from starpod_cron import CronStore, JobSpec, Overlap, Schedule

CHATS = (1001, 1002, 1003)
EVENTS = ["notification", "run.started", "run.finished"]


def jobs(anchor: datetime) -> list[JobSpec]:
    every = Schedule.interval
    specs = [
        JobSpec(
            f"tick-{i}",
            "sleep=0.05",
            every(1000, anchor),
            overlap=Overlap.QUEUE if i < 2 else Overlap.ALLOW,
            max_instances=1 if i < 2 else 5,
            user_id=f"u{i % 3}",
            origin={"telegram_chat_id": CHATS[i % 3]},
        )
        for i in range(4)
    ]
    specs += [
        JobSpec(
            f"allow-{i}",
            "sleep=3",
            every(2000, anchor),
            overlap=Overlap.ALLOW,
            max_instances=4,
            user_id=f"u{i % 3}",
            deliver_to=["hook"],
        )
        for i in range(2)
    ]
    specs += [
        JobSpec(
            f"long-{i}",
            "sleep=5",
            every(8000, anchor),
            overlap=Overlap.QUEUE,
            user_id=f"u{(i + 1) % 3}",
            origin={"telegram_chat_id": CHATS[i]},
            deliver_to=["hook"],
        )
        for i in range(2)
    ]
    return specs


async def one_shots(store: CronStore, stop: asyncio.Event, added: list[str]) -> None:
    """A one-shot every 1.5 s, due 2 s later, alternating users and chats."""
    k = 0
    while not stop.is_set():
        at = datetime.now(UTC) + timedelta(seconds=2)
        with contextlib.suppress(Exception):  # the database may be down: try again later
            [job_id] = await store.add_jobs(
                [
                    JobSpec(
                        f"once-{k}",
                        "sleep=0.2",
                        Schedule.one_shot(at),
                        user_id=f"u{k % 3}",
                        origin={"telegram_chat_id": CHATS[k % 3]},
                    )
                ]
            )
            added.append(job_id)
            k += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.5)


@dataclass
class Client:
    """One user's WebSocket connection to one node, replaying what it missed."""

    user: str
    url: str
    local: str
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    connects: int = 0
    replays: int = 0
    last: int = 0
    breaks: int = 0
    _sends: set[asyncio.Future[None]] = field(default_factory=set)

    async def run(self, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self.user}-token-0123456789"}
        while not stop.is_set():
            try:
                async with connect(
                    self.url,
                    additional_headers=headers,
                    open_timeout=3,
                    ping_interval=1,
                    ping_timeout=3,
                    local_addr=(self.local, 0),
                ) as conn:
                    self.connects += 1
                    await conn.send(json.dumps({"id": "s", "type": "subscribe", "events": EVENTS}))
                    await conn.send(json.dumps({"id": "r", "type": "replay", "since": self.last}))
                    async for frame in conn:
                        self._take(json.loads(frame), conn)
                        if stop.is_set():
                            return
            except Exception:  # noqa: BLE001 - a cut link, a node gone: reconnect, replay
                self.breaks += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    def _take(self, message: dict[str, Any], conn: Any) -> None:
        if "ok" in message:
            data = message.get("data") or {}
            if message.get("id") == "r" and data.get("more"):
                self.replays += 1
                ask = asyncio.ensure_future(
                    conn.send(
                        json.dumps({"id": "r", "type": "replay", "since": data["last_event_id"]})
                    )
                )
                self._sends.add(ask)
                ask.add_done_callback(self._sends.discard)
            return
        event_id = int(message["event_id"])
        if event_id in set(self.ids[-500:]):
            return  # live and replayed: the same event twice is fine, counted once
        self.ids.append(event_id)
        self.events.append(message)
        self.last = max(self.last, event_id)

    async def catch_up(self, wait_secs: float = 20) -> None:
        """A final replay from the last event seen (what a client does on reconnect)."""
        headers = {"Authorization": f"Bearer {self.user}-token-0123456789"}
        async with (
            asyncio.timeout(wait_secs),
            connect(self.url, additional_headers=headers, local_addr=(self.local, 0)) as conn,
        ):
            await conn.send(json.dumps({"id": "s", "type": "subscribe", "events": EVENTS}))
            more = True
            while more:
                await conn.send(json.dumps({"id": "r", "type": "replay", "since": self.last}))
                while True:
                    message = json.loads(await conn.recv())
                    if message.get("id") == "r":
                        more = bool(message["data"]["more"])
                        if more:
                            self.last = max(self.last, int(message["data"]["last_event_id"]))
                        break
                    if "event_id" in message:
                        self._take(message, conn)
