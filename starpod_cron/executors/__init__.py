"""Built-in executors, chosen by ``[executor] kind`` in ``agent.toml``:

- ``openai``: a chat completion on any OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp)
- ``command``: a program with the prompt on stdin; stdout is the result
- ``python``: your own ``async def run(ctx) -> JobResult | str`` named ``module:function``
- ``echo``: returns the prompt (the demo default)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..logs import register_secret
from ..operations import JobOperations, UserLimits
from ..settings import StoreSettings
from ..store import CronStore, SessionStore
from .base import BuiltExecutor, execution_note, session_for, session_key, silent_note
from .command import CommandExecutor
from .echo import EchoExecutor
from .openai import OpenAIExecutor
from .python import PythonExecutor, load_target

if TYPE_CHECKING:
    from ..config import ExecutorConfig

log = logging.getLogger("starpod_cron.executors")

__all__ = [
    "BuiltExecutor",
    "CommandExecutor",
    "EchoExecutor",
    "OpenAIExecutor",
    "PythonExecutor",
    "build_executor",
    "execution_note",
    "load_target",
    "session_for",
    "session_key",
    "silent_note",
]


def build_executor(
    config: ExecutorConfig,
    store: SessionStore,
    base_dir: Path | None = None,
    *,
    limits: UserLimits | None = None,
) -> BuiltExecutor:
    """The executor ``config`` describes. Configuration errors (a ``python`` target that does
    not import, say) raise ConfigError here, at start-up, not at the first run. Things a user
    should know (no API key found) are in the executor's ``notes``. ``limits``: the per-user
    limits jobs made by scheduled runs obey (``allow_scheduling_from_runs``); give the
    configured ones (``bootstrap.user_limits(config)``), the library defaults otherwise;
    each job's ``tools`` says which tools its runs may call."""
    if config.kind == "openai":
        api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
        notes: tuple[str, ...] = ()
        if api_key:
            register_secret(api_key)
        elif config.api_key_env:  # api_key_env = "": a server that wants no key, no warning
            notes = (f"no API key in ${config.api_key_env}: calling {config.base_url} without one",)
        executor = OpenAIExecutor(
            store,
            base_url=config.base_url,
            model=config.model,
            api_key=api_key,
            system_prompt=config.system_prompt,
            request_timeout_secs=config.request_timeout_secs,
            max_history_messages=config.max_history_messages,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            run_tools=_run_tools(config, store, limits),
            silent_token=_settings(store).silent_token,
            escalate_token=_settings(store).escalate_token,
            all_tools_by_default=config.allow_scheduling_from_runs,
        )
        executor.notes = notes
        return executor
    if config.kind == "command":
        return CommandExecutor(
            store,
            config.argv,
            shell=config.shell,
            output_limit_bytes=config.output_limit_bytes,
            kill_grace_secs=config.kill_grace_secs,
        )
    if config.kind == "python":
        return PythonExecutor(store, config.target, base_dir)
    return EchoExecutor(store)


def _settings(store: SessionStore) -> StoreSettings:
    """The settings of the store that records the runs (its ``[cron] silent_token`` and
    ``escalate_token``), so the model is told the very tokens the run is judged by."""
    return store.settings if isinstance(store, CronStore) else StoreSettings()


def _run_tools(
    config: ExecutorConfig, store: SessionStore, limits: UserLimits | None
) -> JobOperations | None:
    """The operations behind the tools scheduled runs may call (their job's ``tools``, or all
    with ``allow_scheduling_from_runs``), under the owner's limits like every other front
    end. None without a full store (then runs get no tools)."""
    if not isinstance(store, CronStore):
        if config.allow_scheduling_from_runs:
            raise ConfigError("allow_scheduling_from_runs needs a full store, not a session store")
        return None
    return JobOperations(store, limits=limits)
