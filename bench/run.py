"""Run every workload on every system, print one table, write JSON and a PNG chart.

python -m bench            # full run: medians of 3 runs, results in bench/results/
python -m bench --quick    # single runs, smaller sizes, under 3 minutes (bench/results/quick/)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .peers import ensure_aps4

ROOT = Path(__file__).resolve().parent.parent
US, APS3, APS4 = "starpod-cron", "APScheduler 3.11", "APScheduler 4.0a6"
DRIVERS = {US: "bench.drivers.starpod", APS3: "bench.drivers.aps3", APS4: "bench.drivers.aps4"}
ON_PG = "bench.drivers.starpod_pg"  # starpod-cron on PostgreSQL ($STARPOD_PG_DSN), 1-3 processes
PROVIDER = "bench.drivers.provider"  # the openai executor against a provider stand-in
RATELIMITED = "bench.drivers.ratelimited"  # ... against one announcing its limits in headers
FLOOR = "bench.drivers.floor"  # the irreducible writes alone: plain sqlite3 / asyncpg
ALLOC = "bench.drivers.alloc"  # tasks and memory blocks per run
PEERS = [APS3, APS4]


@dataclass
class Step:
    key: str
    workload: str
    n: int
    systems: list[str]
    seconds: float = 0
    timeout: float = 600
    driver: str | None = None  # instead of the system's own driver
    procs: int = 1
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def plan(quick: bool) -> list[Step]:
    everyone = [US, APS3, APS4]
    if quick:
        return [
            Step("burst_1k", "burst", 1000, everyone, timeout=120),
            Step("burst_10k", "burst", 10_000, [US], timeout=120),
            Step("burst_10k_c256", "burst256", 10_000, [US], timeout=120),
            Step("burst_2k_c256", "burst256", 2000, [US], timeout=120),
            *floors(quick=True),
            Step("steady", "steady", 1000, [US, APS3], seconds=5, timeout=120),
            Step("add", "add", 1000, everyone, timeout=120),
            Step("scale", "scale", 100_000, [US], timeout=300),
            Step("crash", "crash", 10_000, [US], timeout=300),
            Step("memory", "memory", 20_000, [US], timeout=300),
            Step("catchup", "catchup", 1000, [US], timeout=300),
            Step("saturated", "saturated", 1000, [US], driver=PROVIDER, timeout=300),
            Step("overhead", "overhead", 1000, [US], driver=PROVIDER, timeout=300),
            Step("ratelimited", "ratelimited", 1000, [US], driver=RATELIMITED, timeout=300),
            *on_postgres(steady_secs=5),
        ]
    return [
        Step("burst_1k", "burst", 1000, everyone),
        Step("burst_10k", "burst", 10_000, everyone, timeout=420),
        Step("burst_10k_c256", "burst256", 10_000, [US]),
        Step("burst_100k", "burst", 100_000, [US]),
        Step("burst_2k_c256", "burst256", 2000, [US]),
        *floors(quick=False),
        Step("steady", "steady", 1000, everyone, seconds=20),
        Step("add", "add", 5000, everyone),
        Step("scale", "scale", 1_000_000, [US], timeout=1800),
        Step("crash", "crash", 10_000, [US]),
        Step("memory", "memory", 100_000, [US]),
        Step("catchup", "catchup", 1000, [US]),
        Step("saturated", "saturated", 5000, [US], driver=PROVIDER),
        Step("overhead", "overhead", 5000, [US], driver=PROVIDER),
        Step("ratelimited", "ratelimited", 5000, [US], driver=RATELIMITED),
        *on_postgres(steady_secs=20),
    ]


def floors(quick: bool) -> list[Step]:
    """The floor of each burst size (the same run, so each burst row shows its ratio to it),
    the floor's writes on our own schema (time-ordered and random ids), tasks and blocks per
    run."""
    sizes = [("10k", 10_000)] + ([] if quick else [("100k", 100_000)])
    return [
        Step("floor_1k", "floor", 1000, [US], driver=FLOOR),
        Step("floor_2k", "floor", 2000, [US], driver=FLOOR),
        *(Step(f"floor_{k}", "floor", n, [US], driver=FLOOR) for k, n in sizes),
        *(Step(f"floor_wide_{k}", "floor_wide", n, [US], driver=FLOOR) for k, n in sizes),
        *(
            Step(f"floor_wide_random_{k}", "floor_wide_random", n, [US], driver=FLOOR)
            for k, n in sizes
        ),
        Step("floor_split_10k", "floor_split", 10_000, [US], driver=FLOOR),
        Step("floor_pg_10k", "floor_pg", 10_000, [US], driver=FLOOR),
        Step("alloc_10k", "alloc", 10_000, [US], driver=ALLOC, timeout=900),
        Step("alloc_10k_c256", "alloc256", 10_000, [US], driver=ALLOC),
    ]


FLOOR_OF = {
    "burst_1k": "floor_1k",
    "burst_2k_c256": "floor_2k",
    "burst_10k": "floor_10k",
    "burst_10k_c256": "floor_10k",
    "burst_100k": "floor_100k",
    "pg_burst_1p": "floor_pg_10k",
    "pg_burst_3p": "floor_pg_10k",
}
"""The floor each burst's makespan is compared with (the Floor column)."""


