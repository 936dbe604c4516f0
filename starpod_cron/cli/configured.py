"""The configuration a command reads: ``--config FILE``, else ``./agent.toml`` if present,
else the defaults."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import AgentConfig


def command_config(args: argparse.Namespace) -> AgentConfig:
    from ..config import AgentConfig, load_config

    given = getattr(args, "config", None)
    if given:
        return load_config(given)
    default = Path("agent.toml")
    return load_config(default) if default.is_file() else AgentConfig()
