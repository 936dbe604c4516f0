"""The one browser rule of every gateway port (dashboard and HTTP API, WebSocket, MCP over HTTP).

A web page the user opens can make the browser talk to the gateway on 127.0.0.1: it can send
requests (a "no-cors" POST, a form, a WebSocket handshake, with the login cookie) and, after
DNS rebinding, read answers under its own name. The rule refuses what a browser sends on
another origin's behalf and keeps every other client (curl, SDKs, scripts, MCP clients) working:

1. ``Host`` must name a host this gateway serves (:attr:`BrowserPolicy.hosts`: ``[gateway]
   allowed_hosts``, by default 127.0.0.1, localhost and ::1, plus ``host`` when it is a
   specific address, plus ``public_url``'s host; the port is ignored); otherwise **421**. A
   rebound name (``evil.example`` resolving to 127.0.0.1) never reaches a handler.
2. ``Sec-Fetch-Site``, when sent, must be ``same-origin`` or ``none`` (typed or bookmarked);
   ``same-site`` (another port of the same host) and ``cross-site`` get **403** ``forbidden``.
3. ``Origin``, when sent, must be one of the dashboard's origins (:attr:`BrowserPolicy.origins`:
   ``http(s)://H:<http_port>`` for each served host H, ``public_url``, ``allowed_origins``),
   compared in full (scheme, host, port); otherwise **403** ``forbidden``. The WebSocket
   handshake is judged by this rule too (browsers send no ``Sec-Fetch-Site`` there), and the
   login cookie counts only with such an ``Origin``.
4. A request that changes something (not GET/HEAD/OPTIONS) with a body must say
   ``Content-Type: application/json`` (**415** ``unsupported_media_type`` otherwise), a type a
   page of another origin cannot send without a CORS preflight, which is never granted. The
   forms (``/login``, ``/logout``) are exempt from this rule only.

Clients that are not browsers send no ``Origin`` or ``Sec-Fetch-Site`` and a ``Host`` they
connected to, so they pass.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starpod_cron.config import GatewayConfig
from starpod_cron.errors import ConfigError

log = logging.getLogger("gateway.origin")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Served by default: a rebound name can never be one of these."""
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BROWSER_SITES = frozenset({"same-origin", "none"})
"""The ``Sec-Fetch-Site`` values accepted (absent is accepted too: not a browser, or an
origin the browser does not tag, which rule 1 and 3 then judge)."""
FORM_PATHS = frozenset({"/login", "/logout"})
"""Routes that take HTML forms (exempt from the JSON body rule, not from the Origin rule)."""
JSON_TYPES = ("application/json",)
DENIAL = "websocket.http.response"
"""The ASGI extension a server offers when a WebSocket handshake may be answered in HTTP."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: HTTP status, the JSON error code and a message."""

    status: int
    code: str
    message: str

    def body(self) -> bytes:
        return json.dumps({"error": {"code": self.code, "message": self.message}}).encode()


def host_name(value: str) -> str:
    """``Host``-header style ``name[:port]`` (or a bare IPv6 address) -> the lower-case name,
    IPv6 without brackets; ``""`` when it cannot be read."""
    value = value.strip().lower().rstrip(".")
    if not value:
        return ""
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else ""
    if value.count(":") > 1:  # a bare IPv6 address
        return value
    return value.partition(":")[0].rstrip(".")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, normalised (lower case, IPv6 in brackets, default
    ports dropped); ``""`` for ``null`` or anything that is not an http(s) URL with a host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in ("http", "https") or not host:
        return ""
    if port == {"http": 80, "https": 443}[scheme]:
        port = None
    return f"{scheme}://{_bracketed(host)}" + (f":{port}" if port is not None else "")


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def is_wildcard(host: str) -> bool:
    """Whether binding ``host`` listens on every address: resolved as the socket layer will
    (``0``, ``0.0``, ``0x0``, ``::ffff:0.0.0.0`` are 0.0.0.0 or ::), numeric forms only; a
    name (``localhost``) is a specific address."""
    name = host.strip().strip("[]")
    if name in WILDCARD_HOSTS or name == "":
        return True  # "" binds every address too
    try:
        found = socket.getaddrinfo(
            name, None, flags=socket.AI_PASSIVE | socket.AI_NUMERICHOST, type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError, ValueError):
        return False
    for _family, _type, _proto, _name, address in found:
        ip = ipaddress.ip_address(str(address[0]).partition("%")[0])
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if ip.is_unspecified or (mapped is not None and mapped.is_unspecified):
            return True
    return False


def served_hosts(config: GatewayConfig) -> frozenset[str]:
    """The names a ``Host`` header may carry (rule 1)."""
    hosts = {host_name(h) for h in config.allowed_hosts or LOOPBACK_HOSTS}
    if not is_wildcard(config.host):
        hosts.add(host_name(config.host))
    if config.public_url:
        hosts.add(host_name(urlsplit(config.public_url).netloc.rpartition("@")[2]))
    return frozenset(h for h in hosts if h)


