"""Property-based fuzzing of the HTTP API from its own /openapi.json (schemathesis, bounded):
whatever a client sends, the answer is never a server error."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from tests.processes import CLI, environment, free_port

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": "Bearer root-token-0123456789"}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    cwd: Path = tmp_path_factory.mktemp("fuzz")
    (cwd / "agent.toml").write_text(
        '[executor]\nkind = "python"\ntarget = "tests.gateway.targets:run"\n'
        '[gateway.tokens]\n"root-token-0123456789" = { user_id = "root", admin = true }\n'
        '"alice-token-0123456789" = { user_id = "alice" }\n'
    )
    log = cwd / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [CLI, "serve", "--port", str(free_port()), "--http-port", "0"],
            cwd=cwd,
            env=environment(),
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 30
        while (
            match := re.search(rb"Dashboard and API on (http://[\d.]+:\d+)/", log.read_bytes())
        ) is None:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        base = match.group(1).decode()
        yield schemathesis.openapi.from_url(base + "/openapi.json")
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, log.read_text()[-2000:]
        assert "Traceback" not in log.read_text(), log.read_text()[-4000:]


@pytest.mark.timeout(120)
def test_no_request_gets_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    """Every operation, with bodies and parameters generated from its schema (positive) and
    against it (negative: wrong types, out of range), strings of any Unicode but lone
    surrogates (schemathesis cannot send those: tests/gateway/test_fuzz_frontends.py does), NUL
    included, answered without a 5xx. Bounded: a fixed seed, 15 examples per operation and
    mode."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=15,
                derandomize=True,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(mode))
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=ADMIN, checks=[not_a_server_error], timeout=10)

            check()
