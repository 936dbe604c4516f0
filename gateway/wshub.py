"""The WebSocket protocol of a gateway node, whatever carries it: the handshake's rules, one
bounded queue and writer per client, requests answered (thin adapters over
:class:`~starpod_cron.operations.JobOperations` and the agent tools), run events published,
paged replay and the login session re-checked.

Two transports carry it, each an adapter to :class:`Peer`: the standalone port
(:mod:`gateway.ws`, the ``websockets`` server) and ``/ws`` on the HTTP port
(:mod:`gateway.wsroute`, Starlette on uvicorn). Nothing here knows which one a client used:
the same 401/403/421 at the handshake, the same answers and events, 1013 for a client that
does not read its events, 1009 for a frame over ``max_frame_bytes`` (the transport enforces
the size, this module logs it), 1008 when a login session ends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

from websockets.datastructures import Headers

from starpod_cron import ConfigError, Delivery, InvalidInput, StarpodCronError
from starpod_cron.access import Principal
from starpod_cron.activity import Activity
from starpod_cron.chat import AgentChat
from starpod_cron.config import GatewayConfig
from starpod_cron.operations import JobOperations
from starpod_cron.routing import RUN_FINISHED, RUN_STARTED
from starpod_cron.tasks import TaskSet
from starpod_cron.tools import call_tool, error_code

from . import protocol
from .login import WS_SUBPROTOCOL, LoginSessions
from .origin import Refusal, browser_policy, check_bind
from .principals import Credentials, Identity, Principals, Refused

log = logging.getLogger("gateway.ws")

CLOSE_TOO_SLOW = 1013  # "try again later": the client did not keep up with its events
CLOSE_TOO_BIG = 1009  # "message too big"
CLOSE_SESSION_ENDED = 1008  # policy violation
SEND_BUFFER_BYTES = 64 * 1024
"""The kernel send buffer of a WebSocket connection (no autotuning): what one client can
park there is bounded, so a client that stops reading fills its queue and is dropped."""
REQUESTS_IN_FLIGHT = 16  # per client; further frames wait (back-pressure on the socket)
REPLAY_PAGE = 500
LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")
SESSION_RECHECK_SECS = 5.0
"""How long a connection opened with the login cookie trusts its session before asking the
store again: a log-out, an expiry or a removed token (on any node) ends it within this."""


class Peer(Protocol):
    """One client's connection, as a transport carries it (the only thing that differs
    between the standalone port and ``/ws`` on the HTTP port)."""

    oversized: bool
    """Set when the transport closed the connection for a frame over the limit (1009)."""

    async def receive(self) -> str | bytes | None:
        """The next frame; ``None`` once the connection is closed (by either side)."""
        ...

    async def send(self, text: str) -> None:
        """Send one frame; :class:`PeerClosed` once the connection is closed."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code``; a client that does not take even the close frame within the
        transport's close timeout is cut off. Never raises for a closed connection."""
        ...


class PeerClosed(Exception):
    """The connection is closed: nothing more can be sent on it."""


def select_subprotocol(offered: list[str]) -> str | None:
    """``starpod`` when the client offers it (the dashboard does, beside its tab secret: a
    browser needs one of its offers selected); no subprotocol otherwise (every other client)."""
    return WS_SUBPROTOCOL if WS_SUBPROTOCOL in offered else None


class Client:
    _ids = itertools.count(1)

    def __init__(self, peer: Peer, who: Principal, queue_size: int, session: str = "") -> None:
        self.id = next(self._ids)
        self.peer = peer
        self.who = who
        self.session = session
        """The login session this connection was opened with ("" for a bearer token)."""
        self.checked_at = time.monotonic()
        """When the session was last found valid."""
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.closing = False
        self.in_flight = asyncio.Semaphore(REQUESTS_IN_FLIGHT)
        self.events: frozenset[str] = protocol.DEFAULT_EVENTS
        """The event types this client subscribed to."""


