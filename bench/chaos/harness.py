"""``python -m bench.chaos``: three ``serve`` nodes in their own network namespaces on one
PostgreSQL, a workload, a fault schedule from a seed, and the checker (see ``__init__``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from starpod_cron import CronStore, Overlap, StarpodCronError, devpg
from starpod_cron.timeutil import to_ms
from tests.gateway.botapi import BotApi
from tests.gateway.hookreceiver import HookReceiver

from . import net
from .checker import FINAL, Report, _fires, check
from .faults import KINDS, Fault, schedule
from .nodes import USERS, Node, faketime_library
from .proxy import Proxy
from .workload import Client, jobs, one_shots

NODES = 3
SETTLED = f"""SELECT count(DISTINCT (job_id, scheduled_for)) FROM runs
WHERE scheduled_for BETWEEN $3 AND $1 AND status IN ({", ".join(repr(s) for s in FINAL)})
AND job_id = ANY($2::text[])"""
WAITING = """SELECT count(*) FROM deliveries d JOIN runs r ON r.id = d.run_id
WHERE r.scheduled_for <= $1 AND d.status IN ('pending', 'sending')"""
SKIP = 77


def log(message: str) -> None:
    print(f"{datetime.now(UTC).strftime('%H:%M:%S.%f')[:-3]} {message}", flush=True)


def agent_toml(node: Node, db_url: str, bot_url: str, hook_url: str) -> str:
    tokens = "\n".join(f'"{u}-token-0123456789" = {{ user_id = "{u}" }}' for u in USERS)
    return f"""
[cron]
tick_secs = 1
lease_secs = 10
max_concurrent_runs = 40
retry_backoff_secs = [0.5]
# the checker reads every run of the window: none pruned (the default keeps 200 per job,
# 200 s of a per-second job, which a 10-minute schedule would count as lost)
runs_keep_per_job = 1000000

[store]
url = "{db_url}"

[executor]
kind = "python"
target = "bench.chaos.target:run"

[gateway]
delivery_backoff_secs = [0.2, 0.5, 1]
delivery_lease_secs = 10
delivery_max_attempts = 1000
heartbeat_secs = 1

[gateway.tokens]
{tokens}

[telegram]
token_env = "CHAOS_TG_TOKEN"
base_url = "{bot_url}"
allowed_user_ids = [42]
poll_timeout_secs = 1
leader_lease_secs = 3
chat_messages_per_sec = 1000
messages_per_sec = 10000