GROUPS = {
    "floor": [
        *("burst_1k", "burst_2k_c256", "burst_10k", "burst_10k_c256", "burst_100k"),
        *("floor_1k", "floor_2k", "floor_10k", "floor_100k", "floor_wide_10k"),
        *("floor_wide_100k", "floor_wide_random_10k", "floor_wide_random_100k", "floor_split_10k"),
        *("floor_pg_10k", "pg_burst_1p", "pg_burst_3p", "alloc_10k", "alloc_10k_c256"),
    ]
}
"""Names ``--only`` accepts for several steps: ``--only floor`` is every burst and its floor."""


def on_postgres(steady_secs: float) -> list[Step]:
    return [
        Step("pg_burst_1p", "burst", 10_000, [US], driver=ON_PG, procs=1),
        Step("pg_burst_3p", "burst", 10_000, [US], driver=ON_PG, procs=3),
        Step("pg_steady_3p", "steady", 1000, [US], seconds=steady_secs, driver=ON_PG, procs=3),
        Step("pg_crash", "crash", 10_000, [US], driver=ON_PG),
    ]


def run_driver(system: str, step: Step, aps4_dir: Path | None) -> dict[str, Any]:
    # bytecode cached, as in any installed copy (pip compiles on install): without it every
    # driver compiles each module it imports from source, charged to its CPU and, for a module
    # imported lazily, to the loop stall of the first run that needs it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if system == APS4 and aps4_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(aps4_dir), str(ROOT)])
    with tempfile.TemporaryDirectory(prefix="starpod-bench-") as tmp:
        argv = [
            sys.executable,
            "-m",
            step.driver or DRIVERS[system],
            step.workload,
            "--n",
            str(step.n),
            "--seconds",
            str(step.seconds),
            "--dir",
            tmp,
            *(["--procs", str(step.procs)] if step.driver else []),
        ]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=step.timeout
            )
        except subprocess.TimeoutExpired:
            return {
                "error": f"did not finish within {step.timeout:.0f}s",
                "timed_out_after_s": step.timeout,
            }
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"error": f"exit {done.returncode}: {tail[0]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(results: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in results if r.get(key) is not None and "error" not in r]
    return statistics.median(values) if values else None


