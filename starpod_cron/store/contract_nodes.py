"""The contract of what gateway nodes sharing one store agree on: the durable outbox, named
leases and node heartbeats, dashboard log-ins (see :mod:`.contract` for the rest)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from ..models import (
    Delivery,
    DeliveryStatus,
    DestinationRefusal,
    Lease,
    LoginSession,
    NodeInfo,
)
from .types import DeliveryOutcome


class DeliveryStore(Protocol):
    """The durable outbox: what to tell whom about finished runs. What goes in is decided by
    the planners handed over when the store is opened (``CronStore.open(...,
    delivery_planner=, start_planner=)``), inside the transaction that records the run."""

    async def claim_deliveries(
        self,
        owner: str,
        limit: int,
        lease_secs: float,
        prefixes: Sequence[str] | None = None,
    ) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries (pending and past their next attempt time, or
        leased by someone whose lease expired or who was a process of this machine that no
        longer exists) to destinations starting with one of
        ``prefixes`` (None: any), oldest first; each claim counts an attempt. Two claimers
        never hold the same delivery.

        Deliveries to one destination go out in order: a delivery is claimed only when every
        older undelivered one to the same destination is claimed with it, so one waiting on a
        retry (a rate limit, say) holds back the newer ones behind it."""

    async def finish_deliveries(
        self, owner: str, outcomes: Sequence[DeliveryOutcome]
    ) -> list[bool]:
        """Record the outcomes of leased deliveries in ONE transaction: each is delivered,
        pending again until ``retry_at``, or (not delivered, no ``retry_at``) dead with
        ``error`` kept. An answer is False where the lease was lost (someone else will deliver
        it). ``attempted=False`` hands a claimed delivery back untried: the claim's attempt is
        not counted."""

    async def finish_delivery(
        self,
        delivery_id: int,
        owner: str,
        *,
        delivered: bool,
        error: str | None = None,
        retry_at: datetime | None = None,
        attempted: bool = True,
    ) -> bool:
        """:meth:`finish_deliveries` for one delivery."""

    async def renew_deliveries(self, owner: str, ids: Collection[int], lease_secs: float) -> int:
        """Extend ``owner``'s lease on the deliveries ``ids`` it still holds to ``lease_secs``
        from now (a long batch to one chat goes out slower than one lease); returns how many
        it still held."""

    async def record_delivery_progress(self, delivery_id: int, owner: str, progress: int) -> bool:
        """Remember that the first ``progress`` parts of a leased delivery were sent (a long
        message sent in pieces), so a retry or another sender resumes after them. False
        where the lease was lost."""

    async def list_deliveries(
        self,
        since_id: int,
        destinations: Sequence[str] | None,
        limit: int = 1000,
        *,
        prefix: str | None = None,
    ) -> list[Delivery]:
        """Deliveries to any of ``destinations`` (None: to anywhere), to destinations starting
        with ``prefix`` if given, with an id above ``since_id``, oldest first (the replay of
        an event stream)."""

    async def count_deliveries(self) -> dict[DeliveryStatus, int]:
        """How many deliveries there are in each status (statuses with none are left out)."""

    async def deliveries_with_status(
        self, status: DeliveryStatus, limit: int = 100, job_ids: Sequence[str] | None = None
    ) -> list[Delivery]:
        """The newest ``limit`` deliveries in ``status`` (``dead`` ones: what failed), newest
        first; only those of ``job_ids`` when given (a user's own jobs)."""

    async def get_delivery(self, delivery_id: int) -> Delivery | None:
        """The delivery with this id, if any."""

    async def retry_delivery(self, delivery_id: int) -> bool:
        """Give a dead delivery another round of attempts, due now; False (and nothing
        changes) unless it is dead."""

    async def next_delivery_at(self, prefixes: Sequence[str] | None = None) -> datetime | None:
        """When the earliest pending delivery (or expired lease) to destinations starting with
        one of ``prefixes`` (None: any) becomes due, if any."""

    async def refuse_destination(
        self, name: str, error: str, backoff_secs: Sequence[float]
    ) -> DestinationRefusal:
        """Record that the destination ``name`` (a channel as a whole, such as
        ``telegram:<bot id>``; never a secret) refuses every message, with its ``error``: one
        more refusal in a row (``failures``; the first opens it, ``since`` now), to be probed
        again ``backoff_secs[failures - 1]`` from now (the last delay repeats). Every node sees
        it (:meth:`refusing_destinations`) until :meth:`clear_destination`."""

    async def take_destination_probe(self, name: str, lease_secs: float) -> bool:
        """Let one caller probe the refusing destination ``name`` now: True when it was due
        (``retry_at`` passed), its ``retry_at`` then moved ``lease_secs`` ahead so that nobody
        else probes meanwhile; of callers racing, exactly one gets True. False when it is not
        refusing or not due."""

    async def clear_destination(self, name: str) -> bool:
        """The destination ``name`` answers again: forget its refusal and wake every node's
        outbox (its waiting deliveries are due). True if it was refusing."""

    async def refusing_destinations(self) -> list[DestinationRefusal]:
        """The destinations refusing now, by name."""


