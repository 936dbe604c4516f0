"""The HTTP side of a gateway node (Starlette on uvicorn): assembles the JSON API
(:mod:`gateway.api`, documented at ``/openapi.json`` by :mod:`gateway.openapi`), the dashboard
and its log-in, health checks and metrics.

- ``/api/...``: the ``cron_*`` tools as REST, recent runs, deliveries (:mod:`gateway.api`).
- ``/ws``: the WebSocket protocol of the standalone port (:mod:`gateway.wsroute`), so the
  dashboard and clients behind a reverse proxy need this port only.
- ``/``: the dashboard (static files from the package; no CDN, no build step); ``/login`` and
  ``/logout`` (:mod:`gateway.login`). Every address in it and every redirect is relative, so
  it works under a reverse proxy's path prefix (``[gateway] public_url``).
- ``/healthz`` (the process answers), ``/readyz`` (store reachable, scheduler loop and outbox
  passing; :mod:`gateway.health`), ``/metrics`` (Prometheus).

Who is asking is resolved in one place for every port, :mod:`gateway.principals`
(``Authorization: Bearer <token>``, or the login cookie with the tab secret in
``X-Starpod-CSRF``); without tokens every local client is an admin. Before any of that, every
request passes the browser rule of :mod:`gateway.origin` (Host, Origin, Sec-Fetch-Site, JSON
bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from importlib import resources

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from starpod_cron import CronScheduler, StarpodCronError
from starpod_cron.access import Principal
from starpod_cron.operations import JobOperations
from starpod_cron.tools import error_code

from .api import HTTP_STATUS, Api, error
from .bodylimit import BodyLimit
from .health import readiness
from .login import COOKIE, LoginSessions, handover_page
from .metrics import CONTENT_TYPE, Metrics
from .openapi import openapi_document
from .origin import BrowserGuard, BrowserPolicy
from .outbox import Outbox
from .principals import Principals
from .wshub import WsHub
from .wsroute import WsProtocol, ws_route

log = logging.getLogger("gateway.http")

MAX_BODY = 64 * 1024
MAX_LOGIN_BODY = 4 * 1024
WEB = resources.files("gateway") / "web"


class HttpApi:
    """The Starlette app of one node; :meth:`serve` runs it with uvicorn on ``sock``."""

    def __init__(
        self,
        ops: JobOperations,
        scheduler: CronScheduler,
        tokens: dict[str, Principal],
        metrics: Metrics,
        *,
        ws: WsHub,
        ws_port: Callable[[], int | None],
        outbox: Callable[[], Outbox | None],
        logins: LoginSessions,
        policy: BrowserPolicy,
    ) -> None:
        self.api = Api(ops, ws_port)
        self.scheduler = scheduler
        self.principals = Principals(tokens, logins)
        self.metrics = metrics
        self.outbox = outbox
        self.logins = logins
        self.max_frame_bytes = ws.config.max_frame_bytes
        auth = self.principals.middleware()  # request.user, or the refusal (401/403/503)
        routes: list[BaseRoute] = [*self.api.routes(auth)]
        routes += [
            Route("/healthz", self.healthz),
            Route("/readyz", self.readyz),
            Route("/metrics", self.metrics_endpoint, middleware=[auth]),
            Route("/openapi.json", self.openapi),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/", self.index),
            ws_route(ws),
            Mount("/static", StaticFiles(directory=str(WEB))),
        ]
        limits = {"/login": MAX_LOGIN_BODY}
        self.app = Starlette(
            routes=routes,
            middleware=[  # outermost first: a body is bounded before anything reads it
                Middleware(BodyLimit, default=MAX_BODY, limits=limits),
                Middleware(BrowserGuard, policy=policy),
            ],
            exception_handlers={StarpodCronError: _failed},
        )

    # ------------------------------------------------------------------ dashboard
    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return FileResponse(str(WEB / "login.html"))
        form = await request.form()
        token, previous = str(form.get("token") or ""), request.cookies.get(COOKIE, "")
        started = await self.logins.log_in(token, replacing=previous)
        if started is None:
            log.warning("refused a dashboard login from %s: bad token", request.client)
            return RedirectResponse("login?error=1", status_code=303)
        response = handover_page(started[1])  # the tab secret: in this answer only
        self.logins.set_cookie(response, started[0], request)
        return response

    async def logout(self, request: Request) -> Response:
        await self.logins.log_out(request.cookies.get(COOKIE, ""))
        response = RedirectResponse("login", status_code=303)
        self.logins.clear_cookie(response, request)
        return response

    async def index(self, request: Request) -> Response:
        if await self.principals.visitor(request.cookies.get(COOKIE, "")) is None:
            return RedirectResponse("login", status_code=303)
        return FileResponse(str(WEB / "index.html"))

    # ------------------------------------------------------------------- health
    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """503 unless the store answers and the scheduler and outbox loops pass (health.py);
        destinations refusing are listed, never a reason to answer 503."""
        ready, body = await readiness(self.api.activity, self.scheduler, self.outbox())
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(await self.metrics.render(), media_type=CONTENT_TYPE)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())

    # -------------------------------------------------------------------- serve
    async def serve(self, sock: socket.socket) -> None:
        """Serve on ``sock`` until cancelled (then stop accepting and finish requests)."""
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            log_config=None,  # uvicorn's loggers go through ours (JSON logs, redaction)
            ws=WsProtocol,  # /ws: a frame over the limit closes with 1009, as on the WS port
            ws_max_size=self.max_frame_bytes,
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="gateway:http:uvicorn")
        try:
            await asyncio.shield(task)
        finally:
            server.should_exit = True
            await asyncio.wait({task}, timeout=5)
            sock.close()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the gateway owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(host: str, port: int) -> socket.socket:
    """A listening socket (OSError if the address cannot be bound)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def _failed(request: Request, exc: Exception) -> Response:
    code = error_code(exc) if isinstance(exc, StarpodCronError) else "internal"
    return error(HTTP_STATUS.get(code, 500), code, str(exc))
