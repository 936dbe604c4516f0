"""The README's examples run as written."""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from pathlib import Path

import pytest

from tests.docstext import documentation

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = documentation()  # README.md and docs/*.md


async def run_example(tmp_path: Path, code: str) -> list[str]:
    """Run a README example as a script in ``tmp_path``; its output lines."""
    script = tmp_path / "example.py"
    script.write_text(code)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode().splitlines()


async def test_library_example_runs(tmp_path: Path) -> None:
    example = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    lines = await run_example(tmp_path, example)
    assert lines.count("[heartbeat] ok: ran: Check the build") == 2
    assert sum(line.startswith("success ") for line in lines) == 2


async def test_quickstart_cli_commands_run(tmp_path: Path) -> None:
    block = README.split("Add a job from the shell", 1)[1].split("```bash\n", 1)[1].split("```")[0]
    outputs = []
    for line in block.strip().splitlines():
        argv = shlex.split(line.split("  #")[0])
        assert argv[0] == ".venv/bin/starpod-cron"
        argv[0] = str(Path(sys.executable).with_name("starpod-cron"))
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, (line, err.decode())
        outputs.append(out.decode())
    assert "Job 'standup' added" in outputs[0]
    assert outputs[1].splitlines()[1].startswith("standup")  # seen in jobs list
    assert "Post the standup summary" in outputs[2]


async def test_tools_example_runs(tmp_path: Path) -> None:
    (example,) = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "call_tool" in b]
    lines = await run_example(tmp_path, example)
    assert lines[0] == "alice cron 0 9 * * 1-5" and lines[3] == "14 tools"
    assert lines[2] == "cron 0 11 * * 1-5 (UTC) 11:00"  # a schedule in words, understood
    assert lines[1].startswith("no scheduler is running") and "fires only once" in lines[1]


async def test_watcher_example_speaks_only_when_its_result_changes(tmp_path: Path) -> None:
    (example,) = [
        b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "NotifyPolicy.ON_CHANGE" in b
    ]
    lines = await run_example(tmp_path, example)
    assert lines[:2] == ["[service] the service is up", "[service] the service is down"]
    quiet = re.fullmatch(r"(\d+) runs kept quiet", lines[2])
    assert quiet and int(quiet.group(1)) >= 2 and len(lines) == 3, lines


def _bash_block_after(heading: str) -> list[str]:
    """The command lines of the first ```bash block after ``heading`` (comments dropped)."""
    block = README.split(heading, 1)[1].split("```bash\n", 1)[1].split("```")[0]
    return [line.split("  #")[0] for line in block.strip().splitlines()]


async def _shell(tmp_path: Path, line: str) -> str:
    """One README command line in ``tmp_path``, the venv's starpod-cron standing in."""
    line = line.replace(
        ".venv/bin/starpod-cron", str(Path(sys.executable).with_name("starpod-cron"))
    )
    proc = await asyncio.create_subprocess_shell(
        line, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, (line, err.decode())
    return out.decode()


async def test_memory_examples_run(tmp_path: Path) -> None:
    section = README.split("### Memory between runs", 1)[1].split("\n### ", 1)[0]
    (example,) = re.findall(r"```python\n(.*?)```", section, re.S)
    assert await run_example(tmp_path, example) == ["changed: 21 °C", "[SILENT]", "changed: 23 °C"]
    (script,) = re.findall(r"```sh\n(.*?)```", section, re.S)
    (tmp_path / "disk-watch.sh").write_text(script)
    outputs = [await _shell(tmp_path, line) for line in _bash_block_after("### Memory between")]
    first, second = outputs[2], outputs[3]
    assert re.search(r"success .*disk: \d+%", first), first
    assert "[SILENT]" in second, second


async def test_backfill_example_runs(tmp_path: Path) -> None:
    outputs = [await _shell(tmp_path, line) for line in _bash_block_after("### Backfill")]
    # the listed occurrences (not the count below them, which starts with "20" from 19:00)
    planned = [line for line in outputs[1].splitlines() if re.match(r"\d{4}-\d\d-\d\dT", line)]
    assert planned and f"{len(planned)} occurrence(s) would run" in outputs[1]
    assert f"{len(planned)} of {len(planned)} backfilled occurrence(s) succeeded" in outputs[2]
    assert "nothing to backfill" in outputs[3]
