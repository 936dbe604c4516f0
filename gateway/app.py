"""The composition root: store, executor, scheduler, outbox, WebSocket server and (with a
token) the Telegram bot, as named, supervised tasks in one process; stopped gracefully on
SIGINT/SIGTERM or when any of them dies."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from starpod_cron import CronScheduler, CronStore
from starpod_cron.config import AgentConfig
from starpod_cron.executors import build_executor

from .jobs_api import JobsApi
from .outbox import Channel, DeliveryRouter, Outbox
from .ws import WsServer, load_tokens

log = logging.getLogger("gateway")


class RedactSecrets(logging.Filter):
    """Keeps tokens out of every log line (httpx logs request URLs, which hold the bot token)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(s in message for s in self.secrets):
                for secret in self.secrets:
                    message = message.replace(secret, "[REDACTED]")
                record.msg, record.args = message, ()
        return True


def setup_logging(secrets: list[str], verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore", "websockets", "aiosqlite", "telegram", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("starpod_cron.scheduler").setLevel(
        logging.INFO if verbose else logging.WARNING
    )


class Gateway:
    def __init__(self, config: AgentConfig, *, db_url: str | None = None) -> None:
        self.config = config
        self.db_url = db_url or config.store.url
        self.telegram_token = os.environ.get(config.telegram.token_env, "") or config.telegram.token
        self.ws: WsServer | None = None
        self.outbox: Outbox | None = None
        self.store: CronStore | None = None
        self.ready = asyncio.Event()
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Run until asked to stop; then shut everything down in order."""
        config = self.config
        store = self.store = await CronStore.open(self.db_url, settings=config.store_settings())
        executor = build_executor(config.executor, store)
        scheduler = CronScheduler(store, executor, **config.scheduler_options())
        owner = f"gateway:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        store.set_delivery_planner(
            DeliveryRouter(
                telegram=bool(self.telegram_token), notify_chat_ids=config.telegram.notify_chat_ids
            )
        )
        api = JobsApi(store, scheduler)
        self.ws = WsServer(api, config.gateway, load_tokens(config.gateway))
        channels: dict[str, Channel] = {"ws:": self.ws}
        bot = None
        if self.telegram_token:
            from .telegram import TelegramBot  # the Telegram library loads only when used

            bot = TelegramBot(config.telegram, self.telegram_token, api)
            channels["tg:"] = bot
        self.outbox = Outbox(
            store,
            owner,
            channels,
            max_attempts=config.gateway.delivery_max_attempts,
            backoff_secs=config.gateway.delivery_backoff_secs,
            lease_secs=config.gateway.delivery_lease_secs,
        )
        scheduler.with_notifier(self.outbox.notifier)
        tasks: list[asyncio.Task[Any]] = []
        try:
            await self.ws.start()
            if bot is not None:
                await bot.start()
            tasks.append(_task(self.outbox.run(), "gateway:outbox"))
            tasks.append(scheduler.start())
            self._announce(store, executor.description, bot is not None)
            self.ready.set()
            stop = _task(self._stop.wait(), "gateway:stop-signal")
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop and not task.cancelled() and task.exception():
                    log.error(
                        "%s died; stopping the gateway", task.get_name(), exc_info=task.exception()
                    )
            stop.cancel()
        finally:
            log.info("stopping: scheduler (waiting for running jobs), outbox, servers")
            await scheduler.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if bot is not None:
                await bot.stop()
            await self.ws.stop()
            await executor.aclose()
            await store.close()
            log.info("stopped")

    def _announce(self, store: CronStore, executor: str, telegram: bool) -> None:
        assert self.ws is not None
        g = self.config.gateway
        print(f"starpod-cron gateway: store {self.db_url}; executor {executor}", file=sys.stderr)
        auth = "token auth" if self.ws.tokens else "no tokens: local connections only"
        print(f"  WebSocket on ws://{g.host}:{self.ws.port} ({auth})", file=sys.stderr)
        if telegram:
            print("  Telegram bot: polling", file=sys.stderr)
        else:
            print(
                f"  Telegram bot: off (set ${self.config.telegram.token_env} to enable)",
                file=sys.stderr,
            )
        print("  Ctrl-C stops it gracefully.", file=sys.stderr, flush=True)


def _task(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    return asyncio.create_task(coro, name=name)


def serve(
    config: AgentConfig, *, db_url: str | None, host: str | None, port: int | None, verbose: bool
) -> int:
    """``starpod-cron serve``: run the gateway in the foreground until SIGINT/SIGTERM."""
    gateway_config = config.gateway
    if host is not None:
        gateway_config = replace(gateway_config, host=host)
    if port is not None:
        gateway_config = replace(gateway_config, port=port)
    config = replace(config, gateway=gateway_config)
    gateway = Gateway(config, db_url=db_url)
    setup_logging([gateway.telegram_token, *config.gateway.tokens], verbose)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, gateway.request_stop)
        await gateway.run()

    asyncio.run(main())
    return 0