class WsHub:
    """Every WebSocket client of one node, over any transport."""

    def __init__(
        self,
        ops: JobOperations,
        config: GatewayConfig,
        tokens: dict[str, Principal],
        chat: AgentChat | None = None,
        logins: LoginSessions | None = None,
    ) -> None:
        if config.host not in LOCAL_HOSTS and not tokens:
            raise ConfigError(
                f"[gateway] host {config.host!r} is reachable from other machines: configure "
                "[gateway] tokens (or $" + config.tokens_env + ") first"
            )
        check_bind(config)
        self.ops = ops
        self.chat = chat
        self.config = config
        self.tokens = tokens
        self.logins = logins or LoginSessions(ops.store, tokens, config.session_ttl_secs)
        self.principals = Principals(tokens, self.logins)
        self.activity = Activity(ops)
        self.recheck_secs = SESSION_RECHECK_SECS
        self._warned_query_token = False
        self.run_started_events = config.run_started_events
        self.run_finished_events = config.run_finished_events
        self.clients: set[Client] = set()
        self.dropped_slow = 0
        self._http_port: int | None = None
        self.policy = browser_policy(config, None)
        """The browser rule (:mod:`gateway.origin`) of this node's ports."""
        self._tasks = TaskSet("gateway:ws")
        self.replay_page = max(1, min(REPLAY_PAGE, config.client_queue_size // 2))

    @property
    def http_port(self) -> int | None:
        """Where the dashboard and HTTP API listen (plain HTTP to the standalone port is sent
        there); the dashboard's origins, the only ones whose pages may connect, are on it."""
        return self._http_port

    @http_port.setter
    def http_port(self, port: int | None) -> None:
        self._http_port = port
        self.policy = browser_policy(self.config, port)

    async def start(self) -> None:
        self._tasks.spawn(self._recheck_sessions(), "sessions")

    async def stop(self) -> None:
        await self._tasks.stop(grace=2)

    # ------------------------------------------------------------------ handshake
    def browser_refusal(self, path: str, headers: Headers) -> Refusal | None:
        """The browser rule (Host, Origin, Sec-Fetch-Site) for a handshake to ``path``."""
        return self.policy.check(
            "GET",
            urlsplit(path).path,
            headers.get("Host"),
            headers.get("Origin"),
            headers.get("Sec-Fetch-Site"),
        )

    async def identify(self, path: str, headers: Headers, remote: object) -> Identity:
        """Who a handshake (``path`` with its query, ``headers``) stands for; :class:`Refused`
        (401, 403, 503: :mod:`gateway.principals`) when nobody, logged here."""
        offered = Credentials.of_handshake(path, headers, self.policy)
        if offered.in_query and not self._warned_query_token:
            self._warned_query_token = True
            log.warning(
                "a WebSocket client sent its token in the URL (?token=), which ends up in "
                "logs and histories: deprecated, send Authorization: Bearer <token>"
            )
        try:
            return await self.principals.resolve(offered)
        except Refused as exc:  # gateway/principals.py: the rules every front end shares
            log.warning("refused a WebSocket handshake from %s: %s", remote, exc.refusal.message)
            raise

    # -------------------------------------------------------------------- clients
    async def serve(self, peer: Peer, auth: Identity) -> None:
        """Serve one accepted connection until it closes."""
        client = Client(peer, auth.who, self.config.client_queue_size, auth.session)
        self.clients.add(client)
        writer = self._tasks.spawn(self._write(client), f"writer:{client.id}")
        try:
            while (frame := await peer.receive()) is not None:
                await client.in_flight.acquire()
                if not await self._session_alive(client):
                    client.in_flight.release()
                    break
                self._tasks.spawn(self._answer(client, frame), f"request:{client.id}")
            if peer.oversized:
                log.warning(
                    "closed WebSocket client %d: a frame was over %d bytes (1009)",
                    client.id,
                    self.config.max_frame_bytes,
                )
        finally:
            self.clients.discard(client)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _session_alive(self, client: Client) -> bool:
        """Whether a connection opened with the login cookie may go on: its session is asked
        for again once :attr:`recheck_secs` have passed since it was last found valid; an
        ended session (logged out on any node, expired, its token removed) closes the
        connection with 1008 and nothing more is answered or sent."""
        if not client.session or time.monotonic() - client.checked_at < self.recheck_secs:
            return True
        try:
            alive = await self.principals.visitor(client.session) is not None
        except StarpodCronError as exc:  # the store is unreachable: the session is unproven
            log.warning(
                "closing WebSocket client %d: its session cannot be checked: %s", client.id, exc
            )
            alive = False
        if alive:
            client.checked_at = time.monotonic()
            return True
        client.closing = True
        self.clients.discard(client)
        log.info("closing WebSocket client %d: its login session ended", client.id)
        await client.peer.close(CLOSE_SESSION_ENDED, "the login session ended; log in again")
        return False

    async def _recheck_sessions(self) -> None:
        """Connections that only listen (events) are re-checked too, every
        :attr:`recheck_secs`, so a log-out stops their events as well."""
        while True:
            await asyncio.sleep(self.recheck_secs / 2)
            for client in [c for c in self.clients if c.session and not c.closing]:
                await self._session_alive(client)

    async def _write(self, client: Client) -> None:
        try:
            while True:
                await client.peer.send(await client.queue.get())
        except PeerClosed:
            return

    def offer(self, client: Client, message: str) -> None:
        """Queue ``message`` for ``client``; a client whose queue is full is disconnected."""
        if client.closing:
            return
        try:
            client.queue.put_nowait(message)
        except asyncio.QueueFull:
            client.closing = True
            self.clients.discard(client)
            self.dropped_slow += 1
            log.warning(
                "disconnecting WebSocket client %d: %d messages unread (%d slow "
                "client(s) dropped so far)",
                client.id,
                client.queue.qsize(),
                self.dropped_slow,
            )
            self._tasks.spawn(
                client.peer.close(CLOSE_TOO_SLOW, "too slow: events not read"),
                f"close:{client.id}",
            )

    # ------------------------------------------------------------------- run events
    def publish(self, delivery: Delivery) -> None:
        """Offer a run event (from :class:`~gateway.events.EventFeed`) to every connected
        client allowed to see it (never fails: a client that misses it, or was disconnected
        for reading too slowly, replays from its last event id)."""
        message = protocol.event(delivery)
        kind = protocol.event_type(delivery)
        for client in list(self.clients):
            seen = client.who.audiences(self.config.share_agent_events)
            if kind in client.events and (seen is None or delivery.destination in seen):
                self.offer(client, message)

    # ----------------------------------------------------------------- requests
    async def _answer(self, client: Client, frame: str | bytes) -> None:
        try:
            await self._answer_one(client, frame)
        finally:
            client.in_flight.release()

    async def _answer_one(self, client: Client, frame: str | bytes) -> None:
        request_id = None
        try:
            request = protocol.decode(frame)
            request_id = request.id
            if request.type == "replay":
                await self._replay(client, request)
                return
            if request.type == "subscribe":
                self.offer(client, protocol.ok(request.id, self._subscribe(client, request)))
                return
            if request.type == "chat":
                self.offer(client, protocol.ok(request.id, await self._chat(client.who, request)))
                return
            data = await self._dispatch(client.who, request)
            self.offer(client, protocol.ok(request.id, data))
        except protocol.ProtocolError as exc:
            self.offer(client, protocol.error(exc.request_id, exc.code, str(exc)))
        except StarpodCronError as exc:
            self.offer(client, protocol.error(request_id, error_code(exc), str(exc)))
        except Exception:
            log.exception("WebSocket request from client %d failed", client.id)
            self.offer(client, protocol.error(request_id, "internal", "internal error (logged)"))

    async def _dispatch(self, who: Principal, request: protocol.Request) -> Any:
        """A ``cron.*`` request is the agent tool of that name (one definition, one set of
        rules); a single job or run is answered bare, as this API always did."""
        answer = await call_tool(self.ops, protocol.TOOL_OF[request.type], request.fields, user=who)
        if set(answer) in ({"job"}, {"run"}):
            return next(iter(answer.values()))
        return answer

    def _subscribe(self, client: Client, request: protocol.Request) -> dict[str, Any]:
        """Choose the event types this connection gets (live and replayed)."""
        events = frozenset(request.fields["events"])
        if RUN_STARTED in events and not self.run_started_events:
            raise InvalidInput(
                "run.started events are off on this gateway ([gateway] run_started_events = "
                "false in agent.toml)"
            )
        if RUN_FINISHED in events and not self.run_finished_events:
            raise InvalidInput(
                "run.finished events are off on this gateway ([gateway] run_finished_events = "
                "false in agent.toml)"
            )
        client.events = events
        return {"events": sorted(events)}

    async def _chat(self, who: Principal, request: protocol.Request) -> dict[str, Any]:
        """The agent's answer to a message; it may schedule jobs for this user with the tools
        (their results come as events, like any job's)."""
        if self.chat is None:
            raise InvalidInput('chat needs a model: [executor] kind = "openai" in agent.toml')
        return {"reply": await self.chat.reply(who, request.fields["text"])}

    async def _replay(self, client: Client, request: protocol.Request) -> None:
        """Events after ``since``, one page at a time: the answer says where the page ended
        and whether more follow (ask again with ``since`` = ``last_event_id``)."""
        since = int(request.fields["since"])
        events = await self.activity.events(
            client.who,
            since,
            self.replay_page,
            share_agent_events=self.config.share_agent_events,
        )
        wanted = [d for d in events if protocol.event_type(d) in client.events]
        for delivery in wanted:
            self.offer(client, protocol.event(delivery))
        last = events[-1].id if events else since
        more = len(events) == self.replay_page
        data = {"replayed": len(wanted), "last_event_id": last, "more": more}
        self.offer(client, protocol.ok(request.id, data))
