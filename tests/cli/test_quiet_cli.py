"""What the CLI shows of silent and undelivered runs: `jobs history` marks them with the
reason, `jobs show` and `status` count them per job (the echo executor answers each prompt,
so a prompt of "[SILENT]" is a silent answer)."""

from __future__ import annotations

from tests.cli.conftest import CLI


def test_history_show_and_status_tell_silent_and_undelivered_runs(cli: CLI) -> None:
    assert cli("jobs", "add", "beat", "[SILENT]", "--every", "1h").code == 0
    added = cli("jobs", "add", "same", "all quiet", "--every", "1h", "--notify", "on_change")
    assert added.code == 0, added.err
    added = cli("jobs", "add", "capped", "hi", "--every", "1h", "--max-runs", "5")
    assert added.code == 0, added.err
    for _ in range(2):
        assert cli("jobs", "run", "beat", "same").code == 0
    lines = cli("jobs", "history").out.splitlines()
    beat = [line for line in lines if line.startswith("beat")]
    same = [line for line in lines if line.startswith("same")]
    assert len(beat) == 2 and all("success (silent)" in line for line in beat)
    assert sum("(not delivered: unchanged (notify=on_change))" in line for line in same) == 1
    entries = cli("--json", "jobs", "history", "--job", "same").json["data"]["entries"]
    assert [(e["suppressed"], e["suppressed_reason"]) for e in entries] == [
        (True, "unchanged (notify=on_change)"),  # newest first
        (False, None),
    ]
    card = cli("jobs", "show", "beat").out
    assert "2 silent" in card
    shown = cli("--json", "jobs", "show", "same").json["data"]
    assert shown["counts"] == {
        "runs": 2,
        "silent_runs": 0,
        "suppressed_runs": 1,
        "consecutive_failures": 0,
        "paused_reason": None,
        "remaining_runs": None,
        "end_at": None,
    }
    assert shown["notify"] == "on_change" and shown["suppressed_runs"] == 1
    status = cli("status").out
    (row,) = [line for line in status.splitlines() if line.startswith("beat")]
    assert "2 silent" in row
    (row,) = [line for line in status.splitlines() if line.startswith("capped")]
    assert "5 run(s) left" in row
    jobs = {j["name"]: j for j in cli("--json", "status").json["data"]["jobs"]}
    assert jobs["beat"]["counts"]["silent_runs"] == 2
    assert jobs["capped"]["counts"]["remaining_runs"] == 5
