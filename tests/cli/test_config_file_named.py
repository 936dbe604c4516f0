"""``--config FILE``: an error about what FILE declares names FILE, not ``agent.toml`` (issue
29: "``--config bad.toml jobs sync`` names the wrong file in its error")."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import CLI, snapshot

CLASH = """
[maintenance]
runs_days = 3

[[jobs]]
name = "maintenance-runs"
prompt = "p"
every = "1h"
"""


def test_a_clash_with_a_maintenance_job_names_the_file_given(
    cli: CLI, db: str, tmp_path: Path
) -> None:
    (tmp_path / "agent.toml").write_text("")  # present, and not the file read
    bad = tmp_path / "bad.toml"
    bad.write_text(CLASH)
    before = snapshot(db)
    synced = cli("--config", str(bad), "jobs", "sync")
    assert synced.code == 2
    assert f"in {bad} [[jobs]] maintenance-runs and in {bad} [maintenance]" in synced.err
    assert "agent.toml" not in synced.err and snapshot(db) == before


def test_a_maintenance_job_says_which_file_manages_it(cli: CLI, tmp_path: Path) -> None:
    config = tmp_path / "ops.toml"
    config.write_text("[maintenance]\noptimize = true\n")
    assert cli("--config", str(config), "jobs", "sync").code == 0
    refused = cli("jobs", "edit", "maintenance-optimize", "--every", "1h")
    assert refused.code == 2 and f"{config} [maintenance]" in refused.err, refused.err
