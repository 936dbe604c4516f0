"""Shell completion (bash, zsh, fish) through argcomplete, imported only when the shell asks
for completions (``_ARGCOMPLETE`` in the environment) or for the script to install, so that
every other start-up stays fast."""

from __future__ import annotations

import argparse
from typing import Any

MAX_NAMES = 1000
"""The most job names offered at once (a shell shows them all)."""


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request and exit (argcomplete's protocol)."""
    import argcomplete

    argcomplete.autocomplete(parser, always_complete_options=False)  # options after "-"


def shell_script(shell: str) -> str:
    """The script that makes ``shell`` complete ``starpod-cron`` (job names included)."""
    from argcomplete.shell_integration import shellcode

    script: str = shellcode(["starpod-cron"], shell=shell)
    return script


def job_names(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The names of the store's jobs starting with ``prefix`` (the store of ``--db`` /
    ``--config`` / ``$STARPOD_DB``; none when it cannot be read)."""
    from ..errors import StarpodCronError
    from ..runner import run

    try:
        names = run(_names(parsed_args))
    except (StarpodCronError, OSError) as exc:  # no names offered; argcomplete shows why
        from argcomplete.io import warn

        warn(f"starpod-cron: cannot list job names: {exc}")
        return []
    return [name for name in names if name.startswith(prefix)][:MAX_NAMES]


async def _names(parsed_args: argparse.Namespace) -> list[str]:
    from ..bootstrap import open_store, store_url
    from .configured import command_config

    config = command_config(parsed_args)
    url = store_url(config, getattr(parsed_args, "db", None))
    async with open_store(config, url, create=False) as store:
        return sorted(job.name for job in await store.list_jobs())
