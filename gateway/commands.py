"""The gateway's sub-commands for the ``starpod-cron`` CLI, registered through the entry-point
group ``starpod_cron.commands`` (the library never imports the gateway). Importing this module
is cheap: the gateway itself loads only when a command runs."""

from __future__ import annotations

import argparse
from typing import Any

from starpod_cron.config import AgentConfig

SERVE_EPILOG = """examples:
  starpod-cron serve                              ./agent.toml if present, else the defaults
  starpod-cron serve --config agent.toml --port 9000
  TELEGRAM_BOT_TOKEN=123:abc starpod-cron serve   with the Telegram bot

exit codes: 0 stopped by SIGINT/SIGTERM; 1 a runtime error at start-up (port in use, database
unreachable) or a failure that stopped the node (a server or the scheduler loop); 2 a
configuration error. Ctrl-C once stops gracefully, twice at once."""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``serve`` to the ``starpod-cron`` command line."""
    p = subparsers.add_parser(
        "serve",
        help="run the gateway: scheduler, WebSocket server, outbox, Telegram bot",
        parents=[common],
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", help="address to listen on (default: [gateway] host, 127.0.0.1)")
    p.add_argument(
        "--port", type=int, help="port to listen on (default: [gateway] port, 8765; 0: any)"
    )
    p.add_argument(
        "--http-port",
        type=int,
        help="port of the dashboard and HTTP API (default: [gateway] http_port, 8766; 0: any)",
    )
    p.set_defaults(run=_serve)

    p = subparsers.add_parser(
        "mcp",
        help="serve the scheduling tools to MCP clients (Claude Desktop, Claude Code, Cursor)",
        parents=[common],
        epilog=MCP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--user", metavar="ID", help="act for this user (default: every job)")
    p.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve streamable HTTP at /mcp instead of stdio ([gateway] tokens required)",
    )
    p.set_defaults(run=_mcp)


MCP_EPILOG = """examples:
  starpod-cron mcp                                stdio, for a client that starts it
  starpod-cron mcp --user alice                   only alice's jobs, with the user limits
  starpod-cron mcp --http 127.0.0.1:8767          streamable HTTP; clients send a token"""


def _mcp(args: argparse.Namespace, config: AgentConfig) -> int:
    from .mcp_server import run  # the mcp SDK loads only now

    return run(config, db_url=args.db, user=args.user, http=args.http)


def _serve(args: argparse.Namespace, config: AgentConfig) -> int:
    from .app import serve  # the gateway (websockets, telegram) loads only now

    return serve(
        config,
        db_url=args.db,
        host=args.host,
        port=args.port,
        http_port=args.http_port,
        verbose=args.verbose,
    )
