"""The examples of the README's "Jobs that pause, start, end and stop by themselves" run as
written: the shell commands against a fresh store, and the library example."""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from pathlib import Path

import pytest

from tests.test_readme import README, run_example

pytestmark = pytest.mark.slow

SECTION = README.split("### Jobs that pause, start, end and stop by themselves", 1)[1]
SECTION = SECTION.split("\n### ", 1)[0]


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
    card = outputs[2]
    assert "pause after       3 failed runs in a row (0 so far)" in card
    assert "stale after       2h" in card and "to 2030-12-31 23:59:00 +01:00" in card
    assert "Job 'nightly' has been enabled" in outputs[3]


async def test_the_library_example_pauses_the_job(tmp_path: Path) -> None:
    (example,) = re.findall(r"```python\n(.*?)```", SECTION, re.S)
    reason, notice = await run_example(tmp_path, example)
    assert reason == "paused after 3 failed runs in a row"
    assert notice.startswith("'feed' paused after 3 failed runs in a row; last error: ")
    assert "the feed is down" in notice and notice.endswith("`starpod-cron jobs enable feed`")
