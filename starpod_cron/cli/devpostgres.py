"""``starpod-cron dev-postgres start|stop|url``: a local PostgreSQL for trying several gateways
on one machine (starpod_cron.devpg; ``pip install 'starpod-cron[devpg]'``). Registered through
the ``starpod_cron.commands`` entry points like ``serve``; the server's data lives under the
user's state directory unless ``--data-dir`` says otherwise."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..config import AgentConfig

EPILOG = """examples:
  starpod-cron dev-postgres start                 prints the URL (a unix socket)
  starpod-cron serve --db "$(starpod-cron dev-postgres url)" --port 0 --http-port 0
  starpod-cron dev-postgres start --listen 127.0.0.1 --port 5544
  starpod-cron dev-postgres stop"""


def default_data_dir() -> Path:
    """``$XDG_STATE_HOME/starpod-cron/postgres`` (``~/.local/state/...`` on Linux)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "starpod-cron" / "postgres"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "dev-postgres",
        help="a local PostgreSQL server for development (needs starpod-cron[devpg])",
        parents=[common],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=("start", "stop", "url"), help="what to do")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"the server's data directory (default {default_data_dir()})",
    )
    p.add_argument("--listen", metavar="ADDRESS", help="also listen on TCP at this address")
    p.add_argument("--port", type=int, default=0, help="the TCP port (default: a free one)")
    p.set_defaults(run=_dev_postgres)


def _dev_postgres(args: argparse.Namespace, config: AgentConfig) -> int:
    from ..devpg import DevPostgresError, LocalPostgres

    if not 0 <= args.port <= 65535:
        print("starpod-cron: error: --port must be 0-65535", file=sys.stderr)
        return 2
    try:
        server = LocalPostgres(
            args.data_dir or default_data_dir(), listen=args.listen, port=args.port
        )
        if args.action == "start":
            print(server.start())
        elif args.action == "stop":
            server.stop()
        elif server.running():
            print(server.url)
        else:
            print(
                f"starpod-cron: error: no server runs over {server.data_dir}: "
                "starpod-cron dev-postgres start",
                file=sys.stderr,
            )
            return 1
    except DevPostgresError as exc:
        print(f"starpod-cron: error: {exc}", file=sys.stderr)
        return 1
    return 0
