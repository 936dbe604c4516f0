"""Three `starpod-cron serve` processes on one store (PostgreSQL, and one SQLite file), as a
user runs them behind a load balancer: real processes, real sockets, the Bot API stand-in.

Each WebSocket client, whichever node it is connected to, gets exactly the events of its own
user's runs, once each and in event-id order, though the runs were executed by every node.
SIGKILL the node polling Telegram: another node answers a chat command within 10 s, and the
chat messages pending at the kill are each sent once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from starpod_cron import CronStore, DeliveryStatus, JobSpec, Schedule
from tests.backends import BACKENDS, store_url
from tests.conftest import until
from tests.gateway.botapi import TOKEN, BotApi, running_botapi
from tests.gateway.conftest import WsClient
from tests.processes import Serve, run_cli, serve

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pg-nodes")]

OWNER = 42  # the Telegram user (and private chat) the jobs came from
USERS = ["u0", "u1", "u2"]
JOBS_PER_USER = {"u0": 67, "u1": 67, "u2": 66}  # 200 runs


def agent_toml(url: str, api: BotApi) -> str:
    tokens = "\n".join(f'"{u}-token-0123456789" = {{ user_id = "{u}" }}' for u in USERS)
    return f"""
[cron]
tick_secs = 1
lease_secs = 5
max_concurrent_runs = 16

[store]
url = "{url}"

[executor]
kind = "python"
target = "tests.gateway.targets:run_here"

[gateway]
delivery_backoff_secs = [0.2, 0.5]
delivery_lease_secs = 2
delivery_max_attempts = 100
heartbeat_secs = 0.5

[gateway.tokens]
{tokens}

[telegram]
token_env = "STARPOD_TEST_TG_TOKEN"
base_url = "{api.base_url}"
allowed_user_ids = [{OWNER}]
poll_timeout_secs = 1
leader_lease_secs = 3
chat_messages_per_sec = 1000  # 200 results to one chat: counted, not paced as Telegram wants
messages_per_sec = 10000
"""


@asynccontextmanager
async def cluster(
    stack: AsyncExitStack, tmp_path: Path, backend: str, size: int
) -> AsyncIterator[tuple[CronStore, BotApi, list[Serve]]]:
    """``size`` gateways on one store (with the Bot API stand-in), a store object for the test,
    and the nodes' stderr in files; every node is stopped and checked at the end."""
    url = await stack.enter_async_context(store_url(backend, str(tmp_path)))
    api = await stack.enter_async_context(running_botapi())
    (tmp_path / "agent.toml").write_text(agent_toml(url, api))
    store = await stack.enter_async_context(CronStore.open(url))
    env = {"STARPOD_TEST_TG_TOKEN": TOKEN}
    nodes = [await serve(tmp_path, env=env, log=tmp_path / f"node{i}.log") for i in range(size)]
    try:
        yield store, api, nodes
    finally:
        for node in nodes:
            if node.proc.returncode is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            assert node.log is not None
            code = await asyncio.wait_for(node.proc.wait(), 40)
            assert code in (0, -signal.SIGKILL), node.log.read_text()[-3000:]
            assert TOKEN not in node.log.read_text()  # the bot token is never logged


@asynccontextmanager
async def ws(node: Serve, user: str) -> AsyncIterator[WsClient]:
    headers = {"Authorization": f"Bearer {user}-token-0123456789"}
    async with connect(f"ws://127.0.0.1:{node.port}/", additional_headers=headers) as conn:
        client = WsClient(conn)
        try:
            yield client
        finally:
            await client.close()


async def leader_pid(store: CronStore) -> int:
    async def current() -> int | None:
        now = datetime.now(UTC)
        for lease in await store.list_leases():
            if lease.name.startswith("telegram:") and lease.expires_at > now:
                return int(lease.holder.split(":")[1])  # host/boot/pidns:PID:random
        return None

    deadline = time.monotonic() + 15
    while (pid := await current()) is None:
        assert time.monotonic() < deadline, "no node took the Telegram lease"
        await asyncio.sleep(0.1)
    return pid


