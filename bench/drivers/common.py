"""What every driver shares: argument parsing, percentiles, printing the result."""

from __future__ import annotations

import argparse
import atexit
import json
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--dir", default=None, help="where its files go (default: a fresh one)")
    parser.add_argument("--procs", type=int, default=1)
    a = parser.parse_args(argv)
    a.dir = a.dir or scratch_dir()
    return a


def scratch_dir() -> str:
    """A fresh directory removed at exit: a driver run by hand twice in one place would find
    its previous run's database (and its jobs' names taken)."""
    path = tempfile.mkdtemp(prefix="starpod-bench-")
    atexit.register(shutil.rmtree, path, True)
    return path


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def lateness_ms(late_secs: Sequence[float]) -> dict[str, float]:
    ms = [x * 1000 for x in late_secs]
    return {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": max(ms)}


def rss_mb() -> float:
    """Peak resident memory of this process image. (ru_maxrss would include the memory of the
    parent it was forked from before exec; VmHWM starts afresh with the new image.)"""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Start ``rss_mb``'s peak afresh from what is resident now (Linux: writing 5 to
    ``clear_refs`` resets VmHWM), so a row reads the peak of the workload, not of its setup.
    False where that is refused: the peak then counts from the start, and the row says so."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def wall() -> float:
    return time.time()
