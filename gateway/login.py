"""Dashboard log-in sessions: what the login cookie holds and who it stands for, for the HTTP
side (``gateway/http.py``) and the WebSocket side (``gateway/ws.py``) alike.

The cookie holds a random 128-bit session id, never a token. The store keeps the id's SHA-256
with the user, the fingerprint (SHA-256) of the token that logged in, and the session's start,
end (``[gateway] session_ttl_secs`` after the log-in, however often it is used) and last use,
so every gateway node on the store knows every session, and a log-out on one node (a POST to
``/logout``) ends the session on all of them.

Removing a token from ``[gateway.tokens]`` ends its sessions. Each node maps a session's token
fingerprint through its OWN configured tokens at every lookup: a session whose token this node
does not have, or whose token now names another user, is refused, and the user's rights
(admin or not) are the current configuration's, not a copy taken at log-in. So a removal takes
effect on each node as soon as that node runs with the new configuration, without nodes having
to tell each other and whatever order they restart in. At start-up a node also deletes the
sessions of tokens it does not have, so they stay ended even if the token is added back later.
(Nodes sharing a store are meant to share one token list; a node started with fewer tokens
ends the sessions of the tokens it lacks.)

The cookie alone is not enough: browsers send it to every port of the host, so any program
listening on another local port could replay it. Each log-in also gets a **tab secret**, the
HMAC-SHA256 of the session id keyed with the token that logged in, handed to the dashboard's
script in the log-in POST's answer only (:func:`handover_page`), which keeps it in
``sessionStorage`` (per origin, so per port, and per tab). Every cookie-authenticated API
request carries it in ``X-Starpod-CSRF``, the WebSocket handshake in its subprotocol list
(``starpod, starpod.csrf.<secret>``). Nothing stores it: every node derives it from the
session's token, which only configured nodes know.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, Response

from starpod_cron.access import Principal
from starpod_cron.store import LoginSessionStore

log = logging.getLogger("gateway.login")

COOKIE = "starpod_session"
OLD_COOKIE = "starpod_token"
"""Where older versions kept the raw token: cleared at every log-in and log-out."""
SECRET_HEADER = "x-starpod-csrf"
"""Where a cookie-authenticated HTTP request carries the tab secret."""
WS_SUBPROTOCOL = "starpod"
"""The subprotocol the WebSocket server selects when the dashboard offers one."""
WS_SECRET_PREFIX = "starpod.csrf."
"""The dashboard offers ``starpod.csrf.<tab secret>`` beside :data:`WS_SUBPROTOCOL`."""


class TabSecretRefused(Exception):
    """A valid cookie without its tab secret (a replayed cookie): refused with 403."""


def fingerprint(token: str) -> str:
    """What the store keeps of the token a session logged in with (SHA-256, hex)."""
    data = b"starpod-cron gateway token\0" + token.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


class LoginSessions:
    """Log in (a token for a new session id), resolve a session id to its principal, log out."""

    def __init__(
        self,
        store: LoginSessionStore,
        tokens: Mapping[str, Principal],
        ttl_secs: float,
        *,
        secure: bool = False,
        path: str = "/",
    ) -> None:
        self.store = store
        self.path = path
        """The cookie's Path: the dashboard's (``public_url``'s path behind a proxy)."""
        self.tokens = tokens
        self.ttl_secs = ttl_secs
        self.secure = secure
        """Mark the cookie Secure even on plain HTTP (behind an HTTPS reverse proxy)."""
        self._by_fingerprint = {fingerprint(t): who for t, who in tokens.items()}
        self._token_of = {fingerprint(t): t for t in tokens}

    async def end_removed(self) -> int:
        """At start-up: delete the sessions of tokens not configured here, and expired ones."""
        ended = await self.store.end_login_sessions(self._by_fingerprint)
        if ended:
            log.warning("ended %d dashboard session(s) of tokens no longer configured", ended)
        await self.store.prune_login_sessions()
        return ended

    async def log_in(self, token: str, replacing: str = "") -> tuple[str, str] | None:
        """A new session id and its tab secret for a configured token (ending the session
        ``replacing``, the browser's previous one, if any); None for any other string."""
        who = self.tokens.get(token)
        if who is None or not who.user_id:
            return None
        await self.log_out(replacing)
        session_id = await self.store.create_login_session(
            who.user_id, fingerprint(token), self.ttl_secs
        )
        return session_id, tab_secret(token, session_id)

    async def _lookup(self, session_id: str) -> tuple[Principal, str] | None:
        if not session_id or not self._by_fingerprint:
            return None
        session = await self.store.get_login_session(session_id)
        if session is None:
            return None
        who = self._by_fingerprint.get(session.token_fingerprint)
        if who is None or who.user_id != session.user_id:
            return None
        return who, self._token_of[session.token_fingerprint]

    async def principal(self, session_id: str) -> Principal | None:
        """Who the session stands for now; None if it is unknown, expired, logged out, or its
        token is no longer configured here (or now names someone else). The cookie alone:
        for serving the dashboard's page and re-checking an open WebSocket, never for the API
        (:meth:`authorize`)."""
        found = await self._lookup(session_id)
        return None if found is None else found[0]

    async def authorize(self, session_id: str, secret: str) -> Principal | None:
        """:meth:`principal`, for a request that must also carry the session's tab secret:
        None when the session is not valid; :class:`TabSecretRefused` when it is but
        ``secret`` is not its tab secret (the cookie replayed by someone else)."""
        found = await self._lookup(session_id)
        if found is None:
            return None
        who, token = found
        if not hmac.compare_digest(secret.encode(), tab_secret(token, session_id).encode()):
            raise TabSecretRefused(
                f"a request with the login cookie needs the tab's secret in {SECRET_HEADER} "
                "(log in again in this tab)"
            )
        return who

    async def log_out(self, session_id: str) -> None:
        if session_id:
            await self.store.delete_login_session(session_id)

    def _secure(self, request: HTTPConnection) -> bool:
        return self.secure or request.url.scheme == "https"

    def set_cookie(self, response: Response, session_id: str, request: HTTPConnection) -> None:
        """The session cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's
        page makes the browser send it), Secure over HTTPS, for the dashboard's path (the whole
        site, or ``public_url``'s path behind a proxy), until the session ends."""
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=int(self.ttl_secs),
            path=self.path,
            httponly=True,
            samesite="strict",
            secure=self._secure(request),
        )
        response.delete_cookie(OLD_COOKIE, path="/")

    def clear_cookie(self, response: Response, request: HTTPConnection) -> None:
        secure = self._secure(request)
        response.delete_cookie(
            COOKIE, path=self.path, httponly=True, samesite="strict", secure=secure
        )
        response.delete_cookie(OLD_COOKIE, path="/")


