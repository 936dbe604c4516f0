"""The JSON API (``/api/...``), each endpoint declared once in :data:`ENDPOINTS`: its method
and path, and either the agent tool it applies (:mod:`starpod_cron.tools`: the tool's JSON
schema says which fields come from the path, the query string and the body) or the
parameters it declares itself. That one declaration routes the request, reads and checks its
arguments, and writes the endpoint into ``/openapi.json`` (:mod:`gateway.openapi`).

Every endpoint is a thin adapter over the library (:class:`~starpod_cron.operations.
JobOperations` through the tools, :class:`~starpod_cron.activity.Activity`) and reads who is
asking from ``request.user`` (:mod:`gateway.principals`). Bad input answers 4xx with the
CLI's words, never 500.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from starpod_cron import DeliveryStatus, InvalidInput, RunStatus, RunTrigger, StarpodCronError
from starpod_cron.access import Principal
from starpod_cron.activity import MAX_DELIVERIES, MAX_PAGE, Activity, AdminOnly, page_json
from starpod_cron.inputrules import whole_number
from starpod_cron.jobfields import JobFields
from starpod_cron.operations import JobOperations
from starpod_cron.phrases import interpret
from starpod_cron.timeline import timeline
from starpod_cron.tools import TOOLS, call_tool, error_code
from starpod_cron.views import delivery_json, fires_after, schedule_human

from .origin import Refusal
from .principals import principal_of

MAX_TIMELINE = 5000
HTTP_STATUS = {
    "not_found": 404,
    "conflict": 409,
    "limit": 403,
    "forbidden": 403,
    "invalid": 400,
    "unavailable": 503,
    "error": 400,
}
BODY_METHODS = frozenset({"POST", "PATCH", "PUT"})
PREVIEW_FIELDS = ("cron", "every", "at", "in", "when", "timezone")
"""The fields of ``cron_add`` that ``POST /api/preview`` reads (a schedule and its zone)."""
Where = Literal["path", "query"]


class ApiError(Exception):
    """An answer other than a library error's (a body that is not JSON): :attr:`refusal`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.refusal = Refusal(status, code, message)


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of an endpoint: where it is read, its JSON schema, its default."""

    name: str
    where: Where
    schema: dict[str, Any]
    required: bool = False
    default: Any = None


Handler = Callable[["Api", Principal, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One operation of the API. With ``tool``, its parameters and body are the tool's
    fields (path ones by name, ``query`` ones from the query string, the rest from the body)
    and, without a ``handler``, the answer is the tool's; otherwise ``params`` and ``body``
    declare what the ``handler`` reads."""

    method: str
    path: str
    """OpenAPI form, ``/api/jobs/{name}``."""
    summary: str
    tool: str | None = None
    query: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    handler: Handler | None = None
    name: str | None = None
    """The operation's id when a second endpoint applies the same tool."""

    @property
    def operation_id(self) -> str:
        if self.name is not None:
            return self.name
        if self.tool is not None:
            return self.tool
        assert self.handler is not None
        return self.handler.__name__.strip("_")

    def path_names(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    def parameters(self) -> list[Param]:
        """Path and query parameters, with their schemas."""
        if self.tool is None:
            return list(self.params)
        schema = TOOLS[self.tool].parameters
        fields, required = schema["properties"], set(schema.get("required", []))
        found = [Param(n, "path", fields[n], required=True) for n in self.path_names()]
        return found + [Param(n, "query", fields[n], n in required) for n in self.query]

    def body_schema(self) -> dict[str, Any] | None:
        """The JSON body's schema (None: no body)."""
        if self.tool is None:
            return self.body
        schema = TOOLS[self.tool].parameters
        taken = {p.name for p in self.parameters()}
        rest = {k: v for k, v in schema["properties"].items() if k not in taken}
        if self.method not in BODY_METHODS or not rest:
            return None
        body: dict[str, Any] = {**schema, "properties": rest}
        required = [f for f in schema.get("required", []) if f not in taken]
        if required:
            body["required"] = required
        else:
            body.pop("required", None)
        return body

    def route_path(self) -> str:
        """Starlette's form: integer path parameters converted (``{id:int}``)."""
        path = self.path
        for param in self.parameters():
            if param.where == "path" and param.schema.get("type") == "integer":
                path = path.replace(f"{{{param.name}}}", f"{{{param.name}:int}}")
        return path


class Api:
    """The endpoints of one node over its library operations."""

    def __init__(self, ops: JobOperations, ws_port: Callable[[], int | None]) -> None:
        self.ops = ops
        self.activity = Activity(ops)
        self.ws_port = ws_port

    def routes(self, auth: Middleware) -> list[Route]:
        """Every endpoint of :data:`ENDPOINTS` behind ``auth`` (it sets ``request.user``)."""
        return [
            Route(e.route_path(), self._endpoint(e), methods=[e.method], middleware=[auth])
            for e in ENDPOINTS
        ]

    def _endpoint(self, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            try:
                arguments = await _arguments(endpoint, request)
                who = principal_of(request)
                if endpoint.handler is not None:
                    return JSONResponse(await endpoint.handler(self, who, arguments))
                assert endpoint.tool is not None
                return JSONResponse(await self.tool(who, endpoint.tool, arguments))
            except ApiError as exc:
                return error(exc.refusal.status, exc.refusal.code, exc.refusal.message)
            except StarpodCronError as exc:
                code = "forbidden" if isinstance(exc, AdminOnly) else error_code(exc)
                return error(HTTP_STATUS[code], code, str(exc))

        return answer

    async def tool(self, who: Principal, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await call_tool(self.ops, name, arguments, user=who)


async def _arguments(endpoint: Endpoint, request: Request) -> dict[str, Any]:
    """The endpoint's arguments: its body's fields, then its path and query parameters
    (which win), each read by its schema (a missing one takes its default, if any)."""
    arguments: dict[str, Any] = {}
    schema = endpoint.body_schema()
    if schema is not None:
        arguments = await _body(request)
        if endpoint.tool is None:  # a tool checks its own fields
            unknown = sorted(set(arguments) - set(schema["properties"]))
            if unknown:
                raise InvalidInput(f"unknown field(s): {', '.join(unknown)}")
    for param in endpoint.parameters():
        raw: str | None
        if param.where == "path":
            raw = str(request.path_params[param.name])  # an {id:int} is digits already
        else:
            raw = request.query_params.get(param.name)
        if raw is None or raw == "":
            if param.default is not None:
                arguments[param.name] = param.default
            continue
        arguments[param.name] = from_text(param.name, param.schema, raw)
    return arguments


def from_text(name: str, schema: dict[str, Any], raw: str) -> Any:
    """A query-string value read by its JSON schema (integers: ASCII digits within its
    bounds; enums: one of their values); InvalidInput otherwise."""
    if schema.get("type") == "integer":
        return whole_number(name, raw, schema.get("minimum", 0), schema.get("maximum", 2**63 - 1))
    known = schema.get("enum")
    if known is not None and raw not in known:
        raise InvalidInput(f"{name} must be one of {', '.join(known)}")
    return raw


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()  # at most MAX_BODY bytes: BodyLimit refuses more with 413
    try:
        body = (await request.json()) if raw else {}
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ApiError(400, "bad_json", f"not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid", "the body must be a JSON object")
    return body


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


# ------------------------------------------------------------------- handlers
async def _me(api: Api, who: Principal, a: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": who.user_id, "admin": who.admin, "ws_port": api.ws_port()}


async def _jobs(api: Api, who: Principal, a: dict[str, Any]) -> dict[str, Any]:
    """``cron_list``, each job with its runs, errors and tokens (for the dashboard)."""
    answer = await api.tool(who, "cron_list", a)
    stats = await api.activity.job_stats(who)
    for job in answer["jobs"]:
        found = stats.get(job["id"])
        job["stats"] = {
            "runs": found.runs if found else 0,
            "errors": found.errors if found else 0,
            "prompt_tokens": found.prompt_tokens if found else 0,
            "completion_tokens": found.completion_tokens if found else 0,
        }
    return answer


async def _runs(api: Api, who: Principal, a: dict[str, Any]) -> dict[str, Any]:
    """A page of the runs ``who`` sees, newest first: ``{"runs", "total", "next"}``."""
    page, jobs = await api.activity.runs_page(
        who,
        job=a.get("job"),
        status=RunStatus(a["status"]) if "status" in a else None,
        trigger=RunTrigger(a["trigger"]) if "trigger" in a else None,
        limit=a["limit"],
        before=a.get("before"),
    )
    return page_json(page, jobs)


async def _timeline(api: Api, who: Principal, a: dict[str, Any]) -> dict[str, Any]:
    """The first ``limit`` fires of the next ``hours`` across the jobs ``who`` may see, and
    how many there are in all (``total``; ``truncated`` when not all are listed)."""
    now = api.ops.now()
    end = now + timedelta(hours=a["hours"])
    found = timeline(await api.ops.list_jobs(who), end, a["limit"])
    return {
        "from": now.isoformat(),
        "to": end.isoformat(),
        "fires": [{"job": j.name, "job_id": j.id, "at": t.isoformat()} for t, j in found.fires],
        "total": found.total,
        "total_is_lower_bound": found.total_is_lower_bound,
        "truncated": found.truncated,
    }


async def _overview(api: Api, who: Principal, a: dict[str, Any]) -> dict[str, Any]:
    """Counts, runs and failures per hour of the last 24, what runs now, failing and paused
    jobs (:meth:`~starpod_cron.activity.Activity.overview`)."""
    return await api.activity.overview(who)


async def _preview(api: Api, who: Principal, a: dict[str, Any]) -> dict[str, Any]:
    """The next 5 fires of a schedule given as for cron_add (a ``when`` phrase: what it is
    understood as, as cron_add's interpretation says it); saves nothing."""
    fields = JobFields.from_mapping(a)
    tz = fields.timezone or await api.ops.default_zone(who)
    now = api.ops.now()
    if fields.when is not None and fields.schedule_given():  # only one schedule given
        return interpret(fields.when, tz, now).json()  # as cron_add would understand it
    schedule = fields.schedule(tz, now)
    if schedule is None:
        raise InvalidInput("give one of cron, every, at, in, when")
    fires = fires_after(schedule, tz, now, 5)
    return {
        "in_words": schedule_human(schedule, tz),
        "timezone": tz,
        "next_runs": [t.isoformat() for t in fires],
    }


async def _deliveries(api: Api, who: Principal, a: dict[str, Any]) -> dict[str, Any]:
    status = DeliveryStatus(a["status"])
    found, counts = await api.activity.deliveries(who, status, a["limit"])
    return {
        "deliveries": [delivery_json(d) for d in found],
        "counts": {s.value: n for s, n in counts.items()},
    }


async def _usage(api: Api, who: Principal, a: dict[str, Any]) -> dict[str, Any]:
    """Cost and tokens per job ``who`` may see, per owner (a user: only their own) and, for
    admins, in total: today, this month and in total; all time per model."""
    return await api.activity.usage(who, api.ops.now())


async def _retry(api: Api, who: Principal, a: dict[str, Any]) -> dict[str, Any]:
    if not await api.activity.retry_delivery(who, a["id"]):
        raise ApiError(404, "not_found", f"no dead delivery {a['id']}")
    return {"retried": a["id"]}


def _integer(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


def _enum(kind: type[RunStatus] | type[DeliveryStatus] | type[RunTrigger]) -> dict[str, Any]:
    return {"type": "string", "enum": [s.value for s in kind]}


_ADD = TOOLS["cron_add"].parameters["properties"]
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/me", "Who the token belongs to", handler=_me),
    Endpoint("GET", "/api/jobs", "List your jobs", tool="cron_list", handler=_jobs),
    Endpoint("POST", "/api/jobs", "Add a job", tool="cron_add"),
    Endpoint(
        "POST",
        "/api/jobs/preview",
        "Preview a new job, or a change to one (job), without saving or calling the model",
        tool="cron_preview",
    ),
    Endpoint("GET", "/api/jobs/{name}", "One job", tool="cron_get"),
    Endpoint("PATCH", "/api/jobs/{name}", "Change a job", tool="cron_update"),
    Endpoint("DELETE", "/api/jobs/{name}", "Remove a job and its history", tool="cron_remove"),
    Endpoint("POST", "/api/jobs/{name}/pause", "Pause a job", tool="cron_pause"),
    Endpoint("POST", "/api/jobs/{name}/resume", "Resume a job", tool="cron_resume"),
    Endpoint("POST", "/api/jobs/{name}/run", "Run a job now", tool="cron_run"),
    Endpoint(
        "POST", "/api/jobs/{name}/snooze", "Put off a job's next run once", tool="cron_snooze"
    ),
    Endpoint(
        "POST",
        "/api/jobs/{name}/backfill",
        "Run past occurrences that have no run",
        tool="cron_backfill",
    ),
    Endpoint(
        "POST",
        "/api/jobs/{job}/preview",
        "Preview a change to a job (the fields given over its current ones), saving nothing",
        tool="cron_preview",
        name="cron_preview_edit",
    ),
    Endpoint(
        "GET",
        "/api/jobs/{name}/runs",
        "A page of a job's runs, newest first",
        tool="cron_runs",
        query=("limit", "status", "before"),
    ),
    Endpoint(
        "GET",
        "/api/runs",
        "A page of the runs of the jobs you see, newest first (total: all pages)",
        params=(
            Param("limit", "query", _integer(1, MAX_PAGE), default=50),
            Param("status", "query", _enum(RunStatus)),
            Param("job", "query", {"type": "string", "description": "a job's name or id"}),
            Param("trigger", "query", _enum(RunTrigger)),
            Param("before", "query", {"type": "string", "description": "a page's next"}),
        ),
        handler=_runs,
    ),
    Endpoint(
        "POST",
        "/api/runs/{run_id}/retry",
        "Retry a failed run: its occurrence again, as the next attempt",
        tool="cron_retry",
    ),
    Endpoint(
        "GET",
        "/api/overview",
        "Counts, runs per hour, what runs now, failing and paused jobs",
        handler=_overview,
    ),
    Endpoint(
        "GET",
        "/api/timeline",
        "The fires of the next hours (total: all of them, listed or not)",
        params=(
            Param("hours", "query", _integer(1, 168), default=24),
            Param("limit", "query", _integer(1, MAX_TIMELINE), default=500),
        ),
        handler=_timeline,
    ),
    Endpoint(
        "GET",
        "/api/next",
        "Next fires of a cron expression",
        tool="cron_next",
        query=("expression", "timezone", "count"),
    ),
    Endpoint(
        "POST",
        "/api/preview",
        "Preview a schedule's next fires (saves nothing)",
        body={
            "type": "object",
            "properties": {k: _ADD[k] for k in PREVIEW_FIELDS},
            "additionalProperties": False,
        },
        handler=_preview,
    ),
    Endpoint("GET", "/api/usage", "Cost and tokens per job, owner and in total", handler=_usage),
    Endpoint(
        "GET",
        "/api/deliveries",
        "Deliveries by status (a user: those of their own jobs)",
        params=(
            Param("status", "query", _enum(DeliveryStatus), default="dead"),
            Param("limit", "query", _integer(1, MAX_DELIVERIES), default=100),
        ),
        handler=_deliveries,
    ),
    Endpoint(
        "POST",
        "/api/deliveries/{id}/retry",
        "Retry a dead delivery (a user: of their own jobs)",
        params=(Param("id", "path", _integer(1, 2**63 - 1), required=True),),
        handler=_retry,
    ),
)
