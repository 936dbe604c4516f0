"""``starpod-cron mcp``: the scheduling tools (:mod:`starpod_cron.tools`) as an MCP server, for
Claude Desktop, Claude Code, Cursor and any other MCP client, with the official ``mcp`` SDK.

stdio by default (the client starts this process); ``--http HOST:PORT`` serves streamable
HTTP at ``/mcp`` and requires a ``[gateway.tokens]`` token (``Authorization: Bearer``), whose
user the calls act for. Over stdio the calls act for ``--user ID`` (that user's jobs, with the
per-user limits), or without it for the local operator (every job, like the CLI).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from dataclasses import replace
from typing import Any

import mcp.types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from starpod_cron import StarpodCronError, declared
from starpod_cron.access import LOCAL_ADMIN, Principal
from starpod_cron.bootstrap import open_store, user_limits
from starpod_cron.config import AgentConfig, GatewayConfig
from starpod_cron.errors import ConfigError
from starpod_cron.executors import build_executor
from starpod_cron.maintenance import configured_jobs
from starpod_cron.nodes import package_version
from starpod_cron.operations import JobOperations
from starpod_cron.scheduler import CronScheduler
from starpod_cron.tools import TOOLS, call_tool

from .app import StartupError, _listen_error
from .bodylimit import BodyLimit
from .http import listen
from .origin import BrowserGuard, browser_policy, check_bind
from .ws import load_tokens

log = logging.getLogger("gateway.mcp")

MAX_BODY = 1024 * 1024
"""A JSON-RPC message over HTTP, in bytes: a prompt at its limit (64 KiB) fits, escaped."""

INSTRUCTIONS = (
    "Schedule prompts for the agent to run later, once or on a schedule, and inspect or "
    "change them. Times are read in the user's time zone unless a timezone is given. Use "
    "cron_next to check a cron expression before scheduling with it."
)


def build_server(
    ops: JobOperations, who: Principal, tokens: dict[str, Principal] | None = None
) -> Server[Any]:
    """An MCP server whose tools act for ``who`` (stdio), or, over HTTP with ``tokens``, for
    the user of the request's bearer token."""

    async def list_tools(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=t.name, description=t.description, input_schema=t.parameters)
                for t in TOOLS.values()
            ]
        )

    async def call(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        request = getattr(ctx, "request", None)  # the HTTP request, over HTTP
        caller = who if tokens is None else _bearer(request, tokens)
        if caller is None:
            return _error("invalid or missing token")
        try:
            data = await call_tool(ops, params.name, params.arguments or {}, user=caller)
        except StarpodCronError as exc:  # bad input, unknown job, a limit: the CLI's words
            return _error(str(exc))
        text = json.dumps(data, ensure_ascii=False)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content=data
        )

    return Server(
        "starpod-cron",
        version=package_version(),
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call,
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


def _bearer(request: Any, tokens: dict[str, Principal]) -> Principal | None:
    """The user of the request's ``Authorization: Bearer`` token, if it is one of ours."""
    header = request.headers.get("authorization", "") if request is not None else ""
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    return tokens.get(token) if token else None


def parse_http(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ConfigError(f"--http needs HOST:PORT, e.g. 127.0.0.1:8767, not {value!r}")
    return host, int(port)


async def serve_mcp(
    config: AgentConfig, *, db_url: str | None, user: str | None, http: str | None
) -> None:
    tokens = load_tokens(config.gateway) if http else None
    if http and not tokens:
        raise ConfigError(
            "--http needs [gateway] tokens (or $STARPOD_GATEWAY_TOKENS): each "
            "MCP client sends one as Authorization: Bearer <token>"
        )
    address = parse_http(http) if http else None
    if address is not None:
        check_bind(replace(config.gateway, host=address[0]))  # the browser rule needs it
    who = Principal(user) if user else LOCAL_ADMIN
    async with open_store(config, db_url) as store:
        registry = configured_jobs(config, store)
        model = build_executor(config.executor, store, config.base_dir, limits=user_limits(config))
        executor = declared.with_declared(model, registry)
        scheduler = CronScheduler(store, executor, config.scheduler)  # for cron_run only
        ops = JobOperations(store, scheduler.run_now, user_limits(config))
        server = build_server(ops, who, tokens)
        try:
            if address is None:
                stop_on_signals(asyncio.current_task())
                async with stdio_server() as (read, write):
                    await server.run(read, write, server.create_initialization_options())
            else:
                await _serve_http(server, *address, tokens or {}, config.gateway)
        finally:
            await scheduler.stop()
            await executor.aclose()


async def _serve_http(
    server: Server[Any], host: str, port: int, tokens: dict[str, Principal], gateway: GatewayConfig
) -> None:
    import uvicorn
    from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response

    app = server.streamable_http_app(host=host)

    async def require_token(request: Request, call_next: RequestResponseEndpoint) -> Response:
        if _bearer(request, tokens) is None:
            log.warning("refused an MCP request from %s: bad or missing token", request.client)
            return PlainTextResponse("invalid or missing token\n", status_code=401)
        return await call_next(request)

    app.add_middleware(BaseHTTPMiddleware, dispatch=require_token)
    app.add_middleware(BrowserGuard, policy=browser_policy(replace(gateway, host=host), None))
    app.add_middleware(BodyLimit, default=MAX_BODY)  # added last: the outermost
    try:
        sock = listen(host, port)
    except OSError as exc:  # one line and exit 1, as `serve` says it
        raise StartupError(_listen_error(host, port, exc)) from None
    port = int(sock.getsockname()[1])  # the one chosen, for port 0
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal to whatever handler
    # was there before: make that one harmless, so a clean stop exits 0
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    settings = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(
        f"starpod-cron MCP server on http://{host}:{port}/mcp (token auth)",
        file=sys.stderr,
        flush=True,
    )
    await uvicorn.Server(settings).serve(sockets=[sock])


def stop_on_signals(task: asyncio.Task[Any] | None) -> None:
    """SIGINT/SIGTERM end the stdio server cleanly (the client may also just close stdin)."""
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)


def run(config: AgentConfig, *, db_url: str | None, user: str | None, http: str | None) -> int:
    """Exit codes: 0 the client closed the connection (or SIGINT/SIGTERM); 2 a configuration
    error; 1 anything else that stopped it, as one line on stderr. Logs go to stderr (stdout
    is the protocol), with secrets redacted."""
    from .app import run_command, setup_logging

    setup_logging(verbose=False)
    main = serve_mcp(config, db_url=db_url, user=user, http=http)
    return run_command(main, grace=config.scheduler.cancel_grace_secs)
