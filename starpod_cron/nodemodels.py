"""The value types of coordination between nodes: named leases, destinations refusing every
message, and the nodes sharing a store (re-exported by :mod:`starpod_cron.models`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Final


@dataclass(frozen=True, slots=True)
class Lease:
    """A named lease: one holder at a time (the node long-polling a Telegram bot, say), with
    the ``state`` its holder hands on to the next (the bot's update offset)."""

    name: str
    holder: str
    since: datetime
    expires_at: datetime
    state: str | None


@dataclass(frozen=True, slots=True)
class DestinationRefusal:
    """A destination refusing every message as a whole (``telegram:<bot id>`` with its token
    rejected, or its API unreachable): its deliveries wait untried (no attempt counted) while
    one outbox probes it at ``retry_at``. ``failures`` counts the refusals in a row (the probe
    backoff); ``error`` is the last answer, redacted. ``name`` never holds a secret."""

    name: str
    since: datetime
    retry_at: datetime
    failures: int
    error: str


class NodeStatus(enum.StrEnum):
    """``up`` (heartbeat seen recently), ``gone`` (no heartbeat for 3 intervals: killed,
    or cut off from the database) or ``stopped`` (it said goodbye)."""

    UP = "up"
    GONE = "gone"
    STOPPED = "stopped"


GONE_AFTER_HEARTBEATS: Final = 3


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One gateway (or scheduler) process sharing the store, as its last heartbeat said."""

    id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    last_seen: datetime
    heartbeat_secs: float
    stopped_at: datetime | None = None
    roles: tuple[str, ...] = ()

    def status(self, now: datetime) -> NodeStatus:
        if self.stopped_at is not None:
            return NodeStatus.STOPPED
        silent = (now - self.last_seen).total_seconds()
        if silent > GONE_AFTER_HEARTBEATS * self.heartbeat_secs:
            return NodeStatus.GONE
        return NodeStatus.UP