ROWS: list[tuple[str, str, str, str, str]] = [
    # step, metric key, label, unit, target for this project
    ("burst_1k", "makespan_s", "Burst 1,000: makespan", "s", ""),
    ("burst_1k", "p50_ms", "Burst 1,000: lateness p50", "ms", ""),
    ("burst_1k", "p99_ms", "Burst 1,000: lateness p99", "ms", ""),
    ("burst_1k", "max_ms", "Burst 1,000: lateness max", "ms", ""),
    ("burst_10k", "makespan_s", "Burst 10,000: makespan", "s", "<= 1 s"),
    ("burst_10k", "p50_ms", "Burst 10,000: lateness p50", "ms", ""),
    ("burst_10k", "p99_ms", "Burst 10,000: lateness p99", "ms", ""),
    ("burst_10k", "max_ms", "Burst 10,000: lateness max", "ms", ""),
    (
        "burst_10k_c256",
        "makespan_s",
        "Burst 10,000, max_concurrent_runs 256: makespan",
        "s",
        "<= 6x floor",
    ),
    ("burst_10k_c256", "p50_ms", "Burst 10,000, max_concurrent_runs 256: p50", "ms", ""),
    ("burst_10k_c256", "p99_ms", "Burst 10,000, max_concurrent_runs 256: p99", "ms", "<= 2x p50"),
    ("burst_10k", "cpu_per_job_us", "Burst 10,000: CPU per job", "us", ""),
    ("burst_2k_c256", "makespan_s", "Burst 2,000, max_concurrent_runs 256: makespan", "s", ""),
    ("burst_100k", "makespan_s", "Burst 100,000: makespan", "s", "<= 8x floor"),
    ("burst_100k", "cpu_per_job_us", "Burst 100,000: CPU per job", "us", ""),
    ("burst_100k", "scheduler_rss_mb", "Burst 100,000: scheduler RSS, burst", "MB", "<= 150 MB"),
    ("burst_100k", "setup_rss_mb", "Burst 100,000: RSS adding the jobs (one add_jobs)", "MB", ""),
    ("burst_100k", "recorded_twice", "Burst 100,000: runs recorded twice", "", "0"),
    ("burst_100k", "not_recorded", "Burst 100,000: runs not recorded", "", "0"),
    ("steady", "p50_ms", "Steady 1,000 x 1 s: lateness p50", "ms", ""),
    ("steady", "p99_ms", "Steady 1,000 x 1 s: lateness p99", "ms", "<= 20 ms"),
    ("steady", "max_ms", "Steady 1,000 x 1 s: lateness max", "ms", ""),
    ("steady", "runs", "Steady: runs done", "", "= expected"),
    ("steady", "expected_runs", "Steady: runs expected", "", ""),
    ("add", "one_by_one_per_s", "Add one by one", "jobs/s", ""),
    ("add", "batch_per_s", "Add in one batch", "jobs/s", ">= 20,000/s"),
    ("scale", "jobs", "Scale: jobs in store", "", ""),
    ("scale", "claim_ms", "Scale: claim 5 due jobs", "ms", "<= 5 ms"),
    ("scale", "scheduler_rss_mb", "Scale: scheduler RSS", "MB", "<= 80 MB"),
    ("scale", "db_mb", "Scale: database size", "MB", ""),
    ("scale", "jobs_show_s", "Scale: `starpod-cron jobs show`", "s", ""),
    ("crash", "lost", "Crash 10,000: occurrences lost", "", "0"),
    ("crash", "twice", "Crash 10,000: occurrences run twice", "", "0"),
    ("crash", "in_flight_at_kill", "Crash 10,000: runs in flight at SIGKILL", "", ""),
    ("crash", "recover_s", "Crash 10,000: restart to all done", "s", ""),
    ("memory", "rss_growth_mb", "Memory: RSS growth, 10k -> 100k runs", "MB", "flat (<= 5 MB)"),
    ("memory", "rss_at_end_mb", "Memory: RSS after 100k runs", "MB", ""),
    ("catchup", "max_stall_ms", "Catch-up 1,000 x 1 s after 30 min: loop stall", "ms", "<= 50 ms"),
    ("catchup", "catch_up_s", "Catch-up 1,000 x 1 s after 30 min: time", "s", ""),
    (
        "saturated",
        "makespan_s",
        "Provider admits 100 at once, 5,000 due: makespan",
        "s",
        "<= 11.5 s",
    ),
    ("saturated", "physical_limit_s", "Provider admits 100 at once: physical limit", "s", ""),
    ("saturated", "failed_runs", "Provider admits 100 at once: failed runs", "", "0"),
    ("saturated", "failure_notifications", "Provider admits 100: failure notifications", "", "0"),
    ("saturated", "refused_429", "Provider admits 100 at once: 429s answered", "", ""),
    ("overhead", "ours_s", "5,000 calls at concurrency 100: through the scheduler", "s", ""),
    ("overhead", "plain_httpx_s", "5,000 calls at concurrency 100: plain httpx loop", "s", ""),
    ("overhead", "ratio", "5,000 calls: scheduler / plain httpx", "", "<= 1.2"),
    ("ratelimited", "refused_429", "50 req/s + 200k tokens/min in headers: 429s", "", "0"),
    ("ratelimited", "makespan_s", "50 req/s + 200k tokens/min, 5,000 due: makespan", "s", ""),
    ("ratelimited", "physical_limit_s", "50 req/s + 200k tokens/min: physical limit", "s", ""),
    ("ratelimited", "over_physical", "50 req/s + 200k tokens/min: over the limit", "", "<= 0.15"),
    ("ratelimited", "failed_runs", "50 req/s + 200k tokens/min: failed runs", "", "0"),
    ("ratelimited", "held_runs", "50 req/s + 200k tokens/min: held runs", "", "0"),
    ("pg_burst_1p", "makespan_s", "PostgreSQL burst 10,000, 1 process: makespan", "s", ""),
    ("pg_burst_1p", "p50_ms", "PostgreSQL burst 10,000, 1 process: lateness p50", "ms", ""),
    ("pg_burst_1p", "p99_ms", "PostgreSQL burst 10,000, 1 process: lateness p99", "ms", ""),
    ("pg_burst_3p", "makespan_s", "PostgreSQL burst 10,000, 3 processes: makespan", "s", "<= 2 s"),
    ("pg_burst_3p", "p50_ms", "PostgreSQL burst 10,000, 3 processes: lateness p50", "ms", ""),
    ("pg_burst_3p", "p99_ms", "PostgreSQL burst 10,000, 3 processes: lateness p99", "ms", ""),
    ("pg_burst_3p", "share_min", "PostgreSQL burst, 3 processes: smallest share", "", ""),
    ("pg_burst_3p", "share_max", "PostgreSQL burst, 3 processes: largest share", "", ""),
    ("pg_steady_3p", "p50_ms", "PostgreSQL steady 1,000 x 1 s, 3 processes: p50", "ms", ""),
    ("pg_steady_3p", "p99_ms", "PostgreSQL steady 1,000 x 1 s, 3 processes: p99", "ms", "<= 50 ms"),
    ("pg_steady_3p", "runs", "PostgreSQL steady: runs done", "", "= expected"),
    ("pg_steady_3p", "expected_runs", "PostgreSQL steady: runs expected", "", ""),
    ("pg_steady_3p", "share_min", "PostgreSQL steady, 3 processes: smallest share", "", ""),
    ("pg_crash", "lost", "PostgreSQL crash 10,000: occurrences lost", "", "0"),
    ("pg_crash", "twice", "PostgreSQL crash 10,000: occurrences run twice", "", "0"),
    ("pg_crash", "in_flight_at_kill", "PostgreSQL crash 10,000: runs in flight", "", ""),
    ("pg_crash", "recover_s", "PostgreSQL crash 10,000: restart to all done", "s", ""),
    ("floor_1k", "makespan_s", "Floor 1,000 (plain sqlite3): makespan", "s", ""),
    ("floor_2k", "makespan_s", "Floor 2,000 (plain sqlite3): makespan", "s", ""),
    ("floor_10k", "makespan_s", "Floor 10,000 (plain sqlite3): makespan", "s", ""),
    ("floor_10k", "cpu_s", "Floor 10,000 (plain sqlite3): CPU", "s", ""),
    ("floor_100k", "makespan_s", "Floor 100,000 (plain sqlite3): makespan", "s", ""),
    ("floor_wide_10k", "makespan_s", "Floor 10,000 on our schema: makespan", "s", ""),
    ("floor_wide_random_10k", "makespan_s", "... ids random within a ms: makespan", "s", ""),
    ("floor_wide_100k", "makespan_s", "Floor 100,000 on our schema: makespan", "s", ""),
    ("floor_wide_random_100k", "makespan_s", "... ids random within a ms: makespan", "s", ""),
    ("floor_split_10k", "makespan_s", "Floor 10,000, jobs split hot/cold: makespan", "s", ""),
    ("floor_pg_10k", "makespan_s", "Floor 10,000 on PostgreSQL (asyncpg): makespan", "s", ""),
    ("alloc_10k", "tasks_per_run", "Burst 10,000: asyncio tasks per run", "", "half of main"),
    ("alloc_10k", "blocks_per_run", "Burst 10,000: memory blocks per run in flight", "", "half"),
    ("alloc_10k", "peak_kb_per_run", "Burst 10,000: traced peak per run", "KB", ""),
    ("alloc_10k_c256", "tasks_per_run", "Burst 10,000 @256: asyncio tasks per run", "", "half"),
]