@dataclass(frozen=True, slots=True)
class BrowserPolicy:
    """Who may talk to this gateway from a browser: the served hosts and the dashboard's
    origins. Built once per node by :func:`browser_policy`."""

    hosts: frozenset[str]
    origins: frozenset[str]

    def host_allowed(self, host: str | None) -> bool:
        """Rule 1 (an absent ``Host``, HTTP/1.0, is no browser's and passes)."""
        return host is None or host_name(host) in self.hosts

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether ``origin`` is one of the dashboard's (absent: False)."""
        return origin is not None and origin_of(origin) in self.origins

    def check(
        self,
        method: str,
        path: str,
        host: str | None,
        origin: str | None,
        fetch_site: str | None,
        content_type: str | None = None,
        has_body: bool = False,
    ) -> Refusal | None:
        """Rules 1-4 for one request; ``None`` when it may go on."""
        if not self.host_allowed(host):
            return Refusal(
                421,
                "misdirected",
                f"this gateway does not serve the host {host_name(host or '')!r}: add it to "
                "[gateway] allowed_hosts in agent.toml if it is really this gateway's name",
            )
        if fetch_site is not None and fetch_site.strip().lower() not in BROWSER_SITES:
            return Refusal(
                403,
                "forbidden",
                f"refused a browser request made by another page (Sec-Fetch-Site: "
                f"{fetch_site}); open the dashboard at its own address",
            )
        if origin is not None and not self.origin_allowed(origin):
            return Refusal(
                403,
                "forbidden",
                f"refused a browser request from the origin {origin!r}: not this gateway's "
                "dashboard (add it to [gateway] allowed_origins or public_url if it should be)",
            )
        if method.upper() not in SAFE_METHODS and path not in FORM_PATHS:
            media = (content_type or "").partition(";")[0].strip().lower()
            if (media or has_body) and media not in JSON_TYPES:
                return Refusal(
                    415,
                    "unsupported_media_type",
                    "send the body as JSON with Content-Type: application/json",
                )
        return None


def browser_policy(config: GatewayConfig, http_port: int | None) -> BrowserPolicy:
    """The policy of a node whose dashboard listens on ``http_port`` (None: no dashboard)."""
    hosts = served_hosts(config)
    origins: set[str] = set()
    if http_port is not None:
        for host in hosts:
            for scheme in ("http", "https"):
                origins.add(origin_of(f"{scheme}://{_bracketed(host)}:{http_port}"))
    origins.update(origin_of(o) for o in (config.public_url, *config.allowed_origins) if o)
    return BrowserPolicy(hosts, frozenset(o for o in origins if o))


def check_bind(config: GatewayConfig) -> None:
    """``serve`` on every address (0.0.0.0, ::) needs ``allowed_hosts``: which names reach
    it cannot be guessed, and a default would let any rebound name in."""
    if is_wildcard(config.host) and not config.allowed_hosts:
        raise ConfigError(
            f"[gateway] host {config.host!r} listens on every address: set [gateway] "
            'allowed_hosts to the names clients use (e.g. allowed_hosts = ["cron.example.com", '
            '"127.0.0.1"])'
        )


FRAMING_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
)
"""On every HTTP answer: no page may frame the dashboard (clickjacking), no answer is
sniffed into another type."""


class BrowserGuard:
    """ASGI middleware applying :meth:`BrowserPolicy.check` to every HTTP request and
    WebSocket handshake before the app sees it, and adding :data:`FRAMING_HEADERS` to every
    HTTP answer."""

    def __init__(self, app: ASGIApp, policy: BrowserPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method = scope.get("method", "GET") if scope["type"] == "http" else "GET"
        refusal = self.policy.check(
            method,
            scope.get("path", ""),
            headers.get("host"),
            headers.get("origin"),
            headers.get("sec-fetch-site"),
            headers.get("content-type"),
            _has_body(headers),
        )
        if refusal is None:
            await self.app(scope, receive, _framing(send) if scope["type"] == "http" else send)
            return
        log.warning(
            "refused %s %s from %s: %s", method, scope.get("path"), _client(scope), refusal.code
        )
        if scope["type"] == "websocket" and DENIAL not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
            return
        await _respond(send, refusal, "websocket." if scope["type"] == "websocket" else "")


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    return "transfer-encoding" in headers or (length is not None and length.strip() != "0")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "?"


async def _respond(send: Send, refusal: Refusal, prefix: str = "") -> None:
    """The refusal as an HTTP answer; ``prefix`` ``"websocket."``: a WebSocket handshake's
    (the denial response extension: the same status and body as the standalone port's)."""
    body = refusal.body()
    await send(
        {
            "type": f"{prefix}http.response.start",
            "status": refusal.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"vary", b"Origin, Sec-Fetch-Site"),
                *FRAMING_HEADERS,
            ],
        }
    )
    await send({"type": f"{prefix}http.response.body", "body": body})


def _framing(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            extra = [(n, v) for n, v in FRAMING_HEADERS if n not in present]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending
