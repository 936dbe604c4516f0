"""Request-body limits as one pure ASGI middleware, for every HTTP server of the gateway (the
dashboard and API, ``starpod-cron mcp --http``).

Bytes are counted as they arrive, never gathered: a request whose ``Content-Length`` is over
its route's limit is answered ``413`` before any of its body is read, and a chunked one as soon
as the count passes the limit (the app's next ``receive`` raises :class:`BodyTooLarge`, and
whatever the app sends after that is dropped). So no request holds more than its limit in
memory, however big it is.

The ``413`` must reach the client: a server that closes a socket with unread data in it makes
the kernel reset the connection, and a client still uploading then sees "connection reset"
instead of the answer. So the middleware sends the ``413`` in full (with ``Content-Length``
and ``Connection: close``) but keeps the response open while it reads and discards the rest of
the body, for at most :data:`DRAIN_SECS`; then it ends the response and the server closes the
connection cleanly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

log = logging.getLogger("gateway.bodylimit")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DRAIN_SECS = 30.0
"""How long a refused body is read and discarded, so the client can read the 413."""


class BodyTooLarge(Exception):
    """The request body passed its route's limit; the middleware has answered 413."""


class BodyLimit:
    """Refuse request bodies over ``limits[path]`` (else ``default``) bytes with ``413``.

    ``limits`` maps exact request paths to their own limit (a login form needs less than
    the API)."""

    def __init__(
        self, app: ASGIApp, *, default: int, limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.limits = dict(limits or {})

    def limit_for(self, path: str) -> int:
        return self.limits.get(path, self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _Exchange(self.limit_for(scope["path"]), receive, send).run(self.app, scope)


class _Exchange:
    """One request under a limit: counts what the app receives, answers 413 past the limit."""

    def __init__(self, limit: int, receive: Receive, send: Send) -> None:
        self.limit = limit
        self.receive_raw = receive
        self.send_raw = send
        self.received = 0
        self.body_done = False
        self.started = False
        """The app has started its own response (too late for a 413)."""
        self.refused = False

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse()
        else:
            try:
                await app(scope, self.receive, self.send)
            except BodyTooLarge:
                if not self.refused:  # the app had started its own response: no 413 possible
                    raise
            except Exception:
                if not self.refused:
                    raise
                log.debug("the app failed on its refused request body", exc_info=True)
        if self.refused:
            await self._drain()
            await self.send_raw({"type": "http.response.body", "body": b"", "more_body": False})

    async def receive(self) -> Message:
        if self.refused:
            raise BodyTooLarge(self._message())
        message = await self.receive_raw()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.body_done = not message.get("more_body", False)
            if self.received > self.limit:
                if not self.started:
                    await self._refuse()
                raise BodyTooLarge(self._message())
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the 413 is the answer; the app's own (an error about the body) is dropped
        if message["type"] == "http.response.start":
            self.started = True
        await self.send_raw(message)

    async def _refuse(self) -> None:
        """Send the 413 (headers and body) but leave the response open for :meth:`_drain`."""
        self.refused = True
        body = json.dumps({"error": {"code": "too_large", "message": self._message()}}).encode()
        await self.send_raw(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await self.send_raw({"type": "http.response.body", "body": body, "more_body": True})

    async def _drain(self) -> None:
        """Read and drop the rest of the body (for at most DRAIN_SECS), so closing the
        connection does not reset it under a client that is still sending."""
        try:
            async with asyncio.timeout(DRAIN_SECS):
                while not self.body_done:
                    message = await self.receive_raw()
                    if message["type"] != "http.request":
                        return  # the client went away
                    self.body_done = not message.get("more_body", False)
        except TimeoutError:
            log.info("stopped reading a refused request body after %g s", DRAIN_SECS)

    def _message(self) -> str:
        return f"a request body here is at most {self.limit} bytes"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None
