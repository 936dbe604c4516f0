"""Who is asking: the one place that maps what a request offers (a bearer token, the login
cookie and its tab secret) to a :class:`~starpod_cron.access.Principal`, for the HTTP API,
the WebSocket handshake and MCP over HTTP alike (the stdio MCP acts for its configured user:
:func:`configured_user`). Starlette's routes read it as ``request.user``
(:class:`PrincipalBackend`, an ``AuthenticationBackend``); the WebSocket server, which is not
Starlette, asks :meth:`Principals.resolve` itself with :meth:`Credentials.of_handshake`.

The rules, one set for every front end:

1. No ``[gateway.tokens]`` configured: everyone is the local admin (the gateway then listens
   on a loopback address only; ``mcp --http`` refuses to start).
2. A bearer token (``Authorization: Bearer <token>``; on the WebSocket handshake also the
   deprecated ``?token=``, which the WebSocket server warns about once) decides alone: a
   configured token is its user; any other is **401**, whatever cookie comes with it.
3. Otherwise the login cookie, with its session's tab secret (``X-Starpod-CSRF`` on HTTP,
   the subprotocol ``starpod.csrf.<secret>`` on the handshake): a valid session with the
   right secret is its user; a valid session without it is **403** ``csrf`` (a replayed
   cookie); no valid session is **401**. On the handshake the cookie counts only with one of
   the dashboard's ``Origin`` s (a browser always sends one there; :mod:`gateway.origin`).
4. The store unreachable (or closed) while a session is checked: **503** ``unavailable``.

:mod:`gateway.origin` judges every request first (Host, Origin, Sec-Fetch-Site, JSON bodies).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response
from websockets.datastructures import Headers

from starpod_cron import StarpodCronError
from starpod_cron.access import LOCAL_ADMIN, Principal
from starpod_cron.config import GatewayConfig, gateway_tokens

from .login import COOKIE, SECRET_HEADER, LoginSessions, TabSecretRefused, ws_secret
from .origin import BrowserPolicy, Refusal

log = logging.getLogger("gateway.principals")

UNAUTHORIZED = Refusal(401, "unauthorized", "invalid or missing token")


def load_tokens(config: GatewayConfig) -> dict[str, Principal]:
    """Tokens from ``[gateway] tokens`` plus the JSON in ``$tokens_env`` (same shape, same
    checks: see :func:`starpod_cron.config.gateway_tokens`)."""
    return {t: Principal(c.user_id, c.admin) for t, c in gateway_tokens(config).items()}


def configured_user(user: str | None) -> Principal:
    """Whom the stdio MCP server (``starpod-cron mcp [--user ID]``) acts for: that user, with
    the per-user limits, or without ``--user`` the local operator (every job, like the CLI)."""
    return Principal(user) if user else LOCAL_ADMIN


@dataclass(frozen=True, slots=True)
class Credentials:
    """What one request offers as proof of who it is, read from its transport."""

    token: str = ""
    """A bearer token ("" when none was sent)."""
    session: str = ""
    """The login cookie's session id, where it counts ("" otherwise)."""
    secret: str = ""
    """The tab secret sent beside the cookie."""
    in_query: bool = False
    """The token came in the URL (``?token=``, the WebSocket handshake only: deprecated)."""

    @classmethod
    def of_request(cls, conn: HTTPConnection) -> Credentials:
        """An HTTP request's (the API, ``/metrics``, MCP over HTTP)."""
        return cls(
            token=bearer(conn.headers.get("authorization", "")),
            session=conn.cookies.get(COOKIE, ""),
            secret=conn.headers.get(SECRET_HEADER, ""),
        )

    @classmethod
    def of_handshake(cls, path: str, headers: Headers, policy: BrowserPolicy) -> Credentials:
        """A WebSocket handshake's: the cookie only with a dashboard ``Origin`` (rule 3)."""
        token = bearer(headers.get("Authorization", ""))
        in_query = False
        if not token:
            token = (parse_qs(urlsplit(path).query).get("token") or [""])[0].strip()
            in_query = bool(token)
        session = ""
        if policy.origin_allowed(headers.get("Origin")):
            session = _cookie(headers.get("Cookie", ""), COOKIE)
        return cls(token, session, ws_secret(_offered(headers)), in_query)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request was resolved to, and the login session that proved it ("" if none)."""

    who: Principal
    session: str = ""


class Refused(AuthenticationError):
    """The credentials were not enough: :attr:`refusal` is the answer (401, 403, 503)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class Principals:
    """The rules above, for one node's tokens and login sessions."""

    def __init__(self, tokens: Mapping[str, Principal], logins: LoginSessions | None) -> None:
        self.tokens = tokens
        self.logins = logins

    async def resolve(self, offered: Credentials) -> Identity:
        """Who ``offered`` stands for; :class:`Refused` when nobody."""
        if not self.tokens:
            return Identity(LOCAL_ADMIN)  # rule 1
        if offered.token:  # rule 2
            found = self.tokens.get(offered.token)
            if found is None:
                raise Refused(UNAUTHORIZED)
            return Identity(found)
        if offered.session and self.logins is not None:  # rule 3
            try:
                who = await self.logins.authorize(offered.session, offered.secret)
            except TabSecretRefused as exc:
                raise Refused(Refusal(403, "csrf", str(exc))) from None
            except StarpodCronError as exc:  # rule 4: unreachable or closed, so unproven
                log.warning("cannot check a login session: %s", exc)
                raise Refused(Refusal(503, "unavailable", f"{exc}; try again")) from None
            if who is not None:
                return Identity(who, offered.session)
        raise Refused(UNAUTHORIZED)

    async def visitor(self, session: str) -> Principal | None:
        """Whom the cookie alone stands for: enough to serve the dashboard's page (which
        holds no data) or to keep a WebSocket opened with it, never for the API."""
        if not self.tokens:
            return LOCAL_ADMIN
        if self.logins is None:
            return None
        return await self.logins.principal(session)

    def middleware(self) -> Middleware:
        """Starlette middleware putting the principal in ``request.user`` (routes behind it
        are answered only for someone: a refusal is answered with its JSON error)."""
        return Middleware(
            AuthenticationMiddleware, backend=PrincipalBackend(self), on_error=refused
        )


