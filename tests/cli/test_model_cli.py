"""The per-job model options on the command line (issue 25): ``--model``, ``--fallback-model``
(repeatable), ``--tool``/``--no-tools``..., shown by ``jobs show --json``; ``jobs add`` and
``jobs edit --dry-run`` print the preview and save nothing."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import CLI, snapshot

OPENAI = """
[executor]
kind = "openai"
model = "house"
api_key_env = ""
"""


def test_model_options_are_saved_shown_and_previewed_without_saving(
    cli: CLI, db: str, tmp_path: Path
) -> None:
    (tmp_path / "agent.toml").write_text(OPENAI)  # the cli fixture runs in tmp_path
    added = cli(
        "--json", "jobs", "add", "digest", "Summarize", "--every", "1h",
        "--model", "gpt-4o-mini", "--max-tokens", "300", "--temperature", "0.3",
        "--system-prompt", "Be terse.", "--fallback-model", "a", "--fallback-model", "b",
        "--escalate-to", "gpt-4o", "--tool", "cron_list",
    )  # fmt: skip
    assert added.code == 0, added.err
    shown = cli("--json", "jobs", "show", "digest").json["data"]
    job = shown.get("job", shown)
    assert (job["model"], job["max_tokens"], job["temperature"]) == ("gpt-4o-mini", 300, 0.3)
    assert (job["fallback_models"], job["escalate_to"]) == (["a", "b"], "gpt-4o")
    assert (job["system_prompt"], job["tools"]) == ("Be terse.", ["cron_list"])

    before = snapshot(db)
    dry = cli("jobs", "edit", "digest", "--model", "other", "--no-tools", "--dry-run")
    assert dry.code == 0, dry.err
    assert "Model: other" in dry.out and "Tools allowed: none" in dry.out
    assert "Fallback models: a, b" in dry.out and "Be terse." in dry.out
    assert "Per run:" in dry.out and "cost unknown" in dry.out  # no [pricing] for it
    assert snapshot(db) == before

    cli("jobs", "edit", "digest", "--no-tools", "--no-fallback-models")
    job = cli("--json", "jobs", "show", "digest").json["data"]
    job = job.get("job", job)
    assert (job["tools"], job["fallback_models"]) == ([], [])


def test_an_unknown_tool_is_refused_with_the_known_ones(cli: CLI, db: str) -> None:
    bad = cli("jobs", "add", "x", "p", "--every", "1h", "--tool", "cron_nuke")
    assert bad.code != 0 and "cron_nuke" in bad.err and "cron_add" in bad.err
    assert snapshot(db) == ([], [])


def test_add_dry_run_prints_the_preview(cli: CLI, db: str) -> None:
    dry = cli("jobs", "add", "x", "Check it", "--every", "1h", "--dry-run")
    assert dry.code == 0, dry.err
    assert "Messages a run sends" in dry.out and "[user] Check it" in dry.out
    assert "Per month: 720 runs" in dry.out
    assert snapshot(db) == ([], [])
