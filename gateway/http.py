"""The HTTP side of a gateway node (Starlette on uvicorn): the JSON API, the dashboard, health
checks and metrics.

- ``/api/...``: the ``cron_*`` tools as REST (the same :func:`~starpod_cron.tools.call_tool`
  and ownership rules as the WebSocket API), recent runs, deliveries; ``/openapi.json``.
- ``/``: the dashboard (static files from the package; no CDN, no build step).
- ``/healthz`` (the process answers), ``/readyz`` (store reachable, scheduler loop and outbox
  passing; :mod:`gateway.health`), ``/metrics`` (Prometheus).

Auth uses ``[gateway.tokens]``: ``Authorization: Bearer <token>`` for the API, or the session
cookie the login page sets (a random session id: :mod:`gateway.login`). Every request with
the cookie must also carry the tab secret the log-in handed to the page, in
``X-Starpod-CSRF``, so a program that replays the cookie (another port of this host gets it
too) is refused with 403. Without tokens every local client is an admin, as on the WebSocket.

Before any of that, every request passes the browser rule of :mod:`gateway.origin` (Host,
Origin, Sec-Fetch-Site, JSON bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from enum import StrEnum
from importlib import resources
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from starpod_cron import (
    CronScheduler,
    DeliveryStatus,
    InvalidInput,
    RunStatus,
    StarpodCronError,
)
from starpod_cron.access import LOCAL_ADMIN, Principal
from starpod_cron.inputrules import whole_number
from starpod_cron.jobfields import JobFields
from starpod_cron.operations import JobOperations
from starpod_cron.tools import TOOLS, call_tool, error_code
from starpod_cron.views import fires_after, job_fires, run_json, schedule_human

from .bodylimit import BodyLimit
from .health import readiness
from .login import COOKIE, SECRET_HEADER, LoginSessions, TabSecretRefused, handover_page
from .metrics import CONTENT_TYPE, Metrics
from .origin import BrowserGuard, BrowserPolicy
from .outbox import Outbox

log = logging.getLogger("gateway.http")

MAX_BODY = 64 * 1024
MAX_LOGIN_BODY = 4 * 1024
MAX_TIMELINE = 500
HTTP_STATUS = {
    "not_found": 404,
    "conflict": 409,
    "limit": 403,
    "invalid": 400,
    "unavailable": 503,
    "error": 400,
}
WEB = resources.files("gateway") / "web"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class HttpApi:
    """The Starlette app of one node; :meth:`serve` runs it with uvicorn on ``sock``."""

    def __init__(
        self,
        ops: JobOperations,
        scheduler: CronScheduler,
        tokens: dict[str, Principal],
        metrics: Metrics,
        *,
        ws_port: Callable[[], int],
        outbox: Callable[[], Outbox | None],
        logins: LoginSessions,
        policy: BrowserPolicy,
    ) -> None:
        self.ops = ops
        self.scheduler = scheduler
        self.tokens = tokens
        self.metrics = metrics
        self.ws_port = ws_port
        self.outbox = outbox
        self.logins = logins
        api: list[tuple[str, Callable[[Request, Principal], Awaitable[Any]], list[str]]] = [
            ("/api/me", self.me, ["GET"]),
            ("/api/jobs", self.jobs, ["GET", "POST"]),
            ("/api/jobs/{name}", self.job, ["GET", "PATCH", "DELETE"]),
            ("/api/jobs/{name}/pause", self.action("cron_pause"), ["POST"]),
            ("/api/jobs/{name}/resume", self.action("cron_resume"), ["POST"]),
            ("/api/jobs/{name}/run", self.action("cron_run"), ["POST"]),
            ("/api/jobs/{name}/runs", self.job_runs, ["GET"]),
            ("/api/runs", self.runs, ["GET"]),
            ("/api/timeline", self.timeline, ["GET"]),
            ("/api/preview", self.preview, ["POST"]),
            ("/api/next", self.next_fires, ["GET"]),
            ("/api/deliveries", self.deliveries, ["GET"]),
            ("/api/deliveries/{id:int}/retry", self.retry, ["POST"]),
        ]
        routes: list[BaseRoute] = [
            Route(path, self._endpoint(fn), methods=methods) for path, fn, methods in api
        ]
        routes += [
            Route("/healthz", self.healthz),
            Route("/readyz", self.readyz),
            Route("/metrics", self.metrics_endpoint),
            Route("/openapi.json", self.openapi),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/", self.index),
            Mount("/static", StaticFiles(directory=str(WEB))),
        ]
        limits = {"/login": MAX_LOGIN_BODY}
        self.app = Starlette(
            routes=routes,
            middleware=[  # outermost first: a body is bounded before anything reads it
                Middleware(BodyLimit, default=MAX_BODY, limits=limits),
                Middleware(BrowserGuard, policy=policy),
            ],
            exception_handlers={StarpodCronError: _failed, ApiError: _api_failed},
        )

    # ------------------------------------------------------------------------ auth
    async def principal(self, request: Request) -> Principal | None:
        if not self.tokens:
            return LOCAL_ADMIN
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return self.tokens.get(header[7:].strip())
        cookie, secret = request.cookies.get(COOKIE, ""), request.headers.get(SECRET_HEADER, "")
        try:
            return await self.logins.authorize(cookie, secret)
        except TabSecretRefused as exc:
            raise ApiError(403, "csrf", str(exc)) from None

    def _endpoint(
        self, fn: Callable[[Request, Principal], Awaitable[Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                who = await self.principal(request)
                if who is None:
                    raise ApiError(401, "unauthorized", "invalid or missing token")
                return JSONResponse(await fn(request, who))
            except ApiError as exc:
                return _error(exc.status, exc.code, str(exc))
            except StarpodCronError as exc:
                code = error_code(exc)
                return _error(HTTP_STATUS[code], code, str(exc))

        return endpoint

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return FileResponse(str(WEB / "login.html"))
        form = await request.form()
        token, previous = str(form.get("token") or ""), request.cookies.get(COOKIE, "")
        started = await self.logins.log_in(token, replacing=previous)
        if started is None:
            log.warning("refused a dashboard login from %s: bad token", request.client)
            return RedirectResponse("/login?error=1", status_code=303)
        response = handover_page(started[1])  # the tab secret: in this answer only
        self.logins.set_cookie(response, started[0], request)
        return response

    async def logout(self, request: Request) -> Response:
        await self.logins.log_out(request.cookies.get(COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        self.logins.clear_cookie(response, request)
        return response

    async def index(self, request: Request) -> Response:
        if self.tokens and await self.logins.principal(request.cookies.get(COOKIE, "")) is None:
            return RedirectResponse("/login", status_code=303)
        return FileResponse(str(WEB / "index.html"))

    # ----------------------------------------------------------------------- API
    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()  # at most MAX_BODY bytes: BodyLimit refuses more with 413
        try:
            body = (await request.json()) if raw else {}
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise ApiError(400, "bad_json", f"not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "invalid", "the body must be a JSON object")
        return body

    async def _tool(self, who: Principal, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await call_tool(self.ops, name, arguments, user=who)

    async def me(self, request: Request, who: Principal) -> dict[str, Any]:
        return {"user_id": who.user_id, "admin": who.admin, "ws_port": self.ws_port()}

    async def jobs(self, request: Request, who: Principal) -> dict[str, Any]:
        if request.method == "POST":
            return await self._tool(who, "cron_add", await self._body(request))
        answer = await self._tool(who, "cron_list", {})
        stats = await self.ops.store.run_stats()  # runs, errors and tokens, for the dashboard
        for job in answer["jobs"]:
            found = stats.get(job["id"])
            job["stats"] = {
                "runs": found.runs if found else 0,
                "errors": found.errors if found else 0,
                "prompt_tokens": found.prompt_tokens if found else 0,
                "completion_tokens": found.completion_tokens if found else 0,
            }
        return answer

    async def job(self, request: Request, who: Principal) -> dict[str, Any]:
        name = request.path_params["name"]
        if request.method == "PATCH":
            return await self._tool(who, "cron_update", {**await self._body(request), "name": name})
        if request.method == "DELETE":
            return await self._tool(who, "cron_remove", {"name": name})
        return await self._tool(who, "cron_get", {"name": name})

    def action(self, tool: str) -> Callable[[Request, Principal], Awaitable[Any]]:
        async def act(request: Request, who: Principal) -> dict[str, Any]:
            return await self._tool(who, tool, {"name": request.path_params["name"]})

        return act

    async def job_runs(self, request: Request, who: Principal) -> dict[str, Any]:
        limit = _int(request.query_params.get("limit"), 20, 1, 200, "limit")
        return await self._tool(
            who, "cron_runs", {"name": request.path_params["name"], "limit": limit}
        )

    async def runs(self, request: Request, who: Principal) -> dict[str, Any]:
        """Recent runs across the jobs ``who`` may see, newest first."""
        limit = _int(request.query_params.get("limit"), 50, 1, 500, "limit")
        raw = request.query_params.get("status")
        status = _status(raw) if raw else None
        store = self.ops.store
        mine = await self.ops.list_jobs(who)
        if who.admin:
            runs = await store.list_recent_runs(limit, status=status)
        else:
            runs = [r for j in mine for r in await store.list_runs(j.id, limit)]
            runs = [r for r in runs if status is None or r.status is status]
            runs = sorted(runs, key=lambda r: r.started_at, reverse=True)[:limit]
        jobs = {j.id: j for j in mine}
        return {"runs": [run_json(r, jobs.get(r.job_id)) for r in runs]}

    async def timeline(self, request: Request, who: Principal) -> dict[str, Any]:
        """Every fire of the next ``hours`` (default 24) across the jobs ``who`` may see."""
        hours = _int(request.query_params.get("hours"), 24, 1, 168, "hours")
        now = self.ops.now()
        end = now + timedelta(hours=hours)
        fires: list[dict[str, Any]] = []
        for job in await self.ops.list_jobs(who):
            if not job.enabled or job.next_fire_at is None or job.next_fire_at > end:
                continue
            times = job_fires(job, MAX_TIMELINE)
            fires += [
                {"job": job.name, "job_id": job.id, "at": t.isoformat()} for t in times if t <= end
            ]
        fires.sort(key=lambda f: f["at"])
        return {"from": now.isoformat(), "to": end.isoformat(), "fires": fires[:MAX_TIMELINE]}

    async def preview(self, request: Request, who: Principal) -> dict[str, Any]:
        """The next 5 fires of a schedule given as for cron_add (cron/every/at/in, timezone);
        saves nothing."""
        body = await self._body(request)
        fields = JobFields.from_mapping(body)
        tz = fields.timezone or await self.ops.default_zone(who)
        now = self.ops.now()
        schedule = fields.schedule(tz, now)
        if schedule is None:
            raise InvalidInput("give one of cron, every, at, in")
        fires = fires_after(schedule, tz, now, 5)
        return {
            "in_words": schedule_human(schedule, tz),
            "timezone": tz,
            "next_runs": [t.isoformat() for t in fires],
        }

    async def next_fires(self, request: Request, who: Principal) -> dict[str, Any]:
        q = request.query_params
        arguments: dict[str, Any] = {"expression": q.get("expression")}
        if q.get("timezone"):
            arguments["timezone"] = q["timezone"]
        if q.get("count"):
            arguments["count"] = _int(q["count"], 5, 1, 20, "count")
        return await self._tool(who, "cron_next", arguments)

    async def deliveries(self, request: Request, who: Principal) -> dict[str, Any]:
        if not who.admin:
            raise ApiError(403, "forbidden", "only admins see deliveries")
        status = _delivery_status(request.query_params.get("status", "dead"))
        limit = _int(request.query_params.get("limit"), 100, 1, 1000, "limit")
        store = self.ops.store
        found = await store.deliveries_with_status(status, limit)
        counts = await store.count_deliveries()
        return {
            "deliveries": [
                {
                    "id": d.id,
                    "run_id": d.run_id,
                    "job_name": d.job_name,
                    "destination": d.destination,
                    "status": d.status.value,
                    "attempts": d.attempts,
                    "last_error": d.last_error,
                    "created_at": d.created_at.isoformat(),
                }
                for d in found
            ],
            "counts": {s.value: n for s, n in counts.items()},
        }

    async def retry(self, request: Request, who: Principal) -> dict[str, Any]:
        if not who.admin:
            raise ApiError(403, "forbidden", "only admins retry deliveries")
        delivery_id = request.path_params["id"]
        if not await self.ops.store.retry_delivery(delivery_id):
            raise ApiError(404, "not_found", f"no dead delivery {delivery_id}")
        return {"retried": delivery_id}

    # ------------------------------------------------------------------- health
    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """503 unless the store answers and the scheduler and outbox loops pass (health.py);
        destinations refusing are listed, never a reason to answer 503."""
        ready, body = await readiness(self.ops.store, self.scheduler, self.outbox())
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics_endpoint(self, request: Request) -> Response:
        if self.tokens and await self.principal(request) is None:
            return _error(401, "unauthorized", "invalid or missing token")
        return Response(await self.metrics.render(), media_type=CONTENT_TYPE)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())

    # -------------------------------------------------------------------- serve
    async def serve(self, sock: socket.socket) -> None:
        """Serve on ``sock`` until cancelled (then stop accepting and finish requests)."""
        config = uvicorn.Config(
            self.app, lifespan="off", log_level="warning", access_log=False, ws="none"
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
    return _error(HTTP_STATUS.get(code, 500), code, str(exc))


async def _api_failed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)  # principal()'s 403 outside _endpoint (/metrics)
    return _error(exc.status, exc.code, str(exc))


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _int(value: str | None, default: int, low: int, high: int, name: str) -> int:
    if value is None or value == "":
        return default
    return whole_number(name, value, low, high)  # ASCII digits: "²" and "١٢" are refused


def _status(value: str) -> RunStatus:
    return _member(RunStatus, value)


def _delivery_status(value: str) -> DeliveryStatus:
    return _member(DeliveryStatus, value)


E = TypeVar("E", bound=StrEnum)


def _member(kind: type[E], value: str) -> E:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(member.value for member in kind)
        raise ApiError(400, "invalid", f"status must be one of {known}") from None


def openapi_document() -> dict[str, Any]:
    """The API as OpenAPI 3.1, request bodies straight from the tools' JSON schemas."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": {}}}}}
    errors = {
        "400": {"description": "Invalid input (the message says what to change)"},
        "401": {"description": "Invalid or missing token"},
        "404": {"description": "No such job (or not yours)"},
    }

    def op(summary: str, tool: str | None = None, **extra: Any) -> dict[str, Any]:
        operation: dict[str, Any] = {"summary": summary, "responses": {**ok, **errors}}
        if tool is not None:
            schema = {k: v for k, v in TOOLS[tool].parameters.items()}
            if tool == "cron_update":
                props = {k: v for k, v in schema["properties"].items() if k != "name"}
                schema = {**schema, "properties": props, "required": []}
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        operation.update(extra)
        return operation

    def query(*params: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"name": n, "in": "query", "required": False, "schema": s} for n, s in params]

    limit = ("limit", {"type": "integer", "minimum": 1, "maximum": 200})
    return {
        "openapi": "3.1.0",
        "info": {"title": "starpod-cron", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/me": {"get": op("Who the token belongs to")},
            "/api/jobs": {
                "get": op("List your jobs"),
                "post": op("Add a job", "cron_add"),
            },
            "/api/jobs/{name}": {
                "parameters": [name],
                "get": op("One job"),
                "patch": op("Change a job", "cron_update"),
                "delete": op("Remove a job and its history"),
            },
            "/api/jobs/{name}/pause": {"parameters": [name], "post": op("Pause a job")},
            "/api/jobs/{name}/resume": {"parameters": [name], "post": op("Resume a job")},
            "/api/jobs/{name}/run": {"parameters": [name], "post": op("Run a job now")},
            "/api/jobs/{name}/runs": {
                "parameters": [name],
                "get": op("A job's recent runs", parameters=query(limit)),
            },
            "/api/runs": {
                "get": op(
                    "Recent runs of the jobs you see",
                    parameters=query(
                        ("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                        ("status", {"type": "string", "enum": [s.value for s in RunStatus]}),
                    ),
                )
            },
            "/api/timeline": {
                "get": op(
                    "Every fire in the next hours",
                    parameters=query(("hours", {"type": "integer", "minimum": 1, "maximum": 168})),
                )
            },
            "/api/next": {
                "get": op(
                    "Next fires of a cron expression",
                    parameters=[
                        {
                            "name": "expression",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        *query(
                            ("timezone", {"type": "string"}),
                            ("count", {"type": "integer", "minimum": 1, "maximum": 20}),
                        ),
                    ],
                )
            },
            "/api/preview": {"post": op("Preview a schedule's next fires", "cron_add")},
            "/api/deliveries": {
                "get": op(
                    "Deliveries by status (admins)",
                    parameters=query(
                        ("status", {"type": "string", "enum": [s.value for s in DeliveryStatus]}),
                        ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    ),
                )
            },
            "/api/deliveries/{id}/retry": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "post": op("Retry a dead delivery (admins)"),
            },
        },
    }