@pytest.mark.timeout(180)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_three_gateways_share_events_telegram_and_the_outbox(
    tmp_path: Path, backend: str
) -> None:
    async with AsyncExitStack() as stack:
        store, api, nodes = await stack.enter_async_context(cluster(stack, tmp_path, backend, 3))
        clients = {
            user: await stack.enter_async_context(ws(node, user))
            for user, node in zip(USERS, nodes, strict=True)
        }
        first_leader = await leader_pid(store)
        api.send_delay = 0.03  # ~6 s to send the 200 results to the one chat, in order

        at = datetime.now(UTC) + timedelta(seconds=2)
        await store.add_jobs(
            [
                JobSpec(
                    f"{user}-job-{i}",
                    f"{user} prompt {i}",
                    Schedule.one_shot(at),
                    user_id=user,
                    origin={"telegram_chat_id": OWNER},
                )
                for user, count in JOBS_PER_USER.items()
                for i in range(count)
            ]
        )

        # WebSocket: each client gets exactly its own user's events, once, in order
        for user, client in clients.items():
            await client.until(lambda c=client, u=user: len(c.events) >= JOBS_PER_USER[u], 40)
        await asyncio.sleep(1)  # anything extra (a duplicate, another user's) shows up now
        executors: set[str] = set()
        for user, client in clients.items():
            names = [e["job_name"] for e in client.events]
            assert len(names) == JOBS_PER_USER[user] == len(set(names))
            assert all(name.startswith(f"{user}-job-") for name in names)
            ids = [e["event_id"] for e in client.events]
            assert ids == sorted(ids)
            executors.update(e["session_id"].split("-")[1] for e in client.events)
        # runs were executed by every node, and each client saw those of all nodes
        assert executors == {str(n.proc.pid) for n in nodes}

        # replay answers the same on every node: u0's events, asked of another node
        async with ws(nodes[2], "u0") as again:
            answer = await again.request("replay", since=0)
            assert answer["data"]["replayed"] == JOBS_PER_USER["u0"]
            await again.until(lambda: len(again.events) >= JOBS_PER_USER["u0"])
            replayed = [e["event_id"] for e in again.events]
            assert replayed == [e["event_id"] for e in clients["u0"].events]

        # SIGKILL the Telegram leader while results are still being sent to the chat
        await until(lambda: len(api.texts(OWNER)) >= 30, 30, "the first results in the chat")
        killed = next(n for n in nodes if n.proc.pid == first_leader)
        killed.proc.send_signal(signal.SIGKILL)
        await killed.proc.wait()
        killed_at = time.monotonic()
        undelivered = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
        pending = [
            d for d in await store.list_deliveries(0, [f"tg:{OWNER}"]) if d.status in undelivered
        ]
        assert pending, "the kill should come while results are still queued"
        api.type(OWNER, "/tz")
        await until(
            lambda: any(t.startswith("Your time zone") for t in api.texts(OWNER)),
            10,
            "another node answering /tz within 10 s of the kill",
        )
        takeover = time.monotonic() - killed_at
        assert await leader_pid(store) != first_leader

        # every result reaches the chat; those pending at the kill exactly once
        await until(lambda: len(set(api.texts(OWNER))) >= 201, 60, "all 200 results")
        await asyncio.sleep(2.5)  # past the delivery lease: a late resend would show up now
        sent = Counter(api.texts(OWNER))
        expected = {
            f"[{user}-job-{i}] done\n\ndone: {user} prompt {i}"
            for user, count in JOBS_PER_USER.items()
            for i in range(count)
        }
        assert expected <= set(sent)
        # each once, but for at most the one message in flight at the kill (README)
        twice = [d.payload["text"] for d in pending if sent[d.payload["text"]] != 1]
        assert len(twice) <= 1 and all(sent[t] == 2 for t in twice), twice
        assert sum(n - 1 for n in sent.values()) == len(twice)
        assert sum(t.startswith("Your time zone") for t in api.texts(OWNER)) == 1
        assert api.handed_out[max(api.handed_out)] == 1  # the /tz update was handled once

        # the nodes as an operator sees them: the killed one is gone, a survivor leads
        await asyncio.sleep(1.6)  # 3 heartbeats of 0.5 s
        code, out, err = await run_cli(tmp_path, "nodes", "list", "--json")
        assert code == 0, err
        listed = {n["pid"]: n for n in json.loads(out)["data"]["nodes"]}
        assert listed[killed.proc.pid]["status"] == "gone"
        alive = [listed[n.proc.pid] for n in nodes if n is not killed]
        assert all(n["status"] == "up" for n in alive)
        assert sum("telegram-leader" in n["roles"] for n in alive) == 1
        print(f"{backend}: Telegram answered {takeover:.1f}s after the leader was killed")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_frozen_leader_is_replaced_and_does_not_poll_when_it_wakes(
    tmp_path: Path, backend: str
) -> None:
    """A leader that stops answering without dying (SIGSTOP: a VM paused, a machine cut off)
    is not provably dead, so the others wait for its lease to expire (3 s here), then take
    over; when it wakes, it finds its lease gone and handles nothing."""
    async with AsyncExitStack() as stack:
        store, api, nodes = await stack.enter_async_context(cluster(stack, tmp_path, backend, 2))
        frozen_pid = await leader_pid(store)
        frozen = next(n for n in nodes if n.proc.pid == frozen_pid)
        frozen.proc.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            api.type(OWNER, "/help")
            await until(lambda: len(api.texts(OWNER)) >= 1, 10, "an answer within 10 s")
            takeover = time.monotonic() - stopped_at
            assert takeover > 2, "a live (frozen) holder keeps its lease until it expires"
            assert await leader_pid(store) != frozen_pid
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(2)  # the old leader wakes, finds its lease gone, steps down
        for i in range(3):
            api.type(OWNER, "/tz")
            await until(lambda i=i: len(api.texts(OWNER)) >= 2 + i, 10, f"answer {i + 1}")
        await asyncio.sleep(1.5)
        # /help once, /tz three times: nothing twice, though the frozen leader's last poll
        # had received /help before it froze (it finds its lease gone and drops it)
        assert len(api.texts(OWNER)) == 4
        assert frozen.log is not None
        log = frozen.log.read_text()
        assert "stepping down" in log or "may have passed" in log
        print(f"{backend}: a frozen leader was replaced after {takeover:.1f}s")
