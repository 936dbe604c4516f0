"""starpod-cron beside APScheduler 3.11 on one burst, in interleaved rounds (issue 28).

python -m bench.versus [--rounds 3] [--n 2000] [--json PATH]

Each round runs starpod-cron's burst of ``n`` one-shots at ``max_concurrent_runs = 256`` and
APScheduler 3.11's burst of the same ``n`` jobs (``AsyncIOScheduler`` + ``SQLAlchemyJobStore``
on SQLite, its best documented configuration: ``bench/drivers/aps3.py``), alternating which
goes first, so a noisy neighbour hits both alike. Prints each round, the medians and
APScheduler / starpod-cron (the target: at least 15x on 2,000 jobs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from .run import APS3, US, Step, run_driver

TARGET = 15.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.versus")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None, help="write every round here")
    a = parser.parse_args(argv)
    steps = {
        US: Step("burst_c256", "burst256", a.n, [US]),
        APS3: Step("burst", "burst", a.n, [APS3]),
    }
    rounds: dict[str, list[dict[str, Any]]] = {US: [], APS3: []}
    for k in range(a.rounds):
        order = [US, APS3] if k % 2 == 0 else [APS3, US]
        for system in order:
            got = run_driver(system, steps[system], None)
            rounds[system].append(got)
            print(f"round {k + 1} {system}: {json.dumps(got)}", file=sys.stderr)
    spans = {
        system: [r["makespan_s"] for r in results if "makespan_s" in r]
        for system, results in rounds.items()
    }
    if not all(spans.values()):
        print("a side has no successful round: no ratio", file=sys.stderr)
        return 1
    ours, theirs = statistics.median(spans[US]), statistics.median(spans[APS3])
    ratio = theirs / ours
    print(f"{'burst of ' + str(a.n):<28} {'makespan (s), median':>22}")
    print(f"{US + ' (256 at a time)':<28} {ours:>22.3f}")
    print(f"{APS3:<28} {theirs:>22.3f}")
    print(f"APScheduler 3.11 / starpod-cron: {ratio:.1f}x (target >= {TARGET:.0f}x)")
    if a.json:
        a.json.write_text(json.dumps({"rounds": rounds, "ratio": ratio}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