def tab_secret(token: str, session_id: str) -> str:
    """The tab secret of ``session_id`` (64 hex digits): whoever lacks the token cannot
    compute it from the cookie."""
    key = token.encode("utf-8", "surrogatepass")
    message = b"starpod-cron tab secret\0" + session_id.encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def ws_secret(offered: list[str]) -> str:
    """The tab secret among a WebSocket handshake's offered subprotocols (``""``: none)."""
    for name in offered:
        if name.startswith(WS_SECRET_PREFIX):
            return name[len(WS_SECRET_PREFIX) :]
    return ""


def handover_page(secret: str) -> HTMLResponse:
    """The answer to a successful log-in POST: a page whose script (``handover.js``) puts
    the tab secret in ``sessionStorage`` and goes on to the dashboard. Never cached."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="starpod-csrf" content="{html.escape(secret)}">'
        "<title>starpod-cron</title></head><body>"
        '<noscript>The dashboard needs JavaScript.</noscript><p><a href="./">Continue</a></p>'
        '<script src="static/handover.js"></script></body></html>'
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


def site_path(public_url: str) -> str:
    """The path the dashboard is served under: ``public_url``'s (``/cron`` for
    ``https://example.com/cron/``), ``/`` without one. Its cookie is for that path only."""
    return urlsplit(public_url).path.rstrip("/") or "/"
