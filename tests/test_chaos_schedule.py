"""bench.chaos's fault schedule (pure: a function of the seed) and the checker's arithmetic;
the harness itself needs root and network namespaces (`python -m bench.chaos`, CI)."""

from __future__ import annotations

from collections import Counter

from bench.chaos.checker import _fires, disruptions
from bench.chaos.faults import KINDS, NODE_KINDS, schedule


def test_the_ci_schedule_has_at_least_ten_faults_of_four_kinds_and_is_the_same_every_time() -> None:
    faults = schedule(7, 60, 3)
    assert faults == schedule(7, 60, 3)
    assert len(faults) >= 10 and len(Counter(f.kind for f in faults)) >= 4
    assert schedule(8, 60, 3) != faults


def test_a_node_has_one_fault_at_a_time_and_one_node_stays_healthy() -> None:
    for seed in range(20):
        faults = schedule(seed, 600, 3)
        assert {f.kind for f in faults} == set(KINDS)
        for t in range(0, 600):
            busy = [f.node for f in faults if f.kind in NODE_KINDS and f.at <= t < f.end]
            assert len(busy) == len(set(busy)) and len(busy) <= 2, (seed, t, busy)
        skews = [f.params["skew_secs"] for f in faults if f.kind == "clock-skew"]
        assert all(0 < abs(s) <= 30 for s in skews)


def test_fires_in_a_window_and_who_may_have_sent_twice() -> None:
    assert list(_fires(1000, 2000, 3500, 12000)) == [5000, 7000, 9000, 11000]
    assert list(_fires(5000, 1000, 3000, 6000)) == [5000, 6000]
    faults = schedule(7, 60, 3)
    bound = disruptions(faults, 3)
    restarts = sum(f.kind == "pg-restart" for f in faults)
    node_faults = Counter(
        f.node for f in faults if f.kind in ("sigkill", "sigstop") or f.kind.startswith("part")
    )
    assert all(bound[i] == node_faults[i] + restarts for i in range(3))


def test_the_nodes_keep_every_run_the_checker_counts() -> None:
    """The default history (200 runs per job) prunes a per-second job's runs after 200 s: a
    10-minute schedule then counted 1,165 pruned occurrences as lost."""
    from bench.chaos.harness import SETTLED, agent_toml
    from starpod_cron.config import parse_config

    config = parse_config(agent_toml(None, "postgresql://h/db", "http://b", "http://h"))  # type: ignore[arg-type]
    assert config.store_settings.runs_keep_per_job >= 3600  # an hour of a per-second job
    # settling waits for every job whose every fire must run (queue: the long jobs too)
    assert "job_name" not in SETTLED
