"""Budgets and costs in the CLI: the --budget-* options of jobs add/edit (checked, nothing
written when refused), the cost column of jobs history, the budget and spend rows of jobs
show, and the spend line of status."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import CLI, snapshot

CONFIG = """
[executor]
kind = "python"
target = "tests.gateway.test_usage:priced"
[pricing]
"m" = { input_per_mtok = 1.0, output_per_mtok = 2.0 }
"""


def test_budgets_are_set_shown_and_checked(cli: CLI, db: str, tmp_path: Path) -> None:
    (tmp_path / "agent.toml").write_text(CONFIG)
    added = cli(
        "jobs", "add", "digest", "p", "--every", "1h", "--budget-usd-per-day", "0.005",
        "--budget-usd-per-month", "0.1", "--budget-tokens-per-day", "200000",
    )  # fmt: skip
    assert added.code == 0, added.err
    card = cli("--json", "jobs", "show", "digest").json["data"]
    assert (card["budget_usd_per_day"], card["budget_tokens_per_day"]) == (0.005, 200000)
    for _ in range(2):
        ran = cli("jobs", "run", "digest")
        assert ran.code == 0, ran.err
    history = cli("jobs", "history").out
    assert "COST" in history and history.count("$0.0020") == 2
    entries = cli("--json", "jobs", "history").json["data"]["entries"]
    assert [e["cost_usd"] for e in entries] == [0.002, 0.002]
    shown = cli("jobs", "show", "digest").out
    assert "$0.005/day, $0.1/month, 200,000 tokens/day" in shown
    assert "today $0.004, 3,000 tokens, 2 runs" in shown
    card = cli("--json", "jobs", "show", "digest").json["data"]
    assert card["spent"]["month"]["cost_usd"] == 0.004 and card["spent"]["total"]["runs"] == 2
    status = cli("status")
    assert "Spent: today $0.004, 3,000 tokens, 2 runs" in status.out
    assert cli("--json", "status").json["data"]["spent"]["today"]["tokens"] == 3000
    before = snapshot(db)
    for flag, value in [
        ("--budget-usd-per-day", "-1"),
        ("--budget-usd-per-month", "2000000"),
        ("--budget-tokens-per-day", "1.5"),
    ]:
        refused = cli("jobs", "edit", "digest", flag, value)
        assert refused.code == 2, (flag, refused.out)
        name = flag.removeprefix("--")
        assert name in refused.err or name.replace("-", "_") in refused.err, refused.err
    assert snapshot(db) == before
    cleared = cli("jobs", "edit", "digest", "--budget-usd-per-day", "1")
    assert cleared.code == 0, cleared.err
