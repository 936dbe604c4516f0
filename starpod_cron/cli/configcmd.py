"""``starpod-cron config``: the effective configuration, each key's value and where it came
from (``default``, ``file agent.toml``, ``env STARPOD_...``, ``flag --db``); secrets ``***``."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..config import AgentConfig
from ..configkeys import config_keys, plain
from ..envconfig import load_effective
from .render import Output, emit

SECRET = "***"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "config",
        help="the effective configuration and where each value came from",
        parents=[common],
        description="Every key of agent.toml's fixed sections: its value (from the file, "
        "STARPOD_<SECTION>_<KEY>, a flag, or the default) and its source.",
    )
    p.set_defaults(run=run)


def effective(args: argparse.Namespace) -> Output:
    flags = {("logging", "format"): ("--log-format", getattr(args, "log_format", None))}
    found = load_effective(args.config, os.environ, db=args.db, flags=flags)
    data: dict[str, dict[str, Any]] = {}
    rows: list[list[str]] = []
    for key in config_keys():
        value = plain(key.value(found.config))
        source = found.source(key)
        if key.secret and (value or source.startswith("env")):
            value = SECRET
        data.setdefault(key.section, {})[key.name] = {"value": value, "source": source}
        rows.append([f"{key.section}.{key.name}", json.dumps(value, ensure_ascii=False), source])
    out = Output(data, "table", "Configuration", ["key", "value", "source"], rows)
    out.header = f"config file: {found.file or 'none'}"
    return out


def run(args: argparse.Namespace, config: AgentConfig) -> int:
    """The ``run`` of the command (``config``: already loaded, checked, by main)."""
    emit(effective(args), as_json=args.json)
    return 0
