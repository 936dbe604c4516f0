"""The configuration a command reads: ``--config FILE`` ($STARPOD_CONFIG, else ``./agent.toml``
if present, else the defaults), then the environment (``STARPOD_<SECTION>_<KEY>``), then the
flags."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import AgentConfig


def command_config(args: argparse.Namespace) -> AgentConfig:
    """The file (--config, $STARPOD_CONFIG or ./agent.toml), the environment, the flags."""
    from ..envconfig import load_effective

    flags = {("logging", "format"): ("--log-format", getattr(args, "log_format", None))}
    found = load_effective(getattr(args, "config", None), os.environ, db=args.db, flags=flags)
    return found.config
