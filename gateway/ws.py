"""The standalone WebSocket port (``[gateway] port``, the ``websockets`` server): one transport
of the protocol of :mod:`gateway.wshub` (``/ws`` on the HTTP port, :mod:`gateway.wsroute`,
is the other). :class:`WsServer` is the node's hub of WebSocket clients, listening on this
port too unless ``[gateway] standalone_ws = false``.

One rule for frame sizes: a frame over ``max_frame_bytes`` closes the connection with 1009
("message too big"), whatever its size; anything smaller is answered.
"""

from __future__ import annotations

import logging
import socket
import weakref
from collections.abc import Sequence
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from starpod_cron.access import Principal
from starpod_cron.chat import AgentChat
from starpod_cron.config import GatewayConfig
from starpod_cron.operations import JobOperations

from .login import LoginSessions
from .origin import Refusal, host_name, is_wildcard
from .principals import Identity, Refused
from .principals import load_tokens as load_tokens  # where it was: gateway.ws.load_tokens
from .wshub import (
    CLOSE_TOO_BIG,
    SEND_BUFFER_BYTES,
    PeerClosed,
    WsHub,
    select_subprotocol,
)

log = logging.getLogger("gateway.ws")


class WsServer(WsHub):
    """The hub of :mod:`gateway.wshub`, plus the standalone port when it is on."""

    def __init__(
        self,
        ops: JobOperations,
        config: GatewayConfig,
        tokens: dict[str, Principal],
        chat: AgentChat | None = None,
        logins: LoginSessions | None = None,
    ) -> None:
        super().__init__(ops, config, tokens, chat, logins)
        self._server: Server | None = None
        self._who: weakref.WeakKeyDictionary[ServerConnection, Identity] = (
            weakref.WeakKeyDictionary()
        )
        """Who each connection authenticated as at its handshake."""

    @property
    def listening(self) -> bool:
        """Whether the standalone port is open (``[gateway] standalone_ws``)."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The standalone port (only while :attr:`listening`)."""
        assert self._server is not None, "the standalone WebSocket port is off"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen (unless ``standalone_ws = false``); OSError (address in use, say) if the
        address cannot be bound."""
        if self.config.standalone_ws:
            self._server = await serve(
                self._handle,
                self.config.host,
                self.config.port,
                process_request=self._authenticate,
                select_subprotocol=_select_subprotocol,
                max_size=self.config.max_frame_bytes,
                max_queue=64,
            )
        await super().start()

    async def closed(self) -> None:
        """Return when the listening server has closed (run it as a critical task)."""
        assert self._server is not None
        await self._server.wait_closed()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await super().stop()

    # ------------------------------------------------------------------------ auth
    async def _authenticate(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        refusal = self.browser_refusal(request.path, request.headers)
        if refusal is not None:
            log.warning(
                "refused a request to the WebSocket port from %s: %s",
                connection.remote_address,
                refusal.message,
            )
            return _refuse(refusal)
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            return self._plain_http(request)
        try:
            found = await self.identify(request.path, request.headers, connection.remote_address)
        except Refused as exc:
            return _refuse(exc.refusal)
        self._who[connection] = found
        return None

    def _plain_http(self, request: Request) -> Response:
        """A browser (or a probe) opening this port without a WebSocket upgrade is sent to the
        dashboard and HTTP API on ``http_port`` (the same path), instead of a bare 426."""
        if self.http_port is None:
            return Response(
                HTTPStatus.UPGRADE_REQUIRED.value,
                "Upgrade Required",
                Headers({"Content-Type": "text/plain", "Upgrade": "websocket"}),
                b"this port speaks WebSocket; the HTTP API is off ([gateway] http = false)\n",
            )
        host = host_name(request.headers.get("Host", ""))  # a served host (checked before)
        if not host:
            host = "127.0.0.1" if is_wildcard(self.config.host) else host_name(self.config.host)
        shown = f"[{host}]" if ":" in host else host
        path = urlsplit(request.path).path or "/"  # never the query: it may hold a token
        location = f"http://{shown}:{self.http_port}{path}"
        return Response(
            HTTPStatus.TEMPORARY_REDIRECT.value,
            "Temporary Redirect",
            Headers({"Location": location, "Content-Type": "text/plain"}),
            f"the dashboard and HTTP API are at {location}\n".encode(),
        )

    # -------------------------------------------------------------------- clients
    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        auth = self._who.pop(connection)
        sock = connection.transport.get_extra_info("socket")
        if sock is not None:  # bound what one client can park in the kernel (no autotuning)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        await self.serve(_Connection(connection), auth)


class _Connection:
    """A ``websockets`` server connection as a :class:`~gateway.wshub.Peer` (its close waits
    ``close_timeout``, then drops the TCP connection)."""

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.oversized = False

    async def receive(self) -> str | bytes | None:
        try:
            return await self.connection.recv()
        except ConnectionClosed as exc:
            sent = exc.sent
            self.oversized = exc.rcvd is None and sent is not None and sent.code == CLOSE_TOO_BIG
            return None

    async def send(self, text: str) -> None:
        try:
            await self.connection.send(text)
        except ConnectionClosed:
            raise PeerClosed from None

    async def close(self, code: int, reason: str) -> None:
        await self.connection.close(code, reason)


def _refuse(refusal: Refusal) -> Response:
    """The handshake's answer to a refused request: the JSON error of every port."""
    return Response(
        refusal.status,
        HTTPStatus(refusal.status).phrase,
        Headers({"Content-Type": "application/json"}),
        refusal.body(),
    )


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    chosen = select_subprotocol(list(offered))
    return Subprotocol(chosen) if chosen else None
