"""The composition root: store, executor, scheduler, outbox, WebSocket server and (with a
token) the Telegram bot, as named, supervised tasks in one process; stopped gracefully on
SIGINT/SIGTERM (a second signal interrupts running jobs at once) or when a critical task dies.

Background work is supervised by one :class:`TaskSet`: the event feed and the outbox are
restartable, as is the node's heartbeat, which the scheduler runs (a failure is logged with
its traceback and the task restarted with backoff; store outages are retried inside them);
the HTTP and WebSocket servers and the scheduler loop are critical: if one fails, the node
stops and ``serve`` exits 1, so a supervisor (systemd ``Restart=on-failure``) starts it again.
Only SIGINT/SIGTERM exit 0.

Everything opened is registered on one ``AsyncExitStack`` as soon as it exists, so a start-up
failure at any step (a port in use, a bad executor target) closes what was already open and
the process exits: ``serve`` never hangs after printing an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import httpx

from starpod_cron import (
    CronScheduler,
    CronStore,
    InvalidInput,
    StarpodCronError,
    declared,
    logformat,
)
from starpod_cron.bootstrap import open_store, store_url, user_limits
from starpod_cron.chat import AgentChat
from starpod_cron.clock import Clock
from starpod_cron.config import AgentConfig
from starpod_cron.dbclock import DatabaseClock
from starpod_cron.executors import OpenAIExecutor, build_executor
from starpod_cron.leadership import LeaderElection
from starpod_cron.logformat import say, say_error
from starpod_cron.logs import redact, register_secrets
from starpod_cron.maintenance import configured_jobs
from starpod_cron.nodes import NodeHeartbeat
from starpod_cron.operations import JobOperations
from starpod_cron.owner import new_owner
from starpod_cron.preview import PreviewSettings
from starpod_cron.routing import TELEGRAM_PREFIX
from starpod_cron.runner import run as run_async
from starpod_cron.sdnotify import Notifier
from starpod_cron.store.sqlfile import load_migrations
from starpod_cron.tasks import TaskSet
from starpod_cron.timeutil import from_ms

from .channels.configured import destination_channels
from .events import EventFeed
from .http import HttpApi, listen
from .login import LoginSessions, site_path
from .metrics import Metrics
from .origin import check_bind
from .outbox import Channel, Outbox
from .ws import WsServer, load_tokens

log = logging.getLogger("gateway")


class StartupError(StarpodCronError):
    """The gateway could not start (a port in use, say); the message says why."""


class NodeFailed(StarpodCronError):
    """Something the node cannot run without (a server, the scheduler) failed; it stopped."""


def setup_logging(verbose: bool, kind: str = "text") -> None:
    text = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logformat.setup_logging(kind, text, logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore", "websockets", "telegram", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("starpod_cron.scheduler").setLevel(
        logging.INFO if verbose else logging.WARNING
    )
    for noisy in ("httpx", "httpcore", "websockets", "telegram", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("starpod_cron.scheduler").setLevel(
        logging.INFO if verbose else logging.WARNING
    )


class Gateway:
    def __init__(
        self, config: AgentConfig, *, db_url: str | None = None, clock: Clock | None = None
    ) -> None:
        check_bind(config.gateway)  # before anything is opened: one line, exit 2
        self.config = config
        self.clock = DatabaseClock(clock, max_skew_secs=config.scheduler.max_clock_skew_secs)
        """The store's clock: the database's, counted on by the monotonic clock (``clock``:
        this node's own wall clock, a skewed one in tests)."""
        self.db_url = store_url(config, db_url)
        self.telegram_token = os.environ.get(config.telegram.token_env, "") or config.telegram.token
        tokens = load_tokens(config.gateway)
        register_secrets([self.telegram_token, *tokens])
        self.tokens = tokens
        self.ws: WsServer | None = None
        self.outbox: Outbox | None = None
        self.store: CronStore | None = None
        self.scheduler: CronScheduler | None = None
        self.election: LeaderElection | None = None
        self.http: HttpApi | None = None
        self.http_port: int | None = None
        self.node_id = new_owner()
        """This process in the store: its heartbeat, lease holder and outbox owner."""
        logformat.set_node(self.node_id)
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._signals = 0
        self.systemd = Notifier()
        self.failure: str | None = None
        """Why the node stopped, if not asked to (a critical task failed)."""

    def _fail(self, what: str) -> None:
        if self.failure is None and not self._stop.is_set():
            self.failure = what
            log.critical("%s; stopping the node", what)
        self._stop.set()

    def request_stop(self) -> None:
        """First call: stop gracefully. Later calls: interrupt running jobs at once."""
        self._signals += 1
        if self._signals == 1:
            self._stop.set()
        elif self.scheduler is not None:
            say("interrupting running jobs now")
            self.scheduler.interrupt()

    async def run(self) -> None:
        """Start everything, run until asked to stop (or a critical task dies), then shut
        down in reverse order. Start-up errors propagate after clean-up."""
        config = self.config
        async with contextlib.AsyncExitStack() as stack:
            store = self.store = await open_store(config, self.db_url, clock=self.clock)
            stack.push_async_callback(store.close)
            await self.clock.sync(store.database_now_ms)  # before any decision reads it
            registry = configured_jobs(config, store)
            synced = await declared.sync_at_start(store, registry, from_ms(store.clock.now_ms()))
            if synced.changes():
                log.warning(
                    "declared jobs synced: created %s, updated %s, disabled %s",
                    synced.created or "none",
                    synced.updated or "none",
                    synced.disabled or "none",
                )
            model = build_executor(
                config.executor, store, config.base_dir, limits=user_limits(config)
            )
            executor = declared.with_declared(model, registry)
            stack.push_async_callback(executor.aclose)
            for note in executor.notes:
                log.warning("%s", note)
            g = config.gateway
            heartbeat = NodeHeartbeat(
                store, self.node_id, every_secs=g.heartbeat_secs, roles=self.roles
            )  # beats while the scheduler runs: one node row for this process
            scheduler = self.scheduler = CronScheduler(
                store, executor, config.scheduler, heartbeat=heartbeat
            )
            ops = JobOperations(
                store,
                scheduler.run_now,
                user_limits(config),
                backfiller=scheduler.backfill,
                preview=PreviewSettings.of(config),
                destinations=config.destinations,
            )
            chat = (
                AgentChat(model, ops, store, max_history=config.executor.max_history_messages)
                if isinstance(model, OpenAIExecutor)
                else None
            )
            logins = LoginSessions(
                store,
                self.tokens,
                g.session_ttl_secs,
                secure=g.public_url.startswith("https://"),  # TLS ends at a reverse proxy
                path=site_path(g.public_url),  # under the proxy's path prefix, if any
            )
            await logins.end_removed()  # a token removed from the config ends its sessions
            self.ws = WsServer(ops, g, self.tokens, chat, logins)
            events = EventFeed(store, self.ws.publish)
            await events.start()  # clients see events from now on (earlier: replay)
            try:
                await self.ws.start()
            except OSError as exc:
                raise StartupError(_listen_error(g.host, g.port, exc)) from None
            stack.push_async_callback(self.ws.stop)
            tasks = TaskSet(
                "gateway", on_failure=lambda task: self._fail(f"{task.get_name()} stopped")
            )
            stack.push_async_callback(tasks.stop, 5)
            if self.ws.listening:
                tasks.spawn(self.ws.closed(), "websocket-server", critical=True)
            tasks.keep(events.run, "events")
            if self.systemd.watchdog_secs is not None:
                tasks.keep(self.systemd.watchdog, "systemd-watchdog")
            metrics = Metrics(
                store,
                scheduler,
                lambda: len(self.ws.clients) if self.ws else 0,
                lambda: self.outbox.names if self.outbox else (),
            )
            stack.callback(metrics.close)
            if g.http:
                self._serve_http(tasks, stack, ops, scheduler, metrics, logins)
            channels: dict[str, Channel] = {}
            if self.telegram_token:
                from .telegram import TelegramBot, lease_name  # loaded only when used

                self.election = LeaderElection(
                    store,
                    lease_name(self.telegram_token),
                    self.node_id,
                    lease_secs=config.telegram.leader_lease_secs,
                )
                bot = TelegramBot(config.telegram, self.telegram_token, ops, self.election, chat)
                await bot.start()
                stack.push_async_callback(bot.stop)
                channels[TELEGRAM_PREFIX] = bot
            if config.destinations.named:  # webhook, Slack, Discord, email: one client
                client = httpx.AsyncClient(follow_redirects=False)
                stack.push_async_callback(client.aclose)
                channels.update(destination_channels(config.destinations, client))
            if channels:
                self.outbox = Outbox(
                    store,
                    self.node_id,
                    channels,
                    max_attempts=g.delivery_max_attempts,
                    backoff_secs=g.delivery_backoff_secs,
                    lease_secs=g.delivery_lease_secs,
                    idle_secs=min(30, config.scheduler.tick_secs),  # readiness: passes that often
                )
                tasks.keep(self.outbox.run, "outbox")
            main = scheduler.start()
            main.add_done_callback(lambda _: self._fail("the scheduler loop stopped"))
            stack.push_async_callback(self._stop_scheduler)
            await self._announce(executor.description, bool(channels))
            self.ready.set()
            self.systemd.send("READY=1")  # the store is open and every server listens
            try:
                await self._stop.wait()
            finally:
                self._stop.set()  # from here on, tasks ending is the shutdown, not a failure
                self.systemd.send("STOPPING=1")
            log.info("stopping: scheduler (waiting for running jobs), outbox, servers")
        log.info("stopped")
        if self.failure is not None:
            raise NodeFailed(f"the node stopped: {self.failure} (see the log above)")

    def _serve_http(
        self,
        tasks: TaskSet,
        stack: contextlib.AsyncExitStack,
        ops: JobOperations,
        scheduler: CronScheduler,
        metrics: Metrics,
        logins: LoginSessions,
    ) -> None:
        g = self.config.gateway
        try:
            sock = listen(g.host, g.http_port)
        except OSError as exc:
            raise StartupError(_listen_error(g.host, g.http_port, exc)) from None
        self.http_port = int(sock.getsockname()[1])
        assert self.ws is not None
        ws = self.ws
        ws.http_port = self.http_port
        self.http = HttpApi(
            ops,
            scheduler,
            self.tokens,
            metrics,
            ws=ws,
            ws_port=lambda: ws.port if ws.listening else None,
            outbox=lambda: self.outbox,
            logins=logins,
            policy=ws.policy,
        )
        tasks.spawn(self.http.serve(sock), "http", critical=True)

    def roles(self) -> list[str]:
        """What this node does, for ``starpod-cron nodes list``."""
        roles = ["scheduler", "websocket"]
        if self.election is not None:
            roles.append("telegram-leader" if self.election.is_leader else "telegram-standby")
        return roles

    async def _stop_scheduler(self) -> None:
        scheduler = self.scheduler
        assert scheduler is not None
        running = [name for name, _, started in scheduler.active_runs() if started]
        if running:
            wait = scheduler.settings.shutdown_timeout_secs
            say(
                f"stopping: waiting up to {wait:g}s for {len(running)} running job(s) "
                f"({', '.join(sorted(set(running))[:10])}); press Ctrl-C again to interrupt "
                "them now"
            )
        await scheduler.stop()

    async def _announce(self, executor: str, telegram: bool) -> None:
        """The start-up summary: ONE record with JSON logs, a few lines for people else."""
        assert self.ws is not None and self.store is not None
        g = self.config.gateway
        dialect = "postgres" if self.db_url.startswith(("postgres:", "postgresql:")) else "sqlite"
        nodes = [n for n in await self.store.list_nodes() if n.stopped_at is None]
        summary = {
            "store": redact(self.db_url),
            "schema_version": load_migrations(dialect)[-1][0],
            "executor": executor,
            "node": self.node_id,
            "ws_port": self.ws.port if self.ws.listening else None,
            "http_port": self.http_port,
            "telegram": telegram,
            "nodes": len(nodes) or 1,
        }
        if logformat.is_json():
            log.info("starpod-cron gateway started", extra=summary)
            return
        auth = "token auth" if self.ws.tokens else "no tokens: local connections only"
        lines = [
            f"starpod-cron gateway: store {summary['store']} (schema version "
            f"{summary['schema_version']}); executor {executor}"
        ]
        if self.ws.listening:
            lines.append(f"  WebSocket on ws://{g.host}:{self.ws.port} ({auth})")
        if self.http_port is not None:
            lines.append(
                f"  Dashboard and API on http://{g.host}:{self.http_port}/ "
                f"(/ws, /healthz, /readyz, /metrics; {auth})"
            )
        if telegram:
            lines.append("  Telegram bot: polling")
        else:
            lines.append(f"  Telegram bot: off (set ${self.config.telegram.token_env} to enable)")
        lines.append("  Ctrl-C stops it gracefully (twice: at once).")
        print("\n".join(lines), file=sys.stderr, flush=True)


def _listen_error(host: str, port: int, exc: OSError) -> str:
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: the address is already in use (another gateway?)"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def serve(
    config: AgentConfig,
    *,
    db_url: str | None,
    host: str | None,
    port: int | None,
    verbose: bool,
    http_port: int | None = None,
) -> int:
    """``starpod-cron serve``: run the gateway in the foreground until SIGINT/SIGTERM.

    Exit codes: 0 stopped by SIGINT/SIGTERM; 1 a runtime error at start-up, or a critical
    task (a server, the scheduler loop) failed; 2 a configuration error.
    Errors are one line on stderr, without a traceback."""
    gateway_config = config.gateway
    if host is not None:
        gateway_config = replace(gateway_config, host=host)
    if port is not None:
        gateway_config = replace(gateway_config, port=port)
    if http_port is not None:
        gateway_config = replace(gateway_config, http_port=http_port)
    config = replace(config, gateway=gateway_config)
    setup_logging(verbose, config.logging.format)
    try:
        gateway = Gateway(config, db_url=db_url)
    except InvalidInput as exc:
        say_error(str(exc))
        return 2

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, gateway.request_stop)
        await gateway.run()

    return run_command(main(), grace=config.scheduler.cancel_grace_secs)


def run_command(main: Coroutine[Any, Any, None], *, grace: float) -> int:
    """Run a gateway command (``serve``, ``mcp``) to its end. Exit codes: 0 it stopped (by a
    signal, or its client went away); 2 a configuration error; 1 any other error. Errors are
    one redacted line on stderr, without a traceback."""
    try:
        run_async(main, grace=grace)
    except InvalidInput as exc:
        say_error(str(exc))
        return 2
    except (StarpodCronError, OSError) as exc:
        say_error(str(exc))
        return 1
    except (asyncio.CancelledError, KeyboardInterrupt):
        return 0
    return 0
