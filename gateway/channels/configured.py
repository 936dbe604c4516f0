"""The outbox channels of the ``[destinations.NAME]`` tables, keyed by the prefix each owns
(``dest:NAME``; see :func:`starpod_cron.routing.serves`). Secrets are read here, from the
environment variables the tables name, and registered for log redaction; a missing one is a
start-up error naming the variable (never its value). ``telegram`` destinations go through the
bot's own channel (``tg:``), so they need no channel here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import cast

import httpx

from starpod_cron import ConfigError
from starpod_cron.destinations import DEST_PREFIX, DestinationConfig, Destinations
from starpod_cron.logs import register_secrets

from ..outbox import Channel
from .discord import DiscordChannel
from .email import EmailChannel, Security
from .slack import SlackChannel
from .webhook import WebhookChannel


def secret(name: str, key: str, env: str, environ: Mapping[str, str]) -> str:
    value = environ.get(env, "")
    if not value:
        raise ConfigError(f"[destinations.{name}] {key}: ${env} is not set (or empty)")
    register_secrets([value])
    return value


def destination_channels(
    destinations: Destinations,
    client: httpx.AsyncClient,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Channel]:
    """One channel per named destination the outbox sends to itself (not ``telegram``)."""
    env = os.environ if environ is None else environ
    found: dict[str, Channel] = {}
    for name, config in destinations.named.items():
        channel = _channel(name, config, client, env)
        if channel is not None:
            found[f"{DEST_PREFIX}{name}"] = channel
    return found


def _channel(
    name: str, c: DestinationConfig, client: httpx.AsyncClient, env: Mapping[str, str]
) -> Channel | None:
    if c.kind == "webhook":
        key = secret(name, "secret_env", c.secret_env, env)
        return WebhookChannel(name, c.url, key, client, timeout_secs=c.timeout_secs)
    full = f"{DEST_PREFIX}{name}"  # the outbox's name of the destination, dest:NAME
    if c.kind == "slack":
        url = secret(name, "url_env", c.url_env, env)
        return SlackChannel(full, url, client, rate_per_sec=c.rate_per_sec)
    if c.kind == "discord":
        url = secret(name, "url_env", c.url_env, env)
        return DiscordChannel(full, url, client)
    if c.kind == "email":
        password = secret(name, "password_env", c.password_env, env) if c.password_env else None
        return EmailChannel(
            full,
            host=c.host,
            port=c.port,
            security=cast(Security, c.security),  # checked by DestinationConfig
            username=c.username or None,
            password=password,
            sender=c.sender,
            timeout_secs=c.timeout_secs,
        )
    return None  # telegram: the bot's channel sends it
