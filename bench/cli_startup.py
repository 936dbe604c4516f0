"""CLI start-up against the interpreter's own (issue 28): ``python -m bench.cli_startup``.

Each round runs, one after the other, ``python -c pass``, ``starpod-cron --version``,
``starpod-cron jobs list`` with no database file, on an existing store without jobs and on a
store of 100,000 jobs (as a pipe: the plain table); the medians of the rounds give the ratios
(the machine is shared, so the commands of a round run under the same load), with bytecode
caches as installed. Targets: ``--version`` <= 3x ``python -c pass``, the empty ``jobs list``
<= 5x (both cases), ``jobs list`` of 100,000 jobs <= 1.5 s.

Options: ``--no-large`` (only the quick commands), ``--rounds N`` (default 15), ``--jobs N`` (default 100000), ``--dir PATH`` (where the
stores are made; default a temporary directory, kept between runs with ``--dir``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""Bytecode cached, as in any installed copy (pip compiles on install): the warm-up run writes
the caches; without them every start compiles each module from source."""
TARGETS = {"--version": 3.0, "jobs list (no database)": 5.0, "jobs list (empty)": 5.0}
LARGE_TARGET_SECS = 1.5


async def make_store(path: Path, jobs: int) -> None:
    """A store of ``jobs`` jobs, a third each cron, interval and one-shot, some described."""
    from starpod_cron import CronStore, JobSpec, Schedule

    at = datetime.now(UTC) + timedelta(days=30)
    schedules = [Schedule.cron("0 9 * * 1-5"), Schedule.interval(30 * 60_000)]
    async with CronStore.open(str(path)) as store:
        batch = 5000
        for start in range(0, jobs, batch):
            specs = [
                JobSpec(
                    f"job-{i:06d}",
                    f"prompt {i}",
                    schedules[i % 3] if i % 3 < 2 else Schedule.one_shot(at),
                    description="the nightly report" if i % 10 == 0 else None,
                )
                for i in range(start, min(start + batch, jobs))
            ]
            await store.add_jobs(specs)


def _time(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``argv``."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli_startup")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--no-large", action="store_true", help="skip the large store")
    options = parser.parse_args()
    where = options.dir or Path(tempfile.mkdtemp(prefix="cli-startup-"))
    where.mkdir(parents=True, exist_ok=True)
    empty, large = where / "empty.db", where / f"jobs-{options.jobs}.db"
    if not empty.exists():
        asyncio.run(make_store(empty, 0))
    if not large.exists() and not options.no_large:
        asyncio.run(make_store(large, options.jobs))
    script = Path(sys.executable).with_name("starpod-cron")  # the installed command
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "starpod_cron"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "--version": [*cli, "--version"],
        "jobs list (no database)": [*cli, "--db", str(where / "missing.db"), "jobs", "list"],
        "jobs list (empty)": [*cli, "--db", str(empty), "jobs", "list"],
        f"jobs list ({options.jobs:,} jobs)": [*cli, "--db", str(large), "jobs", "list"],
    }
    if options.no_large:
        del commands[f"jobs list ({options.jobs:,} jobs)"]
    for argv in commands.values():  # warm the page cache and the bytecode
        _time(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(options.rounds):
        for name, argv in commands.items():
            wall, used = _time(argv)
            times[name].append(wall)
            cpu[name].append(used)
    base = statistics.median(times["python -c pass"])
    base_cpu = statistics.median(cpu["python -c pass"])
    print(f"{'command':28} {'wall':>10} {'ratio':>7} {'cpu':>10} {'ratio':>7}  target (wall)")
    ok = True
    for name, samples in times.items():
        median = statistics.median(samples)
        used = statistics.median(cpu[name])
        target = TARGETS.get(name)
        if name not in TARGETS and name != "python -c pass":
            verdict = (
                f"<= {LARGE_TARGET_SECS} s: {'met' if median <= LARGE_TARGET_SECS else 'NOT met'}"
            )
            ok &= median <= LARGE_TARGET_SECS
        elif target is not None:
            verdict = f"<= {target:g}x: {'met' if median / base <= target else 'NOT met'}"
            ok &= median / base <= target
        else:
            verdict = ""
        print(
            f"{name:28} {median * 1000:8.1f}ms {median / base:6.2f}x "
            f"{used * 1000:8.1f}ms {used / base_cpu:6.2f}x  {verdict}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
