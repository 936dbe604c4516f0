"""Open a store and build a scheduler from ``agent.toml`` settings, the same way for the CLI and
the gateway: same settings, same delivery routing (so a run started with ``starpod-cron jobs
run`` is delivered like a scheduled one), same limits."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .budget import SpendSettings
    from .clock import Clock
    from .config import AgentConfig
    from .operations import UserLimits
    from .routing import DeliveryRouter
    from .store import CronStore, StoreOpener

STORE_ENV = "STARPOD_DB"
"""An alias of ``$STARPOD_STORE_URL`` (see :mod:`starpod_cron.envconfig`)."""


def store_url(config: AgentConfig, given: str | None = None) -> str:
    """Where the store is: ``given`` (``--db``), else ``$STARPOD_STORE_URL`` or its alias
    ``$STARPOD_DB``, else ``[store] url``."""
    env = os.environ.get("STARPOD_STORE_URL") or os.environ.get(STORE_ENV)
    return given or env or config.store.url


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
    from .store import CronStore  # (the store loads only for the commands that open one)

    router = delivery_router(config)
    return CronStore.open(
        store_url(config, url),
        settings=dataclasses.replace(config.store_settings, spend=spend_settings(config)),
        clock=clock,
        create=create,
        delivery_planner=router,
        start_planner=router.started if config.gateway.run_started_events else None,
    )


def spend_settings(config: AgentConfig) -> SpendSettings:
    """``[pricing]`` and the owners' monthly budgets for the store: ``[gateway]
    user_budget_usd_per_month`` for everyone, the ``budget_usd_per_month`` of an owner's
    token (``[gateway.tokens]``, ``$STARPOD_GATEWAY_TOKENS``) in its place (the lowest, for an
    owner with several)."""
    from .budget import SpendSettings
    from .config import gateway_tokens

    owners: dict[str, float] = {}
    for token in gateway_tokens(config.gateway).values():
        budget = token.budget_usd_per_month
        if budget is not None:
            owners[token.user_id] = min(budget, owners.get(token.user_id, budget))
    return SpendSettings(
        pricing=config.pricing,
        user_budget_usd_per_month=config.gateway.user_budget_usd_per_month,
        owner_budgets_usd_per_month=owners,
    )


def delivery_router(config: AgentConfig) -> DeliveryRouter:
    from .routing import DeliveryRouter

    return DeliveryRouter(
        notify_chat_ids=config.telegram.notify_chat_ids,
        finished_events=config.gateway.run_finished_events,
        destinations=config.destinations,
    )


def user_limits(config: AgentConfig) -> UserLimits:
    from .operations import UserLimits  # (the operations load only for commands using them)

    g = config.gateway
    return UserLimits(
        max_jobs_per_user=g.max_jobs_per_user,
        min_interval_secs=g.min_interval_secs,
        max_prompt_chars=g.max_prompt_chars,
    )