class CoordinationStore(Protocol):
    """What several gateway nodes sharing one store agree on: named leases (one holder at a
    time) and node heartbeats. Lease times are the store clock's view of wall time: ``serve``
    counts it from the database's (``dbclock.DatabaseClock``, synced from
    :meth:`database_now_ms`), so nodes on several machines agree however their own clocks
    drift."""

    async def database_now_ms(self) -> int:
        """The database server's clock in epoch ms (PostgreSQL ``clock_timestamp()``; SQLite:
        this machine's clock, as SQLite reads it)."""

    async def acquire_lease(self, name: str, holder: str, lease_secs: float) -> Lease | None:
        """Take or renew the lease ``name`` for ``holder`` for ``lease_secs`` from now, and
        return it (with the state the previous holder saved); None if someone else holds it.

        Granted when nobody holds it, when the holder's lease expired, when the holder is a
        process of this machine that no longer exists, or to the holder itself (a renewal).
        Two callers racing for a free lease never both get it."""

    async def save_lease_state(self, name: str, holder: str, state: str) -> bool:
        """Store ``state`` with the lease, only while ``holder`` still holds it unexpired
        (fenced: a holder whose lease was taken over writes nothing and gets False)."""

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up now (its state is kept for the next holder); a no-op unless
        ``holder`` holds it."""

    async def list_leases(self) -> list[Lease]:
        """Every lease ever taken, by name (expired ones too: see ``expires_at``)."""

    async def heartbeat(self, node: NodeInfo, *, stopped: bool = False) -> None:
        """Record that ``node`` is alive now (``last_seen`` is set to the store's clock), or
        with ``stopped`` that it stopped cleanly. Nodes not seen for a week are forgotten."""

    async def schedulers_up(self) -> int:
        """How many nodes with the ``scheduler`` role (a ``serve``, a library
        ``CronScheduler``) are up: not stopped, and heard from within their last 3 heartbeats
        (one query)."""

    async def list_nodes(self) -> list[NodeInfo]:
        """Every node seen in the last week, most recently started first."""

    async def last_delivery_id(self) -> int:
        """The id of the newest delivery (0 if none): where a reader that only wants events
        from now on starts tailing :meth:`list_deliveries`."""


class LoginSessionStore(Protocol):
    """Dashboard log-in sessions (the browser's cookie), shared by every gateway node on the
    store: a session started on one node works on all, and a log-out on one ends it on all.
    The store keeps only the SHA-256 of a session id, never the id: reading the table logs
    nobody in. (Not the conversations of :class:`SessionStore`.)"""

    async def create_login_session(
        self, user_id: str, token_fingerprint: str, ttl_secs: float
    ) -> str:
        """Start a session for ``user_id``, who logged in with the gateway token whose
        fingerprint is ``token_fingerprint`` (64 hex digits), ending ``ttl_secs`` from now by
        the store's clock however often it is used. Returns the new session id: 128 random
        bits, 22 URL-safe characters, returned only here. Expired sessions are deleted in the
        same transaction. InvalidInput (nothing written) for an empty user, a malformed
        fingerprint, or ``ttl_secs`` outside 1 s to 366 days."""

    async def get_login_session(self, session_id: str) -> LoginSession | None:
        """The session with this id if it exists and has not expired by the store's clock;
        None otherwise (any string is accepted: a malformed id is just unknown). Using it
        sets ``last_used_at`` to now when that was more than a minute ago (at most one write
        per session per minute)."""

    async def delete_login_session(self, session_id: str) -> bool:
        """Log out: delete the session, so that no node accepts it any more. True if it
        existed (expired or not)."""

    async def end_login_sessions(self, keep_fingerprints: Collection[str]) -> int:
        """Delete every session started with a token whose fingerprint is not in
        ``keep_fingerprints`` (tokens removed from the configuration); the number deleted."""

    async def prune_login_sessions(self) -> int:
        """Delete the expired sessions; the number deleted."""
