"""``starpod-cron mcp``: the scheduling tools (:mod:`starpod_cron.tools`) as an MCP server, for
Claude Desktop, Claude Code, Cursor and any other MCP client, with the official ``mcp`` SDK.

stdio by default (the client starts this process); ``--http HOST:PORT`` serves streamable
HTTP at ``/mcp`` and requires ``[gateway.tokens]``: each request is resolved to a user by the
rules every gateway port shares (:mod:`gateway.principals`: a bearer token, or the login
cookie with its tab secret), and the calls act for that user. Over stdio the calls act for
``--user ID`` (that user's jobs, with the per-user limits), or without it for the local
operator (every job, like the CLI).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from dataclasses import replace
from typing import Any

import mcp.types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from starlette.requests import HTTPConnection

from starpod_cron import StarpodCronError, declared
from starpod_cron.access import Principal
from starpod_cron.bootstrap import open_store, user_limits
from starpod_cron.config import AgentConfig, GatewayConfig
from starpod_cron.errors import ConfigError
from starpod_cron.executors import build_executor
from starpod_cron.logformat import say
from starpod_cron.maintenance import configured_jobs
from starpod_cron.nodes import package_version
from starpod_cron.operations import JobOperations
from starpod_cron.preview import PreviewSettings
from starpod_cron.scheduler import CronScheduler
from starpod_cron.tools import TOOLS, call_tool

from .app import StartupError, _listen_error
from .bodylimit import BodyLimit
from .http import listen
from .login import LoginSessions
from .origin import BrowserGuard, browser_policy, check_bind
from .principals import Principals, configured_user, load_tokens, principal_of

log = logging.getLogger("gateway.mcp")

MAX_BODY = 1024 * 1024
"""A JSON-RPC message over HTTP, in bytes: a prompt at its limit (64 KiB) fits, escaped."""

INSTRUCTIONS = (
    "Schedule prompts for the agent to run later, once or on a schedule, and inspect or "
    "change them. Times are read in the user's time zone unless a timezone is given. Use "
    "cron_next to check a cron expression before scheduling with it."
)


def build_server(ops: JobOperations, who: Principal | None) -> Server[Any]:
    """An MCP server whose tools act for ``who`` (stdio), or with None (over HTTP) for whom
    each request was resolved to (``request.user``, set by :class:`Principals`' middleware)."""

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
        caller = who if who is not None else _caller(getattr(ctx, "request", None))
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


def _caller(request: Any) -> Principal | None:
    """Whom the HTTP request was resolved to (None: not resolved, so refused)."""
    if not isinstance(request, HTTPConnection) or "user" not in request.scope:
        return None
    return principal_of(request)


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
    who = configured_user(user)
    async with open_store(config, db_url) as store:
        registry = configured_jobs(config, store)
        model = build_executor(config.executor, store, config.base_dir, limits=user_limits(config))
        executor = declared.with_declared(model, registry)
        scheduler = CronScheduler(store, executor, config.scheduler)  # for cron_run only
        ops = JobOperations(
            store,
            scheduler.run_now,
            user_limits(config),
            backfiller=scheduler.backfill,
            preview=PreviewSettings.of(config),
            destinations=config.destinations,
        )
        try:
            if address is None:
                server = build_server(ops, who)
                stop_on_signals(asyncio.current_task())
                async with stdio_server() as (read, write):
                    await server.run(read, write, server.create_initialization_options())
            else:
                g = config.gateway
                logins = LoginSessions(store, tokens or {}, g.session_ttl_secs)
                principals = Principals(tokens or {}, logins)
                await _serve_http(build_server(ops, None), *address, principals, g)
        finally:
            await scheduler.stop()
            await executor.aclose()


async def _serve_http(
    server: Server[Any], host: str, port: int, principals: Principals, gateway: GatewayConfig
) -> None:
    import uvicorn

    app = server.streamable_http_app(host=host)
    auth = principals.middleware()  # every request: someone, or its refusal (401/403/503)
    app.add_middleware(auth.cls, *auth.args, **auth.kwargs)
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
    settings = uvicorn.Config(app, log_level="warning", lifespan="on", log_config=None)
    say(f"starpod-cron MCP server on http://{host}:{port}/mcp (token auth)")
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

    setup_logging(False, config.logging.format)
    main = serve_mcp(config, db_url=db_url, user=user, http=http)
    return run_command(main, grace=config.scheduler.cancel_grace_secs)
