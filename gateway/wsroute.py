"""``/ws`` on the HTTP port: the WebSocket protocol of :mod:`gateway.wshub` carried by
Starlette on uvicorn, so the dashboard (and anything behind a reverse proxy that forwards
one port) needs no second port. The same rules as the standalone port, by construction: the
browser rule is :class:`~gateway.origin.BrowserGuard`'s (421/403, answered as HTTP), who is
asking is :meth:`WsHub.identify <gateway.wshub.WsHub.identify>` (401/403/503 as HTTP, the
JSON error of every port), and then :meth:`WsHub.serve <gateway.wshub.WsHub.serve>`.

Two transport rules of the standalone port need uvicorn's connection itself, which ASGI does
not show: :class:`WsProtocol` (uvicorn's own WebSocket protocol, passed as its ``ws``
setting) bounds the kernel send buffer of each WebSocket connection and hands the route a way
to cut off a client that will not take even its close frame.
"""

from __future__ import annotations

import asyncio
import socket
from asyncio import BaseTransport
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.datastructures import Headers
from websockets.http11 import Request

from .origin import Refusal
from .principals import Refused
from .wshub import CLOSE_TOO_BIG, SEND_BUFFER_BYTES, PeerClosed, WsHub, select_subprotocol

PATH = "/ws"
ABORT = "starpod.abort"
"""The scope extension holding ``{"abort": callable}``: drop the TCP connection at once."""
CLOSE_TIMEOUT_SECS = 10.0
"""How long a close waits for the client to take its close frame (as ``websockets``)."""


def ws_route(hub: WsHub) -> WebSocketRoute:
    """The ``/ws`` route of the HTTP app, serving ``hub``'s protocol."""

    async def endpoint(websocket: WebSocket) -> None:
        scope = websocket.scope
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        headers = Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]])
        try:
            found = await hub.identify(path, headers, _remote(websocket))
        except Refused as exc:
            await websocket.send_denial_response(refusal_response(exc.refusal))
            return
        await websocket.accept(subprotocol=select_subprotocol(list(scope.get("subprotocols", []))))
        await hub.serve(StarlettePeer(websocket), found)

    return WebSocketRoute(PATH, endpoint)


def refusal_response(refusal: Refusal) -> Response:
    """A refused handshake's HTTP answer (the JSON error every port gives)."""
    return Response(refusal.body(), refusal.status, media_type="application/json")


def _remote(websocket: WebSocket) -> str:
    client = websocket.client
    return f"{client.host}:{client.port}" if client else "?"


class StarlettePeer:
    """A Starlette WebSocket as a :class:`~gateway.wshub.Peer`. Sends and the close are
    serialised: a close waits for a send in progress, at most :data:`CLOSE_TIMEOUT_SECS`;
    a client that has not taken its frames by then is cut off."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.oversized = False
        self._sending = asyncio.Lock()
        self._closed = False
        found: dict[str, Any] = websocket.scope.get("extensions", {}).get(ABORT, {})
        self._abort: Callable[[], None] | None = found.get("abort")

    async def receive(self) -> str | bytes | None:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            self.oversized = message.get("code") == CLOSE_TOO_BIG
            return None
        text: str | None = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    async def send(self, text: str) -> None:
        async with self._sending:
            if self._closed:
                raise PeerClosed
            try:
                await self.websocket.send_text(text)
            except (WebSocketDisconnect, WebSocketDisconnected):
                self._closed = True
                raise PeerClosed from None

    async def close(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_SECS), self._sending:
                if self._closed:
                    return
                self._closed = True
                await self.websocket.close(code, reason)
        except TimeoutError:
            self._closed = True
            if self._abort is not None:
                self._abort()
        except (WebSocketDisconnect, WebSocketDisconnected):
            return  # the client is gone already


class WsProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol (``websockets``' sans-I/O one, which honours write flow
    control), with the kernel send buffer bounded as on the standalone port and an abort
    in the scope (:data:`ABORT`)."""

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:  # bound what one client can park in the kernel (no autotuning)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)  # set when the handshake was accepted
        if scope is not None:
            scope["extensions"][ABORT] = {"abort": self.transport.abort}
