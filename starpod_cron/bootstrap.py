"""Open a store and build a scheduler from ``agent.toml`` settings, the same way for the CLI and
the gateway: same settings, same delivery routing (so a run started with ``starpod-cron jobs
run`` is delivered like a scheduled one), same limits."""

from __future__ import annotations

import os

from .clock import Clock
from .config import AgentConfig
from .operations import UserLimits
from .routing import DeliveryRouter
from .store import CronStore, StoreOpener

STORE_ENV = "STARPOD_DB"


def store_url(config: AgentConfig, given: str | None = None) -> str:
    """Where the store is: ``given`` (``--db``), else ``$STARPOD_DB``, else ``[store] url``."""
    return given or os.environ.get(STORE_ENV) or config.store.url


def open_store(
    config: AgentConfig,
    url: str | None = None,
    *,
    create: bool = True,
    clock: Clock | None = None,
) -> StoreOpener[CronStore]:
    """``await open_store(config)`` or ``async with open_store(config) as store``: the store at
    ``url`` (default: see :func:`store_url`) with the config's settings and delivery routing
    (and the ``run.started`` and ``run.finished`` events, unless ``[gateway]
    run_started_events`` / ``run_finished_events = false``)."""
    router = delivery_router(config)
    return CronStore.open(
        store_url(config, url),
        settings=config.store_settings,
        clock=clock,
        create=create,
        delivery_planner=router,
        start_planner=router.started if config.gateway.run_started_events else None,
    )


def delivery_router(config: AgentConfig) -> DeliveryRouter:
    return DeliveryRouter(
        notify_chat_ids=config.telegram.notify_chat_ids,
        finished_events=config.gateway.run_finished_events,
        destinations=config.destinations,
    )


def user_limits(config: AgentConfig) -> UserLimits:
    g = config.gateway
    return UserLimits(
        max_jobs_per_user=g.max_jobs_per_user,
        min_interval_secs=g.min_interval_secs,
        max_prompt_chars=g.max_prompt_chars,
    )
