"""The WebSocket server (``websockets``): token auth at the handshake, request/response
commands, notification events, replay, and a bounded queue per client so one slow reader
never delays the scheduler or anyone else."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from starpod_cron import (
    ConfigError,
    Delivery,
    DuplicateJobName,
    InvalidInput,
    JobAlreadyRunning,
    JobNotFound,
    StarpodCronError,
)
from starpod_cron.config import GatewayConfig

from . import protocol
from .jobs_api import JobsApi
from .principals import Principal

log = logging.getLogger("gateway.ws")

CLOSE_TOO_SLOW = 1013  # "try again later": the client did not keep up with its events
SEND_BUFFER_BYTES = 64 * 1024
REQUESTS_IN_FLIGHT = 16  # per client; further frames wait (back-pressure on the socket)


def load_tokens(config: GatewayConfig) -> dict[str, Principal]:
    """Tokens from ``[gateway] tokens`` plus the JSON in ``$tokens_env`` (same shape)."""
    tokens = {t: Principal(c.user_id, c.admin) for t, c in config.tokens.items()}
    raw = os.environ.get(config.tokens_env, "")
    if raw:
        try:
            extra = json.loads(raw)
            for token, spec in extra.items():
                tokens[str(token)] = Principal(str(spec["user_id"]), bool(spec.get("admin")))
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"${config.tokens_env} must be JSON like "
                '{"<token>": {"user_id": "u1", "admin": false}}: ' + str(exc)
            ) from exc
    return tokens


class Client:
    _ids = itertools.count(1)

    def __init__(self, connection: ServerConnection, who: Principal, queue_size: int) -> None:
        self.id = next(self._ids)
        self.connection = connection
        self.who = who
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.closing = False
        self.in_flight = asyncio.Semaphore(REQUESTS_IN_FLIGHT)


class WsServer:
    def __init__(self, api: JobsApi, config: GatewayConfig, tokens: dict[str, Principal]) -> None:
        if config.host not in ("127.0.0.1", "::1", "localhost") and not tokens:
            raise ConfigError(
                f"[gateway] host {config.host!r} is reachable from other machines: configure "
                "[gateway] tokens (or $" + config.tokens_env + ") first"
            )
        self.api = api
        self.config = config
        self.tokens = tokens
        self.clients: set[Client] = set()
        self.dropped_slow = 0
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._authenticate,
            max_size=max(self.config.max_frame_bytes * 16, 1 << 20),
            max_queue=64,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------------ auth
    def _principal(self, request: Request) -> Principal | None:
        if not self.tokens:
            return Principal(None, admin=True)  # local use, no tokens configured
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token:
            token = (parse_qs(urlsplit(request.path).query).get("token") or [""])[0]
        return self.tokens.get(token)

    def _authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        if self._principal(request) is None:
            log.warning(
                "refused a WebSocket handshake from %s: bad or missing token",
                connection.remote_address,
            )
            return Response(
                HTTPStatus.UNAUTHORIZED.value,
                "Unauthorized",
                Headers({"Content-Type": "text/plain"}),
                b"invalid or missing token\n",
            )
        return None

    # -------------------------------------------------------------------- clients
    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        who = self._principal(connection.request)
        assert who is not None
        sock = connection.transport.get_extra_info("socket")
        if sock is not None:  # bound what one client can park in the kernel (no autotuning)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        client = Client(connection, who, self.config.client_queue_size)
        self.clients.add(client)
        writer = asyncio.create_task(self._write(client), name=f"gateway:ws-writer:{client.id}")
        try:
            async for frame in connection:
                await client.in_flight.acquire()
                self._spawn(self._answer(client, frame), f"gateway:ws-request:{client.id}")
        except ConnectionClosed:
            pass  # the client went away; nothing to answer
        finally:
            self.clients.discard(client)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _write(self, client: Client) -> None:
        try:
            while True:
                await client.connection.send(await client.queue.get())
        except ConnectionClosed:
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
            self._spawn(
                client.connection.close(CLOSE_TOO_SLOW, "too slow: events not read"),
                f"gateway:ws-close:{client.id}",
            )

    def _spawn(self, work: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------- outbox channel
    async def deliver(self, delivery: Delivery) -> None:
        """Send the event to every connected client allowed to see it (never fails: a
        client that misses it can replay from its last event id)."""
        message = protocol.event(delivery)
        for client in list(self.clients):
            seen = client.who.audiences(self.config.share_agent_events)
            if seen is None or delivery.destination in seen:
                self.offer(client, message)

    # ----------------------------------------------------------------- requests
    async def _answer(self, client: Client, frame: str | bytes) -> None:
        try:
            await self._answer_one(client, frame)
        finally:
            client.in_flight.release()

    async def _answer_one(self, client: Client, frame: str | bytes) -> None:
        try:
            request = protocol.decode(frame, self.config.max_frame_bytes)
            if request.type == "replay":
                await self._replay(client, request)
                return
            data = await self._dispatch(client.who, request)
            self.offer(client, protocol.ok(request.id, data))
        except protocol.ProtocolError as exc:
            self.offer(client, protocol.error(exc.request_id, exc.code, str(exc)))
        except JobNotFound as exc:
            self.offer(client, protocol.error(_id(frame), "not_found", str(exc)))
        except (DuplicateJobName, JobAlreadyRunning) as exc:
            self.offer(client, protocol.error(_id(frame), "conflict", str(exc)))
        except (InvalidInput, ValueError, TypeError) as exc:
            self.offer(client, protocol.error(_id(frame), "invalid", str(exc)))
        except StarpodCronError as exc:
            self.offer(client, protocol.error(_id(frame), "error", str(exc)))
        except Exception:
            log.exception("WebSocket request from client %d failed", client.id)
            self.offer(client, protocol.error(_id(frame), "internal", "internal error (logged)"))

    async def _dispatch(self, who: Principal, request: protocol.Request) -> Any:
        api, f = self.api, request.fields
        handlers: dict[str, Callable[[], Awaitable[Any]]] = {
            "cron.add": lambda: _job(api.add(who, f)),
            "cron.list": lambda: _jobs(api.list_jobs(who)),
            "cron.get": lambda: _job(api.find(who, f["name"])),
            "cron.update": lambda: _job(api.update(who, f["name"], f)),
            "cron.remove": lambda: _job(api.remove(who, f["name"])),
            "cron.enable": lambda: _job(api.set_enabled(who, f["name"], True)),
            "cron.disable": lambda: _job(api.set_enabled(who, f["name"], False)),
            "cron.run": lambda: _run(api.run(who, f["name"])),
            "cron.runs": lambda: _runs(api.runs(who, f["name"], int(f.get("limit", 10)))),
        }
        return await handlers[request.type]()

    async def _replay(self, client: Client, request: protocol.Request) -> None:
        since = int(request.fields["since"])
        seen = client.who.audiences(self.config.share_agent_events)
        events = await self.api.store.list_deliveries(
            since, None if seen is None else sorted(seen), limit=10_000
        )
        events = [d for d in events if d.destination.startswith("ws:")]
        for delivery in events:
            self.offer(client, protocol.event(delivery))
        last = events[-1].id if events else since
        self.offer(
            client, protocol.ok(request.id, {"replayed": len(events), "last_event_id": last})
        )


def _id(frame: str | bytes) -> Any:
    try:
        message = json.loads(frame)
    except ValueError:
        return None
    return message.get("id") if isinstance(message, dict) else None


async def _job(pending: Awaitable[Any]) -> Any:
    return protocol.job_json(await pending)


async def _jobs(pending: Awaitable[Any]) -> Any:
    return {"jobs": [protocol.job_json(j) for j in await pending]}


async def _run(pending: Awaitable[Any]) -> Any:
    return protocol.run_json(await pending)


async def _runs(pending: Awaitable[Any]) -> Any:
    return {"runs": [protocol.run_json(r) for r in await pending]}