RATIOS: list[tuple[str, str, str, str]] = [
    # label, numerator "step.metric", denominator "step.metric", target
    (
        "Burst 10,000: @256 / unlimited",
        "burst_10k_c256.makespan_s",
        "burst_10k.makespan_s",
        "<= 1.2",
    ),
    (
        "Burst 100,000 / 10,000: CPU per job",
        "burst_100k.cpu_per_job_us",
        "burst_10k.cpu_per_job_us",
        "<= 1.2",
    ),
    ("Floor 10,000: our schema / plain", "floor_wide_10k.makespan_s", "floor_10k.makespan_s", ""),
    (
        "Floor 100,000: our schema / plain",
        "floor_wide_100k.makespan_s",
        "floor_100k.makespan_s",
        "",
    ),
    (
        "Floor 10,000: jobs split hot/cold / our schema",
        "floor_split_10k.makespan_s",
        "floor_wide_10k.makespan_s",
        "",
    ),
    (
        "Floor 10,000 on our schema: random / ordered ids",
        "floor_wide_random_10k.makespan_s",
        "floor_wide_10k.makespan_s",
        "",
    ),
    (
        "Floor 100,000 on our schema: random / ordered ids",
        "floor_wide_random_100k.makespan_s",
        "floor_wide_100k.makespan_s",
        "",
    ),
    (
        "PostgreSQL burst 10,000: 1 process / 3 processes",
        "pg_burst_1p.makespan_s",
        "pg_burst_3p.makespan_s",
        ">= 1.8",
    ),
]
"""Rows that divide two figures of the same run (the machine is shared: ratios, not times)."""


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(steps: dict[str, Step]) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    columns = ["Metric", US, APS3, APS4, "Floor", f"{US} / floor", f"{US} / {APS3}"]
    columns += [f"{US} / {APS4}", "Target"]
    rows: list[list[str]] = []
    figures: dict[str, Any] = {}
    for step_key, key, label, unit, target in ROWS:
        step = steps.get(step_key)
        if step is None:
            continue
        values = {s: median(step.results.get(s, []), key) for s in (US, APS3, APS4)}
        figures[f"{step_key}.{key}"] = values
        shown = {s: fmt(values[s]) for s in (US, APS3, APS4)}
        for system in (US, APS3, APS4):
            runs = step.results.get(system, [])
            if runs and all("timed_out_after_s" in r for r in runs) and key == "makespan_s":
                shown[system] = f"> {runs[0]['timed_out_after_s']:.0f}"
        ratios = []
        for peer in PEERS:
            ours, theirs = values[US], values[peer]
            ratios.append(ratio(ours, theirs))
        floor = _floor(steps, step_key) if key == "makespan_s" else None
        if floor is not None:
            figures[f"{step_key}.floor_ratio"] = {US: values[US] / floor if values[US] else None}
        name = f"{label} ({unit})" if unit else label
        over_floor = [fmt(floor) if floor else "", ratio(values[US], floor)]
        rows.append([name, *(shown[s] for s in (US, APS3, APS4)), *over_floor, *ratios, target])
    for label, top, bottom, target in RATIOS:
        a, b = (figures.get(k, {}).get(US) for k in (top, bottom))
        if a is None or b is None:
            continue
        figures[label] = {US: a / b if b else None}
        rows.append([label, ratio(a, b), "", "", "", "", "", "", target])
    return columns, rows, figures


def ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.3g}x" if ours is not None and theirs else ""


def _floor(steps: dict[str, Step], step_key: str) -> float | None:
    """The floor's makespan for the burst of ``step_key`` (run in the same run), if any."""
    floor = steps.get(FLOOR_OF.get(step_key, ""))
    return median(floor.results.get(US, []), "makespan_s") if floor else None


def render(columns: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, rows)])


def chart(figures: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        (
            "Burst makespan (s, lower is better)",
            [("1,000", "burst_1k.makespan_s"), ("10,000", "burst_10k.makespan_s")],
        ),
        (
            "Lateness p99 (ms, lower is better)",
            [
                ("burst 1k", "burst_1k.p99_ms"),
                ("burst 10k", "burst_10k.p99_ms"),
                ("steady", "steady.p99_ms"),
            ],
        ),
        (
            "Jobs added per second (higher is better)",
            [("one by one", "add.one_by_one_per_s"), ("batch", "add.batch_per_s")],
        ),
        (
            "Burst 10,000 makespan (s): SQLite, PostgreSQL",
            [
                ("SQLite", "burst_10k.makespan_s"),
                ("PG 1 proc", "pg_burst_1p.makespan_s"),
                ("PG 3 procs", "pg_burst_3p.makespan_s"),
            ],
        ),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(20, 4.5))
    systems = [US, APS3, APS4]
    for ax, (panel_title, groups) in zip(axes, panels, strict=True):
        width = 0.8 / len(systems)
        for i, system in enumerate(systems):
            xs, ys = [], []
            for g, (_, key) in enumerate(groups):
                value = figures.get(key, {}).get(system)
                if value:
                    xs.append(g + i * width)
                    ys.append(value)
            ax.bar(xs, ys, width, label=system)
        ax.set_xticks([g + width for g in range(len(groups))], [name for name, _ in groups])
        ax.set_yscale("log")
        ax.set_title(panel_title, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="single runs, smaller sizes")
    parser.add_argument("--repeat", type=int, default=None, help="runs per figure (default 3)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated steps to run again (e.g. saturated,overhead); the other steps' "
        "results are kept from the last results.json",
    )
    parser.add_argument(
        "--system",
        action="append",
        choices=[US, APS3, APS4],
        help="run only this system's rows (repeatable); the other systems' results are kept "
        "from the last results.json (e.g. --only floor --system starpod-cron)",
    )
    args = parser.parse_args(argv)
    systems = set(args.system or ())
    repeats = args.repeat or (1 if args.quick else 3)
    out = args.out or ROOT / "bench" / "results" / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    aps4_dir = ensure_aps4()
    began = time.monotonic()
    steps = {s.key: s for s in plan(args.quick)}
    names = [name for name in args.only.split(",") if name]
    only = {
        s for name in names for s in GROUPS.get(name, [name]) if name not in GROUPS or s in steps
    }
    unknown = only - set(steps)
    if unknown:
        parser.error(f"unknown step(s): {', '.join(sorted(unknown))}; known: {', '.join(steps)}")
    if only or systems:
        kept = json.loads((out / "results.json").read_text())["runs"]
        for key, step in steps.items():
            if only and key not in only:
                step.results = kept.get(key, {})
            elif systems:
                step.results = {s: r for s, r in kept.get(key, {}).items() if s not in systems}
    for step in steps.values():
        if only and step.key not in only:
            continue
        for system in step.systems:
            if systems and system not in systems:
                continue
            for attempt in range(repeats):
                result = run_driver(system, step, aps4_dir)
                step.results.setdefault(system, []).append(result)
                status = result.get("error") or ", ".join(
                    f"{k}={fmt(v)}"
                    for k, v in result.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                )
                print(
                    f"[{time.monotonic() - began:6.0f}s] {step.key} {system} "
                    f"#{attempt + 1}: {status}",
                    file=sys.stderr,
                    flush=True,
                )
    machine = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick (single runs, smaller sizes)" if args.quick else f"median of {repeats}",
    }
    columns, rows, figures = table(steps)
    text = render(columns, rows)
    configs = {
        f"{k} {s}": next((r["config"] for r in v if "config" in r), "")
        for k, st in steps.items()
        for s, v in st.results.items()
    }
    header = (
        f"starpod-cron benchmarks - {machine['cores']} cores, Python {machine['python']}, "
        f"{machine['mode']}, {machine['date']}"
    )
    print(header)
    print(text)
    print("\nConfigurations:")
    for system in (US, APS3, APS4):
        config = next((c for k, c in configs.items() if k.endswith(system) and c), "")
        print(f"  {system}: {config}")
    (out / "results.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "figures": figures,
                "configs": configs,
                "runs": {k: s.results for k, s in steps.items()},
            },
            indent=2,
        )
    )
    (out / "results.md").write_text(f"{header}\n\n```\n{text}\n```\n")
    chart(figures, out / "results.png", header)
    print(
        f"\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'results.png'} "
        f"in {time.monotonic() - began:.0f}s",
        file=sys.stderr,
    )
    return 0
