"""The echo and python executors, and building executors from config."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from starpod_cron import ConfigError, CronStore, JobContext, JobResult, SessionMode
from starpod_cron.config import ExecutorConfig, parse_config
from starpod_cron.executors import (
    CommandExecutor,
    EchoExecutor,
    OpenAIExecutor,
    PythonExecutor,
    build_executor,
)
from tests.conftest import START


def ctx(prompt: str = "ping") -> JobContext:
    return JobContext(
        prompt=prompt,
        session_mode=SessionMode.ISOLATED,
        job_name="j",
        job_id="id",
        user_id="u1",
        run_id="r",
        attempt=1,
        scheduled_for=START,
    )


async def sample_target(ctx: JobContext) -> JobResult:
    return JobResult(session_id="custom-session", summary=f"handled {ctx.prompt} for {ctx.user_id}")


async def text_target(ctx: JobContext) -> str:
    return ctx.prompt[::-1]


def blocking(ctx: JobContext) -> str:
    """A plain (sync) function: it may block, because it runs in a thread of its own."""
    time.sleep(0.05)
    return f"{ctx.prompt} from thread {threading.get_ident()}"


async def bad_return(ctx: JobContext) -> int:
    return 42


NOT_CALLABLE = 5


async def test_a_plain_function_runs_in_its_own_thread(store: CronStore) -> None:
    ex = PythonExecutor(store, "tests.executors.test_echo_python:blocking")
    assert "sync: runs in a thread" in ex.description
    loop_ticks = 0

    async def ticker() -> None:
        nonlocal loop_ticks
        while True:
            await asyncio.sleep(0.005)
            loop_ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        result = await ex(ctx("hello"))
    finally:
        ticking.cancel()
    text, _, thread = result.summary.partition(" from thread ")
    assert text == "hello" and int(thread) != threading.get_ident()
    assert loop_ticks >= 3  # the loop kept running while the function slept 50 ms


async def test_echo_returns_the_prompt(store: CronStore) -> None:
    ex = EchoExecutor(store)
    assert "demo" in ex.description
    result = await ex(ctx("Summarize the build"))
    assert result.summary == "Summarize the build" and result.session_id


async def test_python_target(store: CronStore) -> None:
    ex = PythonExecutor(store, "tests.executors.test_echo_python:sample_target")
    assert await ex(ctx()) == JobResult("custom-session", "handled ping for u1")
    text = PythonExecutor(store, "tests.executors.test_echo_python:text_target")
    assert (await text(ctx("abc"))).summary == "cba"
    bad = PythonExecutor(store, "tests.executors.test_echo_python:bad_return")
    with pytest.raises(TypeError, match="return a JobResult or a str"):
        await bad(ctx())


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nope", "must look like"),
        ("no_such_module_xyz:run", "cannot import 'no_such_module_xyz'"),
        ("tests.executors.test_echo_python:missing", "has no attribute 'missing'"),
        ("tests.executors.test_echo_python:NOT_CALLABLE", "is not callable"),
    ],
)
async def test_bad_python_target_fails_at_start(
    store: CronStore, target: str, message: str
) -> None:
    config = ExecutorConfig(kind="python", target=target)
    with pytest.raises(ConfigError, match=message):
        build_executor(config, store)


async def test_build_each_kind(store: CronStore) -> None:
    kinds = {
        "echo": (ExecutorConfig(), EchoExecutor),
        "openai": (ExecutorConfig(kind="openai"), OpenAIExecutor),
        "command": (ExecutorConfig(kind="command", argv=("cat",)), CommandExecutor),
        "python": (
            ExecutorConfig(kind="python", target="tests.executors.test_echo_python:text_target"),
            PythonExecutor,
        ),
    }
    for config, cls in kinds.values():
        ex = build_executor(config, store)
        assert isinstance(ex, cls)
        await ex.aclose()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[executor]\nkind = 'gpt'", "kind: must be one of"),
        ("[executor]\nkind = 'command'", "argv"),
        ("[executor]\nkind = 'python'", "target"),
        ("[executor]\nkind = 'openai'\nbase_url = 'localhost:11434'", "base_url"),
        ("[executor]\nkind = 'openai'\nmodel = ''", "model"),
        ("[executor]\nkind = 'command'\nargv = 'llm -m x'", "argv: expected a list"),
        ("[executor]\nkind = 'echo'\nmodel = 'x'", "model: applies to kind = 'openai', not 'echo'"),
        ("[executor]\nargv = ['x']", "argv: applies to kind = 'command', not 'echo'"),
        ("[executor]\napi_key = 'sk-123'", "unknown key 'api_key'"),
    ],
)
def test_bad_executor_config(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_executor_config_reads_every_key(tmp_path: Path) -> None:
    config = parse_config(
        "[executor]\nkind = 'command'\nargv = ['llm', '-m', 'gpt-4o-mini']\nshell = false\n"
        "output_limit_bytes = 2048\nkill_grace_secs = 1\n"
    )
    assert config.executor.argv == ("llm", "-m", "gpt-4o-mini")
    assert config.executor.output_limit_bytes == 2048 and "executor" in config.configured
