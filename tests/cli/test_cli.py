"""The CLI against a real temporary database: human and --json forms, and every error path."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from starpod_cron import CronStore
from starpod_cron.cli.main import build_parser, main
from tests.cli.conftest import CLI, snapshot

ROOT = Path(__file__).resolve().parents[2]


def test_add_then_list(cli: CLI) -> None:
    empty = cli("jobs", "list")
    assert empty.code == 0 and "No jobs" in empty.out
    added = cli(
        "jobs",
        "add",
        "morning",
        "Summarize overnight alerts",
        "--cron",
        "0 9 * * 1-5",
        "--tz",
        "Europe/Rome",
    )
    assert added.code == 0 and "Job 'morning' added (At 09:00, Monday through Friday)" in added.out
    cli("jobs", "add", "tick", "check the build", "--every", "30m")
    listed = cli("jobs", "list")
    lines = listed.out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "SCHEDULE",
        "IN",
        "WORDS",
        "ENABLED",
        "NEXT",
        "RUN",
        "(UTC)",
        "LAST",
        "STATUS",
    ]  # one zone per time column, named in its header: the jobs' zones differ, so [cron]'s
    assert lines[1].startswith("morning") and "At 09:00, Monday through Friday" in lines[1]
    assert " 08:00:00 (in " in lines[1] and "+01:00" not in lines[1]
    rome = cli("jobs", "list", "--tz", "Europe/Rome").out.splitlines()
    assert "NEXT RUN (Europe/Rome)" in rome[0] and " 09:00:00 (in " in rome[1]
    assert lines[2].startswith("tick") and "Every 30 minutes" in lines[2] and "(in 30m)" in lines[2]
    assert "\x1b[" not in listed.out  # plain when stdout is not a terminal

    doc = cli("--json", "jobs", "list").json
    assert doc["artifact_type"] == "table" and doc["title"] == "Scheduled Jobs"
    assert doc["data"]["total"] == 2
    morning = doc["data"]["jobs"][0]
    assert morning["schedule"]["expression"] == "0 9 * * 1-5" and morning["enabled"] is True
    assert morning["schedule"]["in_words"] == "At 09:00, Monday through Friday"
    assert morning["next_run"].endswith("+01:00") and morning["timezone"] == "Europe/Rome"


def test_list_hides_disabled_unless_all_and_filters_by_user(cli: CLI) -> None:
    cli("jobs", "add", "a", "p", "--every", "1h", "--user", "u1")
    cli("jobs", "add", "b", "p", "--every", "1h", "--user", "u2")
    cli("jobs", "disable", "b")
    assert [j["name"] for j in cli("--json", "jobs", "list").json["data"]["jobs"]] == ["a"]
    assert [j["name"] for j in cli("--json", "jobs", "list", "--all").json["data"]["jobs"]] == [
        "a",
        "b",
    ]
    only = cli("--json", "jobs", "list", "--all", "--user", "u2").json["data"]["jobs"]
    assert [j["name"] for j in only] == ["b"] and only[0]["enabled"] is False


def test_show(cli: CLI) -> None:
    cli(
        "jobs",
        "add",
        "report",
        "Write the weekly report",
        "--cron",
        "0 0 9 * * MON",
        "--tz",
        "America/New_York",
        "--retries",
        "5",
        "--timeout",
        "1h30m",
        "--session",
        "main",
        "--user",
        "u7",
        "--misfire",
        "skip",
    )
    card = cli("--json", "jobs", "show", "report").json
    assert card["artifact_type"] == "presentation_card" and card["title"] == "Job: report"
    d = card["data"]
    assert d["schedule"]["expression"] == "0 0 9 * * MON"
    assert d["schedule"]["in_words"] == "At 09:00, only on Monday"
    assert len(d["next_runs"]) == 5 and d["next_run"] == d["next_runs"][0]
    assert all(t.endswith(("-05:00", "-04:00")) for t in d["next_runs"])
    assert (d["max_retries"], d["timeout_secs"], d["session_mode"], d["user_id"]) == (
        5,
        5400,
        "main",
        "u7",
    )
    assert d["misfire_policy"] == "skip" and d["run_count"] == 0
    assert d["last_run"] is None and d["last_status"] is None and d["last_error"] is None
    human = cli("jobs", "show", "report").out
    assert re.search(r"^prompt +Write the weekly report$", human, re.MULTILINE)
    assert human.count("(in ") >= 5


@pytest.mark.parametrize(
    ("args", "check"),
    [
        (
            ["--at", "2030-12-01 09:00", "--tz", "Europe/Rome"],
            lambda d: d["next_run"] == "2030-12-01T09:00:00+01:00",
        ),
        (["--at", "2030-12-01T09:00:00Z"], lambda d: d["next_run"] == "2030-12-01T09:00:00+00:00"),
        (
            ["--at", "tomorrow 9:00", "--tz", "Asia/Tokyo"],
            lambda d: d["next_run"].endswith("T09:00:00+09:00"),
        ),
        (
            ["--in", "20m", "--delete-after-run"],
            lambda d: d["delete_after_run"] is True and d["schedule"]["kind"] == "one_shot",
        ),
        (["--every", "90s"], lambda d: d["schedule"]["in_words"] == "Every 90 seconds"),
        (["--cron", "@daily"], lambda d: d["schedule"]["in_words"] == "At 00:00"),
    ],
)
def test_add_schedule_forms(cli: CLI, args: list[str], check: object) -> None:
    assert cli("jobs", "add", "j", "p", *args).code == 0
    data = cli("--json", "jobs", "show", "j").json["data"]
    assert check(data), data  # type: ignore[operator]


BAD_ADDS = [
    (["--cron", "61 * * * *"], "invalid cron expression '61 * * * *'"),
    (["--every", "2x"], "invalid duration '2x'"),
    (["--every", "500ms"], "too short"),
    (["--at", "yesterday"], "invalid time 'yesterday'"),
    (["--at", "2020-01-01 09:00"], "in the past"),
    (["--in", "0s"], "longer than zero"),
    (["--every", "1h", "--tz", "Mars/Base"], "unknown time zone 'Mars/Base'"),
    (["--every", "1h", "--retries", "-1"], "--retries: must be from 0 to 100"),
    (["--every", "1h", "--timeout", "forever"], "invalid duration 'forever'"),
    (["--every", "1h", "--cron", "* * * * *"], "not allowed with argument"),
    ([], "one of the arguments --cron --every --at --in --when is required"),
    (["--every", "1h", "--session", "shared"], "invalid choice: 'shared'"),
    (["--every", "١٢m"], "invalid duration '١٢m'"),  # Unicode digits are not read as 12
    (["--every", "1h", "--retries", "²"], "expected a whole number, got '²'"),
    (["--every", "1h", "--max-instances", "١٢"], "expected a whole number"),
    (["--at", "tomorrow ٩:00"], "invalid time"),
    (["--every", "1h", "--description", "nul\x00"], "the description argument contains a NUL"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ADDS)
def test_bad_add_exits_2_with_one_line_and_writes_nothing(
    cli: CLI, db: str, args: list[str], message: str
) -> None:
    cli("jobs", "add", "existing", "p", "--every", "1h")
    before = snapshot(db)
    result = cli("jobs", "add", "new", "p", *args)
    assert result.code == 2 and result.out == ""
    assert message in result.err and result.err.count("\n") == 1, result.err
    assert snapshot(db) == before


def test_duplicate_name_and_unknown_jobs_exit_2(cli: CLI, db: str) -> None:
    cli("jobs", "add", "a", "p", "--every", "1h")
    before = snapshot(db)
    for args in (
        ["jobs", "add", "a", "q", "--every", "2h"],
        ["jobs", "show", "nope"],
        ["jobs", "enable", "a", "nope"],
        ["jobs", "disable", "a", "nope"],
        ["jobs", "remove", "nope", "--yes"],
        ["jobs", "run", "a", "nope"],
        ["jobs", "history", "--job", "nope"],
        ["jobs", "edit", "nope", "--every", "1h"],
        ["jobs", "edit", "a"],
        ["jobs", "run"],
        ["jobs", "run", "a", "--all"],
        ["--tz", "Nowhere/X", "jobs", "list"],
    ):
        result = cli(*args)
        assert result.code == 2, (args, result)
        assert result.err.startswith("starpod-cron") and result.err.count("\n") == 1, result.err
        assert snapshot(db) == before, args
    assert "no job named 'nope'" in cli("jobs", "enable", "a", "nope").err


def test_edit(cli: CLI) -> None:
    cli("jobs", "add", "j", "old prompt", "--every", "1h")
    result = cli(
        "jobs",
        "edit",
        "j",
        "--cron",
        "0 9 * * *",
        "--prompt",
        "new prompt",
        "--retries",
        "0",
        "--no-delete-after-run",
        "--rename",
        "k",
    )
    assert result.code == 0 and "Job 'k' updated" in result.out
    d = cli("--json", "jobs", "show", "k").json["data"]
    assert (d["schedule"]["expression"], d["prompt"], d["max_retries"]) == (
        "0 9 * * *",
        "new prompt",
        0,
    )
    assert cli("jobs", "show", "j").code == 2


def test_enable_disable_many(cli: CLI) -> None:
    for name in ("a", "b"):
        cli("jobs", "add", name, "p", "--every", "1h")
    off = cli("--json", "jobs", "disable", "a", "b").json
    assert off["artifact_type"] == "text" and off["title"] == "Job Disabled"
    assert off["data"]["enabled"] is False and off["data"]["jobs"] == ["a", "b"]
    on = cli("jobs", "enable", "a")
    assert on.out.strip() == "Job 'a' has been enabled"
    listed = cli("--json", "jobs", "list", "--all").json["data"]["jobs"]
    assert [(j["name"], j["enabled"]) for j in listed] == [("a", True), ("b", False)]


def test_remove_needs_yes_when_not_interactive(cli: CLI, db: str) -> None:
    cli("jobs", "add", "a", "p", "--every", "1h")
    cli("jobs", "add", "b", "p", "--every", "1h")
    refused = cli("jobs", "remove", "a")
    assert refused.code == 2 and "without --yes" in refused.err
    removed = cli("--json", "jobs", "remove", "a", "b", "--yes").json
    assert removed["data"]["removed"] == ["a", "b"]
    assert snapshot(db)[0] == []


def write_config(tmp_path: Path) -> str:
    path = tmp_path / "agent.toml"
    path.write_text('[executor]\nkind = "python"\ntarget = "tests.cli.targets:run"\n')
    return str(path)


def test_run_through_the_configured_executor(cli: CLI, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cli("jobs", "add", "good", "summarize", "--every", "1h")
    cli("jobs", "add", "bad", "please fail", "--every", "1h")
    ok = cli("--config", config, "--json", "jobs", "run", "good")
    assert ok.code == 0, ok.err
    doc = ok.json
    assert doc["title"] == "Job Execution Results" and doc["artifact_type"] == "table"
    (entry,) = doc["data"]["jobs_run"]
    assert entry["job_name"] == "good" and entry["status"] == "success"
    assert entry["result"] == "done: summarize" and entry["error"] is None
    assert isinstance(entry["duration_ms"], int)
    assert (doc["data"]["total"], doc["data"]["succeeded"], doc["data"]["failed"]) == (1, 1, 0)

    both = cli("--config", config, "jobs", "run", "--all", "--sequential")
    assert both.code == 1  # a job run failed
    assert "[2/2]" in both.err and "1 of 2 succeeded" in both.out
    history = cli("--json", "jobs", "history", "--job", "bad").json["data"]["entries"]
    assert history[0]["status"] == "failed" and "model refused bad" in history[0]["error"]
    assert history[0]["trigger"] == "manual"


def test_run_without_executor_config_uses_echo_and_says_so(cli: CLI) -> None:
    cli("jobs", "add", "a", "hello there", "--every", "1h")
    result = cli("jobs", "run", "a")
    assert result.code == 0 and "echo" in result.err and "demo" in result.err
    assert "hello there" in result.out


def test_run_of_a_code_job_names_its_function_not_the_echo_executor(
    cli: CLI, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[cron]\njob_modules = ["tests.declared_sample"]\n')
    assert cli("--config", str(config), "jobs", "sync").code == 0
    code_job = cli("--config", str(config), "jobs", "run", "heartbeat")
    assert code_job.code == 0, code_job.err
    assert "echo" not in code_job.err + code_job.out
    assert "python function tests.declared_sample.heartbeat" in code_job.out
    assert "beat 1" in code_job.out
    cli("jobs", "add", "a", "hello there", "--every", "1h")
    both = cli("--config", str(config), "--json", "jobs", "run", "heartbeat", "a")
    assert "echo" in both.err  # the prompt job does go to the demo executor: said once
    assert both.json["data"]["executor"].startswith("echo (demo")
    assert "python function tests.declared_sample.heartbeat" in both.json["data"]["executor"]


def test_a_job_module_that_does_not_import_is_reported_in_the_file_that_names_it(
    cli: CLI, tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[cron]\njob_modules = ["no_such_module_xyz"]\n')
    refused = cli("--config", str(config), "jobs", "sync")
    assert refused.code == 2
    assert f"{config} [cron] job_modules: cannot import 'no_such_module_xyz'" in refused.err


def test_history_filters_and_limit(cli: CLI, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    cli("jobs", "add", "good", "ok", "--every", "1h")
    cli("jobs", "add", "bad", "fail", "--every", "1h")
    for _ in range(3):
        cli("--config", config, "jobs", "run", "good", "bad")
    doc = cli("--json", "jobs", "history").json
    assert doc["title"] == "Job Execution History" and doc["data"]["total"] == 6
    failed = cli("--json", "jobs", "history", "--status", "failed").json["data"]["entries"]
    assert len(failed) == 3 and {e["job_name"] for e in failed} == {"bad"}
    assert len(cli("--json", "jobs", "history", "-n", "2").json["data"]["entries"]) == 2
    human = cli("jobs", "history", "--job", "good", "--limit", "1").out.splitlines()
    assert len(human) == 2 and human[1].startswith("good") and "done: ok" in human[1]
    assert cli("jobs", "history", "--status", "weird").code == 2


def test_prune(cli: CLI, db: str) -> None:
    cli("jobs", "add", "a", "p", "--every", "1h")
    cli("jobs", "run", "a")
    dry = cli("--json", "jobs", "prune", "--days", "0", "--dry-run").json["data"]
    assert dry["runs_matching"] == 1 and dry["runs_deleted"] == 0 and dry["dry_run"] is True
    assert len(snapshot(db)[1]) == 1
    assert cli("jobs", "prune", "--days", "30").out.startswith("Deleted 0 run(s)")
    assert "Deleted 1 run(s)" in cli("jobs", "prune", "--days", "0").out
    assert snapshot(db)[1] == []


def test_next_previews_without_saving(cli: CLI, db: str) -> None:
    doc = cli("--json", "jobs", "next", "30 2 * * *", "--tz", "Europe/Berlin", "-n", "3").json
    data = doc["data"]
    assert data["timezone"] == "Europe/Berlin" and len(data["next_runs"]) == 3
    assert all("T02:30:00+0" in t or "T03:00:00+02:00" in t for t in data["next_runs"])
    assert data["in_words"] == data["schedule_human"] == "At 02:30"  # as cron_next, and before
    human = cli("jobs", "next", "*/15 * * * *", "-n", "2").out
    assert human.startswith("*/15 * * * *  (Every 15 minutes, UTC)")
    assert cli("jobs", "next", "not cron").code == 2
    assert not os.path.exists(db)  # nothing was created


def test_bad_config_exits_2(cli: CLI, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[cron]\nmax_concurent_runs = 2\n")
    result = cli("--config", str(bad), "jobs", "list")
    assert result.code == 2 and "unknown key 'max_concurent_runs'" in result.err


@pytest.mark.slow
def test_console_script_and_module_entry(tmp_path: Path) -> None:
    db = str(tmp_path / "script.db")
    script = Path(sys.executable).with_name("starpod-cron")
    when = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    add = subprocess.run(
        [str(script), "--db", db, "jobs", "add", "x", "y", "--at", when],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert add.returncode == 0, add.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "starpod_cron", "--db", db, "--json", "jobs", "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert listed.returncode == 0 and '"name": "x"' in listed.stdout
    bad = subprocess.run(
        [str(script), "--db", db, "jobs", "show", "missing"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert bad.returncode == 2 and bad.stderr == "starpod-cron: error: no job named 'missing'\n"
    assert bad.stdout == ""


def test_serve_takes_the_global_options_after_it_too() -> None:
    from starpod_cron.cli.main import build_parser

    args = build_parser().parse_args(
        ["serve", "--config", "a.toml", "--db", "x.db", "-v", "--port", "9000"]
    )
    assert (args.config, args.db, args.verbose, args.port) == ("a.toml", "x.db", True, 9000)
    args = build_parser().parse_args(["--config", "b.toml", "serve"])
    assert args.config == "b.toml" and args.db is None and args.port is None


# ------------------------------------------------------- what new users ran into (issue 9)
def test_global_options_work_after_the_command_too(cli: CLI) -> None:
    cli("jobs", "add", "a", "p", "--every", "1h")
    before = cli("--json", "jobs", "list").json
    after = cli("jobs", "list", "--json")  # was: "unrecognized arguments: --json"
    assert after.code == 0 and after.json == before
    assert "NEXT RUN (Asia/Tokyo)" in cli("jobs", "list", "--tz", "Asia/Tokyo").out


def test_bare_command_prints_help_and_version_is_known(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: starpod-cron" in err and "jobs" in err and "serve" in err
    assert "the following arguments are required" not in err
    assert main(["jobs"]) == 2 and "list" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == "starpod-cron 0.1.0"


def test_every_option_of_every_command_has_help() -> None:
    def walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
        missing = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    missing += walk(sub, f"{path} {name}")
            elif action.help in (None, "") and action.dest not in ("help",):
                missing.append(f"{path}: {'/'.join(action.option_strings) or action.dest}")
        return missing

    assert walk(build_parser(), "starpod-cron") == []
    help_text = io.StringIO()  # add, edit and serve show examples
    with contextlib.redirect_stdout(help_text), pytest.raises(SystemExit):
        build_parser().parse_args(["jobs", "add", "--help"])
    assert "examples:" in help_text.getvalue() and "--every 30m" in help_text.getvalue()


async def _record_tokens(db: str) -> None:
    from starpod_cron import Completion, CronStore, RunStatus

    async with CronStore.open(db) as store:
        (job,) = await store.list_jobs()
        run_id = await store.record_run_start(job.id)
        done = Completion(run_id, RunStatus.SUCCESS, "ok", prompt_tokens=1204, completion_tokens=31)
        assert await store.complete_runs([done], owner=None) == [True]


def test_token_usage_is_shown(cli: CLI, db: str) -> None:
    cli("jobs", "add", "a", "p", "--every", "1h")
    asyncio.run(_record_tokens(db))
    table = cli("jobs", "history")
    assert "TOKENS" in table.out and "1,204 in / 31 out" in table.out
    (entry,) = cli("--json", "jobs", "history").json["data"]["entries"]
    assert (entry["prompt_tokens"], entry["completion_tokens"]) == (1204, 31)
    shown = cli("jobs", "show", "a")
    assert "last run 1,204 in / 31 out; last 1 run(s) 1,204 in / 31 out" in shown.out
    card = cli("--json", "jobs", "show", "a").json["data"]
    assert card["last_run_tokens"] == {"prompt": 1204, "completion": 31}


def test_a_python_target_next_to_agent_toml_needs_no_pythonpath(cli: CLI, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "my_agent_module_9.py").write_text(
        "async def run(ctx):\n    return f'mine: {ctx.prompt}'\n"
    )
    (project / "agent.toml").write_text(
        '[executor]\nkind = "python"\ntarget = "my_agent_module_9:run"\n'
    )
    cli("jobs", "add", "a", "hello", "--every", "1h")
    ran = cli("--config", str(project / "agent.toml"), "--json", "jobs", "run", "a")
    assert ran.code == 0, ran.err
    assert ran.json["data"]["jobs_run"][0]["result"] == "mine: hello"


def test_one_rule_for_in_and_one_shot_times_with_their_offset(cli: CLI) -> None:
    added = cli("--json", "jobs", "add", "soon", "stretch", "--in", "20m")
    assert added.json["data"]["delete_after_run"] is True  # was: only through the gateway
    kept = cli("--json", "jobs", "add", "keep", "p", "--in", "20m", "--no-delete-after-run")
    assert kept.json["data"]["delete_after_run"] is False
    cli("jobs", "add", "rome", "p", "--at", "2030-01-01 09:00", "--tz", "Europe/Rome")
    listed = cli("jobs", "list").out
    assert "at 2030-01-01 09:00:00 +01:00" in listed  # was: "at 2030-01-01T09:00:00"


def test_empty_history_says_what_was_asked(cli: CLI) -> None:
    cli("jobs", "add", "a", "p", "--every", "1h")
    assert cli("jobs", "history", "--status", "failed").out.strip() == "No failed runs recorded."
    assert cli("jobs", "history", "--job", "a").out.strip() == "No runs of a recorded."


def test_jobs_run_says_when_the_api_key_variable_is_unset(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MY_UNSET_KEY_VAR", raising=False)
    config = tmp_path / "agent.toml"
    config.write_text(
        '[executor]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'api_key_env = "MY_UNSET_KEY_VAR"\nrequest_timeout_secs = 2\n'
    )
    cli("jobs", "add", "a", "p", "--every", "1h", "--retries", "0")
    ran = cli("--config", str(config), "jobs", "run", "a")
    assert "note: no API key in $MY_UNSET_KEY_VAR" in ran.err  # was: silent
    # api_key_env = "": a local server (Ollama) that wants no key: nothing to warn of
    config.write_text(
        '[executor]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'api_key_env = ""\nrequest_timeout_secs = 2\n'
    )
    keyless = cli("--config", str(config), "jobs", "run", "a")
    assert "API key" not in keyless.err  # was: "no API key in $: ..." on every command
    assert "openai" in keyless.out  # it did run (and fail: nothing listens on port 9)


def test_status_shows_each_jobs_state_its_errors_and_the_next_fires_in_order(
    cli: CLI, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[executor]\nkind = "python"\ntarget = "tests.cli.targets:run"\n')
    cli("jobs", "add", "hourly", "p", "--every", "1h")
    cli("jobs", "add", "daily", "p", "--cron", "0 9 * * *")
    cli("jobs", "add", "broken", "fail: always", "--every", "2h", "--retries", "0")
    cli("jobs", "add", "held", "p", "--every", "3h")
    cli("jobs", "disable", "held")
    cli("--config", str(config), "jobs", "run", "broken")
    cli("--config", str(config), "jobs", "run", "hourly")
    data = cli("--json", "status").json["data"]
    states = {
        j["name"]: (j["state"], j["stats"]["runs"], j["stats"]["errors"]) for j in data["jobs"]
    }
    assert states == {
        "hourly": ("IDLE", 1, 0),
        "daily": ("IDLE", 0, 0),
        "broken": ("FAILING", 1, 1),
        "held": ("PAUSED", 0, 0),
    }
    fires = [f["at"] for f in data["next_fires"]]
    assert len(fires) == 10 and fires == sorted(fires)
    assert "held" not in {f["job"] for f in data["next_fires"]}
    assert data["in_flight"] == [] and data["nodes"] == []
    text = cli("status").out
    assert "Runs in flight: 0" in text and "FAILING" in text


def test_status_shows_a_destination_refusing_every_message(cli: CLI, db: str) -> None:
    cli("jobs", "add", "hourly", "p", "--every", "1h")
    assert cli("--json", "status").json["data"]["destinations_refusing"] == []

    async def refuse() -> None:
        async with CronStore.open(db) as store:
            error = "Telegram refuses the bot: InvalidToken: Unauthorized"
            await store.refuse_destination("telegram:123456", error, (60,))

    asyncio.run(refuse())
    (shown,) = cli("--json", "status").json["data"]["destinations_refusing"]
    assert (shown["name"], shown["kind"], shown["id"], shown["refusals"]) == (
        "telegram:123456",
        "telegram",
        "123456",
        1,
    )
    assert shown["error"] == "Telegram refuses the bot: InvalidToken: Unauthorized"
    text = cli("status").out
    assert "Destination refusing: telegram:123456 since " in text
    assert re.search(r"next probe in (1m|59s): Telegram refuses the bot: InvalidToken", text)


def test_maintenance_commands_report_what_they_would_delete_then_delete_it(cli: CLI) -> None:
    cli("jobs", "add", "a", "p", "--every", "1h")
    cli("jobs", "run", "a")  # one finished run: its run.started, notification and run.finished
    dry = cli("--json", "maintenance", "deliveries", "--days", "0", "--dry-run").json["data"]
    assert (dry["matching"], dry["deleted"], dry["dry_run"]) == (3, 0, True)
    done = cli("maintenance", "deliveries", "--days", "0")
    assert (
        done.code == 0 and done.out.strip() == "Deleted 3 finished deliveries older than 0 day(s)"
    )
    assert cli("--json", "maintenance", "deliveries", "--days", "0").json["data"]["matching"] == 0
    assert "Deleted 0 conversation message(s)" in cli("maintenance", "sessions").out
    assert cli("maintenance", "optimize").code == 0
    assert cli("maintenance", "sessions", "--hours", "-1").code == 2


def test_jobs_sync_shows_then_applies_the_declared_jobs_and_refuses_edits(
    cli: CLI, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        '[[jobs]]\nname = "standup"\nprompt = "Post the standup"\ncron = "0 9 * * 1-5"\n'
    )
    dry = cli("--config", str(config), "jobs", "sync", "--dry-run")
    assert dry.code == 0 and "Would make 1 change(s)" in dry.out and "create: standup" in dry.out
    assert cli("jobs", "list").out.startswith("No jobs")
    done = cli("--config", str(config), "--json", "jobs", "sync").json["data"]
    assert done["created"] == ["standup"] and not done["dry_run"]
    refused = cli("jobs", "disable", "standup")
    assert refused.code == 2
    assert "declared in " in refused.err and "[[jobs]] standup; change it there" in refused.err
    assert cli("--config", str(config), "jobs", "sync").out.startswith("Made 0 change(s)")


def test_jitter_and_overlap_options(cli: CLI, db: str) -> None:
    added = cli("jobs", "add", "spread", "p", "--cron", "0 9 * * *", "--jitter", "30m")
    assert added.code == 0, added.err
    shown = cli("--json", "jobs", "show", "spread").json["data"]
    assert shown["jitter_secs"] == 1800 and shown["overlap"] == "skip"
    fires = [datetime.fromisoformat(t) for t in shown["next_runs"]]
    assert all(f.hour == 9 and f.minute < 30 for f in fires)  # 09:00 plus up to 30 min
    assert len({(f.minute, f.second) for f in fires}) > 1  # each day its own offset
    assert shown["next_run"] == shown["next_runs"][0]
    text = cli("jobs", "show", "spread").out
    assert "up to 30m" in text
    edited = cli("jobs", "edit", "spread", "--overlap", "allow", "--max-instances", "3")
    assert edited.code == 0, edited.err
    shown = cli("--json", "jobs", "show", "spread").json["data"]
    assert (shown["overlap"], shown["max_instances"]) == ("allow", 3)
    before = snapshot(db)
    refused = cli("jobs", "edit", "spread", "--overlap", "queue")
    assert refused.code == 2 and "max_instances = 3 needs overlap = 'allow'" in refused.err
    refused = cli(
        "jobs", "add", "q", "p", "--every", "1h", "--overlap", "queue", "--misfire", "skip"
    )
    assert refused.code == 2 and "choose one" in refused.err
    assert snapshot(db) == before
    assert cli("jobs", "edit", "spread", "--jitter", "0").code == 0
    assert cli("--json", "jobs", "show", "spread").json["data"]["jitter_secs"] == 0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a/runs", "contains '/'"),
        ("a\\b", "contains '\\\\'"),
        ("", "job name is empty"),
        ("   ", "job name is empty"),
        ("tab\there", "control character U+0009"),
        ("\u202eevil", "control character U+202E"),
    ],
)
def test_add_refuses_names_no_url_or_terminal_can_hold(cli: CLI, name: str, message: str) -> None:
    result = cli("jobs", "add", name, "p", "--every", "1h")
    assert result.code == 2 and message in result.err and result.err.count("\n") == 1, result.err
    assert "'/', '\\' or control characters" in result.err or "empty" in result.err
    assert snapshot(str(Path.cwd() / "cli.db"))[0] == []


@pytest.mark.parametrize(
    "argv",
    [
        [b"jobs", b"add", b"name\xff", b"a prompt", b"--every", b"1h"],
        [b"jobs", b"add", b"name", b"pro\xc3mpt", b"--every", b"1h"],
        [b"jobs", b"add", b"name", b"p", b"--every", b"1h", b"--description", b"\xfe"],
        [b"jobs", b"show", b"\xff"],
        [b"jobs", b"history", b"--job", b"x\xff"],
    ],
)
@pytest.mark.slow
def test_a_non_utf8_argument_is_one_line_and_exit_2(tmp_path: Path, argv: list[bytes]) -> None:
    """Python hands a byte such as 0xff to the program as a lone surrogate (surrogateescape):
    the CLI says which argument, in one line, and writes nothing (a real process, bytes argv)."""
    db = tmp_path / "jobs.db"
    assert main(["--db", str(db), "jobs", "add", "keep", "p", "--every", "1h"]) == 0
    before = snapshot(str(db))
    exe = str(Path(sys.executable).with_name("starpod-cron"))
    done = subprocess.run(
        [exe.encode(), b"--db", str(db).encode(), *argv],
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
    )
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("starpod-cron: error: the ") and "is not UTF-8 text" in err, err
    assert snapshot(str(db)) == before