[destinations.hook]
kind = "webhook"
url = "{hook_url}"
secret_env = "CHAOS_HOOK_SECRET"
timeout_secs = 5
"""


class Standins:
    """The Bot API stand-in and the webhook receiver on the hub's clients address; each
    accepted message is tagged with the node that sent it (its peer address)."""

    def __init__(self, network: net.Network) -> None:
        self.network = network
        self.bot = BotApi()
        self.hook = HookReceiver(host=network.clients_address)
        self.telegram: list[tuple[int, str, int | None]] = []
        self.hooks: list[tuple[str, int | None]] = []
        self._runner: web.AppRunner | None = None

    def node_of(self, peer: str | None) -> int | None:
        for i in range(self.network.nodes):
            if peer == self.network.node_address(i):
                return i
        return None

    async def start(self) -> None:
        peer: contextvars.ContextVar[int | None] = contextvars.ContextVar("peer")
        send = self.bot._send_message

        def sent(params: dict[str, Any]) -> web.Response:
            before = len(self.bot.sent)
            answer = send(params)  # synchronous: nothing else appends meanwhile
            for record in self.bot.sent[before:]:
                self.telegram.append((record["chat_id"], record["text"], peer.get()))
            return answer

        self.bot._send_message = sent  # type: ignore[method-assign]

        async def bot(request: web.Request) -> web.StreamResponse:
            peer.set(self.node_of(request.remote))
            return await self.bot.handle(request)

        original = self.hook._handle

        async def hook(request: web.Request) -> web.Response:
            answer = await original(request)
            if 200 <= answer.status < 300 and "webhook-id" in request.headers:
                self.hooks.append((request.headers["webhook-id"], self.node_of(request.remote)))
            return answer

        self.hook._handle = hook  # type: ignore[method-assign]
        await self.hook.start()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", bot)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.network.clients_address, 0).start()
        port = self._runner.addresses[0][1]
        self.bot.base_url = f"http://{self.network.clients_address}:{port}/bot"

    async def stop(self) -> None:
        await self.hook.stop()
        if self._runner is not None:
            await self._runner.cleanup()


class Chaos:
    def __init__(
        self, args: argparse.Namespace, network: net.Network, work: Path, pg: Any, db_url: str
    ) -> None:
        self.args = args
        self.network = network
        self.work = work
        self.pg = pg
        self.db_url = db_url
        self.faketime = faketime_library()
        self.nodes = [
            Node(i, network.node(i), network.node_address(i), work / f"node{i}", self.faketime)
            for i in range(NODES)
        ]
        self.proxies: list[Proxy] = []
        self.standins = Standins(network)
        self.faults = schedule(args.seed, args.seconds, NODES)
        self.crashed: list[str] = []
        self.kind_counts: Counter[str] = Counter()
        self._expected_down: set[int] = set()
        self.every_fire: list[str] = []
        self.slow_restarts = 0
        self.skipped = 0
        self._reviving: set[int] = set()
        self._revivals: set[asyncio.Future[None]] = set()

    async def fault_start(self, fault: Fault) -> None:
        node = None if fault.node is None else self.nodes[fault.node]
        i = fault.node
        if i is not None and i in self._expected_down:
            raise RuntimeError(f"node{i} is still starting again after its kill")
        if fault.kind.startswith("partition-"):
            assert i is not None
            links = (
                ["db", "clients"]
                if fault.kind == "partition-all"
                else [fault.kind.removeprefix("partition-")]
            )
            for link in links:
                self.network.partition(i, link)
        elif fault.kind == "delay-loss":
            assert i is not None
            self.proxies[i].delay = fault.params["delay_ms"] / 1000
            self.proxies[i].loss = fault.params["loss"]
        elif fault.kind == "sigkill":
            assert node is not None
            self._expected_down.add(node.index)
            await node.kill()
        elif fault.kind == "sigstop":
            assert node is not None
            node.signal(signal.SIGSTOP)
        elif fault.kind == "clock-skew":
            assert node is not None
            node.set_skew(fault.params["skew_secs"])
        elif fault.kind == "pg-restart":
            await asyncio.to_thread(self.pg.restart)

    async def fault_end(self, fault: Fault) -> None:
        node = None if fault.node is None else self.nodes[fault.node]
        i = fault.node
        if fault.kind.startswith("partition-"):
            assert i is not None
            for link in net.LINKS:
                self.network.heal(i, link)
        elif fault.kind == "delay-loss":
            assert i is not None
            self.proxies[i].delay = self.proxies[i].loss = 0.0
        elif fault.kind == "sigkill":
            assert node is not None
            await self.revive(node)
        elif fault.kind == "sigstop":
            assert node is not None
            node.signal(signal.SIGCONT)
        elif fault.kind == "clock-skew":
            assert node is not None
            node.set_skew(0)

    async def revive(self, node: Node) -> None:
        """Start a killed node again (as ``Restart=always``); one that takes longer than 90 s
        (a starved machine) is counted and tried again in the background."""
        if node.index in self._reviving:
            return
        self._reviving.add(node.index)
        try:
            await node.start(self.standins.hook.secret)
        except RuntimeError as exc:
            self.slow_restarts += 1
            log(f"node{node.index} did not start within 90 s, trying again: {str(exc)[-300:]}")
            self._reviving.discard(node.index)
            task = asyncio.ensure_future(self.revive(node))
            self._revivals.add(task)
            task.add_done_callback(self._revivals.discard)
            return
        self._reviving.discard(node.index)
        self._expected_down.discard(node.index)

    async def run_fault(self, t0: float, fault: Fault) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, t0 + fault.at - loop.time()))
        log(f"fault start +{loop.time() - t0:.1f}s {fault.describe()}")
        try:
            await self.fault_start(fault)
        except Exception as exc:  # noqa: BLE001 - the run goes on without this fault
            log(f"fault skipped: {fault.describe()}: {exc}")
            self.skipped += 1
            if fault.kind == "pg-restart":  # the database did not come back: a harness failure
                self.crashed.append(f"{fault.describe()}: {exc!r}")
            return
        self.kind_counts[fault.kind] += 1
        await asyncio.sleep(max(0.0, t0 + fault.end - loop.time()))
        await self.fault_end(fault)
        log(
            f"fault end   +{loop.time() - t0:.1f}s {fault.kind}"
            + ("" if fault.node is None else f" node{fault.node}")
        )

    def watch_nodes(self) -> None:
        for node in self.nodes:
            if node.index in self._expected_down or node.proc is None:
                continue
            if node.proc.returncode is not None:
                self.crashed.append(f"node{node.index} exited {node.proc.returncode} by itself")
                self._expected_down.add(node.index)

    async def quiesce(self, store: CronStore, ids: list[str]) -> None:
        """Every job disabled (what is in flight finishes), so the end state holds still."""
        for job_id in ids:
            for _ in range(30):
                try:
                    await store.disable_job(job_id)
                    break
                except StarpodCronError:
                    await asyncio.sleep(1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(StarpodCronError):
                if not await self._running(store):
                    return
            await asyncio.sleep(0.5)

    first = 0

    async def settle(self, dsn: str, expected: int, last: int, wait_secs: float) -> None:
        """Until every occurrence due by ``last`` has its final record, every one-shot ran
        and no message about them waits (or the timeout)."""
        deadline = time.monotonic() + wait_secs
        done = waiting = -1
        while time.monotonic() < deadline:
            try:
                conn = await asyncpg.connect(dsn, timeout=5)
                try:
                    done = await conn.fetchval(SETTLED, last, self.every_fire, self.first)
                    waiting = await conn.fetchval(WAITING, last)
                finally:
                    await conn.close()
                if done >= expected and not waiting:
                    return
            except (OSError, asyncpg.PostgresError, TimeoutError):
                pass
            await asyncio.sleep(1)
        log(
            f"settle: timed out ({done} of {expected} occurrences recorded, {waiting} "
            "message(s) waiting): checking what there is"
        )

    async def _running(self, store: CronStore) -> int:
        runs = await store.list_recent_runs(limit=500)
        return sum(1 for r in runs if r.status.value == "running")

    async def main(self) -> Report:
        for fault in self.faults:
            log(f"schedule +{fault.at:5.1f}s {fault.describe()}")
        for i in range(NODES):
            proxy = Proxy(self.network.hub_db_side, self._upstream(), seed=self.args.seed + i)
            await proxy.start()
            self.proxies.append(proxy)
        await self.standins.start()
        async with CronStore.open(self.db_url) as store:
            anchor = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
            specs = jobs(anchor)
            ids = await store.add_jobs(specs)
            interval_jobs = {
                job_id: (
                    to_ms(anchor),
                    spec.schedule.every_ms,  # type: ignore[union-attr]
                    spec.overlap is Overlap.QUEUE,
                )
                for job_id, spec in zip(ids, specs, strict=True)
            }
            for node in self.nodes:
                host, port = self.network.hub_db_side, self.proxies[node.index].port
                url = f"postgresql://{self._user()}@{host}:{port}/{self._database()}"
                node.write_config(
                    agent_toml(
                        node, url, self.standins.bot.base_url, self.standins.hook.url + "/hook"
                    )
                )
            log("starting the nodes")
            await asyncio.gather(*(n.start(self.standins.hook.secret) for n in self.nodes))
            stop = asyncio.Event()
            clients = [
                Client(USERS[n.index], f"ws://{n.address}:{n.port}/", self.network.clients_address)
                for n in self.nodes
            ]
            background = [asyncio.ensure_future(c.run(stop)) for c in clients]
            added: list[str] = []
            background.append(asyncio.ensure_future(one_shots(store, stop, added)))
            loop = asyncio.get_running_loop()
            clock = (time.monotonic(), round(time.time() * 1000))
            t0 = loop.time()
            first = self.first = to_ms(datetime.now(UTC)) + 1000
            log(f"schedule starts: {len(self.faults)} faults over {self.args.seconds:.0f}s")
            runner = asyncio.ensure_future(
                asyncio.gather(*(self.run_fault(t0, f) for f in self.faults))
            )
            while not runner.done() or loop.time() < t0 + self.args.seconds:
                self.watch_nodes()
                await asyncio.sleep(0.5)
            runner.result()
            last = to_ms(datetime.now(UTC)) - 1000
            stop.set()
            self.every_fire = [j for j, (_, _, every) in interval_jobs.items() if every]
            expected = sum(
                len(_fires(a, e, first, last))
                for a, e, every_fire in interval_jobs.values()
                if every_fire
            )
            log("schedule over, every fault healed: settling")
            await self.settle(self.db_url, expected, last, wait_secs=60 + self.args.seconds / 5)
            await self.quiesce(store, [j.id for j in await store.list_jobs()])
            self.watch_nodes()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            for c in clients:
                try:
                    await c.catch_up()
                except Exception as exc:  # noqa: BLE001
                    log(f"catch-up of {c.user} failed: {exc!r}")
        codes = await asyncio.gather(*(n.stop() for n in self.nodes))
        report = await check(
            self.db_url,
            first=first,
            last=last,
            interval_jobs=interval_jobs,
            faults=self.faults,
            nodes=NODES,
            telegram=self.standins.telegram,
            hooks=self.standins.hooks,
            calls=[n.calls for n in self.nodes],
            clients=clients,
            clock=clock,
        )
        for problem in self.crashed:
            report.fail(problem)
        for node, code in zip(self.nodes, codes, strict=True):
            if code not in (0, None):
                report.fail(f"node{node.index} exited {code} on SIGTERM")
        report.figures["faults"] = sum(self.kind_counts.values())
        report.figures["faults_by_kind"] = {k: self.kind_counts[k] for k in KINDS}
        report.figures["node_starts"] = sum(n.starts for n in self.nodes)
        report.figures["slow_restarts"] = self.slow_restarts
        report.figures["faults_skipped"] = self.skipped
        (self.work / "standins.json").write_text(
            json.dumps({"telegram": self.standins.telegram, "hooks": self.standins.hooks})
        )
        await self.standins.stop()
        for proxy in self.proxies:
            await proxy.stop()
        return report

    def _upstream(self) -> tuple[str, int]:
        return self.network.db_address, self.pg.port

    def _user(self) -> str:
        return "postgres"

    def _database(self) -> str:
        return "postgres"


def table(report: Report, args: argparse.Namespace) -> str:
    f = report.figures
    rows = [("seed / seconds", f"{args.seed} / {args.seconds:.0f}")]
    rows += [(f"faults: {k}", str(n)) for k, n in f["faults_by_kind"].items()]
    rows += [
        (k.replace("_", " "), json.dumps(f[k]) if isinstance(f[k], dict) else str(f[k]))
        for k in (
            "faults",
            "runs",
            "expected",
            "one_shots",
            "lost",
            "twice",
            "left_running",
            "interrupted_not_retried",
            "coalesced",
            "dup_messages",
            "repeat_calls",
            "calls",
            "early_calls",
            "ws_events",
            "ws_gaps",
            "deliveries",
            "longest_takeover_secs",
            "latest_start_secs",
            "node_starts",
            "slow_restarts",
            "faults_skipped",
        )
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--json", type=Path, help="write the figures and the schedule here")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    why = net.available()
    if why is None and faketime_library() is None:
        why = "libfaketime not found (pip install libfaketime)"
    if why is None:
        try:
            devpg._binaries()
        except devpg.DevPostgresError as exc:
            why = str(exc)
    if why:
        print(f"chaos: skipped: {why}")
        return SKIP
    logging.getLogger("asyncpg").setLevel(logging.CRITICAL)  # its pool's reconnect tracebacks
    log(
        f"tc netem: {'available' if net.netem() else 'not on this kernel'}; delay and loss "
        "go through the userspace proxy of each node's database link"
    )
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    work.chmod(0o755)
    network = net.Network(prefix=f"cx{os.getpid() % 100000}", nodes=NODES)
    pg = devpg.LocalPostgres(
        work / "pg",
        listen=network.db_address,
        port=5432,
        wrap=("ip", "netns", "exec", network.db),
        settings={"fsync": "off"},  # a benchmark; its restarts are fast shutdowns anyway
    )
    started = time.monotonic()
    try:
        network.up()
        network.enter_hub()
        pg.start()
        hba = pg.data_dir / "pg_hba.conf"  # initdb trusts only 127.0.0.1; the nodes are here
        hba.write_text(hba.read_text() + f"host all all {network.addr(0, 0)}/16 trust\n")
        pg.restart()
        chaos = Chaos(args, network, work, pg, pg.url)
        try:
            report = asyncio.run(chaos.main())
        finally:
            for node in chaos.nodes:  # whatever happened, no node outlives the harness
                for pid in node.pids:  # each still ours (its command line names it)?
                    with contextlib.suppress(OSError):
                        line = Path(f"/proc/{pid}/cmdline").read_bytes()
                        if b"serve" in line and node.address.encode() in line:
                            os.kill(pid, signal.SIGKILL)
    finally:
        with contextlib.suppress(Exception):
            pg.stop()
        network.down()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}")
    f = report.figures
    print(table(report, args))
    for problem in report.violations:
        print(f"VIOLATION: {problem}")
    f["wall_secs"] = round(time.monotonic() - started, 1)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seed": args.seed,
                    "seconds": args.seconds,
                    "figures": f,
                    "violations": report.violations,
                    "schedule": [vars(fault) for fault in chaos.faults],
                },
                indent=2,
            )
            + "\n"
        )
    print(
        f"faults={f['faults']} runs={f['runs']} lost={f['lost']} twice={f['twice']} "
        f"dup_messages={f['dup_messages']} repeat_calls={f['repeat_calls']}"
    )
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
