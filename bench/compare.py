"""starpod-cron's own rows, this tree beside another checkout, interleaved in one run.

python -m bench.compare /path/to/old/checkout [--rounds 3] [--only burst_10k,pg_burst_1p]

Each round runs every step once on each tree, alternating which goes first, so a
noisy neighbour hits both sides alike. The drivers come from each tree (they take
the same arguments); what differs is the library they import. Prints, per row,
the medians and new / old, and flags a row more than 10% worse.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
from pathlib import Path
from typing import Any

from .run import ON_PG, PROVIDER, ROOT, ROWS, US, Step, fmt, run_driver

# lower is better unless the key is a rate; counts (lost, twice, runs, jobs) are checks
HIGHER_IS_BETTER = ("_per_s",)
CHECKS = ("lost", "twice", "recorded_twice", "not_recorded", "runs", "expected_runs", "jobs")
INFO = (
    *("in_flight_at_kill", "physical_limit_s", "plain_httpx_s", "refused_429", "db_mb"),
    *("share_min", "share_max", "failed_runs", "failure_notifications"),
)


def steps(steady_secs: float) -> list[Step]:
    return [
        Step("burst_1k", "burst", 1000, [US]),
        Step("burst_10k", "burst", 10_000, [US]),
        Step("burst_10k_c256", "burst256", 10_000, [US]),
        Step("burst_100k", "burst", 100_000, [US]),
        Step("steady", "steady", 1000, [US], seconds=steady_secs),
        Step("add", "add", 5000, [US]),
        Step("scale", "scale", 100_000, [US]),
        Step("crash", "crash", 10_000, [US]),
        Step("memory", "memory", 100_000, [US]),
        Step("catchup", "catchup", 1000, [US]),
        Step("saturated", "saturated", 5000, [US], driver=PROVIDER),
        Step("overhead", "overhead", 5000, [US], driver=PROVIDER),
        Step("pg_burst_1p", "burst", 10_000, [US], driver=ON_PG, procs=1),
        Step("pg_burst_3p", "burst", 10_000, [US], driver=ON_PG, procs=3),
        Step("pg_steady_3p", "steady", 1000, [US], seconds=steady_secs, driver=ON_PG, procs=3),
        Step("pg_crash", "crash", 10_000, [US], driver=ON_PG),
    ]


def run_in(tree: Path, step: Step) -> dict[str, Any]:
    """run_driver with `tree` as the working directory and first on the import path."""
    import bench.run as run

    saved_root, saved_path = run.ROOT, os.environ.get("PYTHONPATH")
    run.ROOT = tree
    os.environ["PYTHONPATH"] = str(tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        got = run_driver(US, step, None)
    finally:
        run.ROOT = saved_root
        if saved_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_path
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the driver's CPU (user + system, every process it started): unlike the wall-clock rows
    # it does not move with the disk's fsync latency or a neighbour's load
    spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**got, "cpu_s": round(spent, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare")
    parser.add_argument("old", type=Path, help="a checkout of the code before")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steady-secs", type=float, default=10)
    parser.add_argument("--only", default="", help="comma-separated step keys")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "compare.json")
    a = parser.parse_args(argv)
    trees = {"old": a.old.resolve(), "new": ROOT}
    chosen = [s for s in steps(a.steady_secs) if not a.only or s.key in a.only.split(",")]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        s.key: {"old": [], "new": []} for s in chosen
    }
    for round_no in range(a.rounds):
        for step in chosen:
            order = ["old", "new"] if (round_no + chosen.index(step)) % 2 == 0 else ["new", "old"]
            for side in order:
                got = run_in(trees[side], step)
                results[step.key][side].append(got)
                print(f"round {round_no + 1} {step.key} {side}: {json.dumps(got)}", file=sys.stderr)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=1))
    worse = 0
    print(f"{'row':<62} {'old':>10} {'new':>10} {'new/old':>8}")
    for step_key, key, label, unit, _ in ROWS:
        if step_key not in results:
            continue
        medians = {}
        for side in ("old", "new"):
            values = [r[key] for r in results[step_key][side] if r.get(key) is not None]
            medians[side] = statistics.median(values) if values else None
        old, new = medians["old"], medians["new"]
        ratio = new / old if old and new is not None else None
        flag = ""
        if ratio is not None and key not in CHECKS and key not in INFO:
            bad = ratio < 0.9 if key.endswith(HIGHER_IS_BETTER) else ratio > 1.1
            flag = "  WORSE" if bad else ""
            worse += bool(bad)
        if key in CHECKS and old != new:
            flag = "  DIFFERS"
        name = f"{label} ({unit})" if unit else label
        shown = f"{ratio:.2f}" if ratio is not None else ""
        print(f"{name:<62} {fmt(old):>10} {fmt(new):>10} {shown:>8}{flag}")
    for step_key, sides in results.items():
        cpu = {
            side: statistics.median(r["cpu_s"] for r in sides[side] if "cpu_s" in r)
            for side in ("old", "new")
            if any("cpu_s" in r for r in sides[side])
        }
        if len(cpu) == 2 and cpu["old"]:
            label = f"{step_key}: driver CPU, every process (s)"
            print(
                f"{label:<62} {cpu['old']:>10.2f} {cpu['new']:>10.2f} {cpu['new'] / cpu['old']:>8.2f}"
            )
    print(f"{worse} row(s) more than 10% worse")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