class PrincipalUser(BaseUser):
    """``request.user`` behind :meth:`Principals.middleware`."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.user_id or "local operator"


class PrincipalBackend(AuthenticationBackend):
    """Starlette's hook for the rules: every request behind it has a principal or is refused."""

    def __init__(self, principals: Principals) -> None:
        self.principals = principals

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser]:
        found = await self.principals.resolve(Credentials.of_request(conn))
        scopes = ["authenticated", "admin"] if found.who.admin else ["authenticated"]
        return AuthCredentials(scopes), PrincipalUser(found.who)


def principal_of(conn: HTTPConnection) -> Principal:
    """The principal :class:`PrincipalBackend` resolved for this request."""
    user = conn.user
    assert isinstance(user, PrincipalUser), "route is not behind Principals.middleware()"
    return user.principal


def refused(conn: HTTPConnection, exc: Exception) -> Response:
    """The answer to a :class:`Refused` request (the JSON error every port answers)."""
    refusal = exc.refusal if isinstance(exc, Refused) else Refusal(401, "unauthorized", str(exc))
    log.warning("refused %s from %s: %s", conn.url.path, conn.client, refusal.code)
    return Response(refusal.body(), refusal.status, media_type="application/json")


def bearer(header: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header ("" for anything else)."""
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def _cookie(header: str, name: str) -> str:
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""


def _offered(headers: Headers) -> list[str]:
    """The subprotocols a handshake offers (``Sec-WebSocket-Protocol``, any number of headers)."""
    values = headers.get_all("Sec-WebSocket-Protocol")
    return [p.strip() for value in values for p in value.split(",") if p.strip()]
