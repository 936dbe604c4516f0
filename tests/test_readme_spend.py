"""The examples of the README's "What it costs" run as written: the shell commands against a
fresh store, and the library example."""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from pathlib import Path

import pytest

from tests.test_readme import README, run_example

pytestmark = pytest.mark.slow

SECTION = README.split("## What it costs", 1)[1].split("\n## ", 1)[0]


async def test_the_shell_commands_run(tmp_path: Path) -> None:
    (block,) = re.findall(r"```bash\n(.*?)```", SECTION, re.S)
    outputs = []
    for line in block.strip().splitlines():
        argv = shlex.split(line.split("  #")[0])
        assert argv[0] == "starpod-cron"
        argv[0] = str(Path(sys.executable).with_name("starpod-cron"))
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, (line, err.decode())
        outputs.append(out.decode())
    assert "$0.5/day, 200,000 tokens/day" in outputs[2]
    assert "today $0.00, 0 tokens, 0 runs" in outputs[2]


async def test_the_library_example_runs_three_times_then_skips(tmp_path: Path) -> None:
    (example,) = re.findall(r"```python\n(.*?)```", SECTION, re.S)
    costs, error = await run_example(tmp_path, example)
    assert costs == "[0.002, 0.002, 0.002]"
    assert error == "budget: $0.006 of $0.005 today for job 'digest'"
