"""Configuration from the environment: STARPOD_<SECTION>_<KEY> over agent.toml, flags over
both, and `starpod-cron config` saying where each value came from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from starpod_cron.configkeys import SECTIONS, config_keys, sections
from starpod_cron.envconfig import load_effective
from starpod_cron.errors import ConfigError
from tests.processes import CLI, environment


def test_environment_values_are_read_as_toml_and_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[cron]\nmax_concurrent_runs = 3\ntick_secs = 5\n[gateway]\nport = 9000\n")
    env = {
        "STARPOD_CRON_MAX_CONCURRENT_RUNS": "7",
        "STARPOD_GATEWAY_DELIVERY_BACKOFF_SECS": "[1, 5]",
        "STARPOD_GATEWAY_STANDALONE_WS": "false",
        "STARPOD_STORE_URL": "postgresql://u@h/db",  # a string key: the text as it is
        "STARPOD_CRON_TIMEZONE": "Europe/Rome",
    }
    found = load_effective(str(path), env)
    c = found.config
    assert c.scheduler.max_concurrent_runs == 7
    assert c.scheduler.tick_secs == 5
    assert c.gateway.port == 9000
    assert c.gateway.delivery_backoff_secs == (1.0, 5.0)
    assert c.gateway.standalone_ws is False
    assert c.store.url == "postgresql://u@h/db"
    assert c.store_settings.default_timezone == "Europe/Rome"
    keys = {(k.section, k.name): k for k in config_keys()}
    assert found.source(keys[("cron", "max_concurrent_runs")]) == (
        "env STARPOD_CRON_MAX_CONCURRENT_RUNS"
    )
    assert found.source(keys[("cron", "tick_secs")]) == f"file {path}"
    assert found.source(keys[("cron", "lease_secs")]) == "default"


def test_a_flag_wins_over_the_environment_and_starpod_db_is_an_alias() -> None:
    env = {"STARPOD_DB": "a.db"}
    assert load_effective(None, env).config.store.url == "a.db"
    both = {"STARPOD_DB": "a.db", "STARPOD_STORE_URL": "b.db"}
    assert load_effective(None, both).config.store.url == "b.db"
    found = load_effective(None, both, db="c.db")
    assert found.config.store.url == "c.db"
    assert found.sources[("store", "url")] == "flag --db"
    flags = {("logging", "format"): ("--log-format", "json")}
    found = load_effective(None, {"STARPOD_LOG_FORMAT": "text"}, flags=flags)
    assert found.config.logging.format == "json"


def test_unknown_and_bad_variables_are_errors_that_name_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$STARPOD_CRON_X is not a configuration key"):
        load_effective(None, {"STARPOD_CRON_X": "1"})
    with pytest.raises(ConfigError, match=r"set by \$STARPOD_CRON_MAX_CONCURRENT_RUNS"):
        load_effective(None, {"STARPOD_CRON_MAX_CONCURRENT_RUNS": "0"})
    with pytest.raises(ConfigError, match=r"\$STARPOD_CRON_TICK_SECS: 'soon' is not a TOML"):
        load_effective(None, {"STARPOD_CRON_TICK_SECS": "soon"})
    with pytest.raises(ConfigError, match="expected an integer"):
        load_effective(None, {"STARPOD_CRON_MAX_CONCURRENT_RUNS": '"7"'})
    # known variables that are not keys, and names an *_env key points at, are fine
    path = tmp_path / "agent.toml"
    path.write_text('[executor]\nkind = "openai"\napi_key_env = "STARPOD_EXECUTOR_SECRET"\n')
    env = {"STARPOD_PG_DSN": "postgresql://x", "STARPOD_EXECUTOR_SECRET": "k", "STARPOD_X": "1"}
    assert load_effective(str(path), env).config.executor.kind == "openai"


def test_starpod_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("[cron]\nlease_secs = 40\n")
    found = load_effective(None, {"STARPOD_CONFIG": str(path)})
    assert found.config.scheduler.lease_secs == 40 and found.file == str(path)


def _cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], cwd=cwd, env=environment(env), capture_output=True, text=True, timeout=60
    )


def test_config_command_shows_values_and_sources_without_a_file(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--json", "config", STARPOD_CRON_MAX_CONCURRENT_RUNS="7")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    data = answer["data"]
    assert data["cron"]["max_concurrent_runs"] == {
        "value": 7,
        "source": "env STARPOD_CRON_MAX_CONCURRENT_RUNS",
    }
    assert data["gateway"]["delivery_backoff_secs"]["value"] == [1, 5, 30, 120, 600]
    assert data["store"]["url"] == {"value": "starpod-cron.db", "source": "default"}
    assert answer["artifact_type"] == "table" and answer["title"] == "Configuration"
    assert set(data) >= {"cron", "store", "executor", "gateway", "telegram", "logging"}


def test_config_command_with_a_file_masks_secrets(tmp_path: Path) -> None:
    token = "a-gateway-token-123456"
    (tmp_path / "agent.toml").write_text(
        f'[telegram]\ntoken = "123456:ABCdefGHIjklMNOpqrsTUVwxyz"\n'
        f'[gateway.tokens]\n"{token}" = {{user_id = "u1"}}\n[cron]\ntick_secs = 2\n'
    )
    done = _cli(tmp_path, "config", "--json", "--db", "x.db")
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout and "ABCdef" not in done.stdout
    data = json.loads(done.stdout)["data"]
    assert data["telegram"]["token"] == {"value": "***", "source": "file agent.toml"}
    assert data["gateway"]["tokens"]["value"] == "***"
    assert data["cron"]["tick_secs"] == {"value": 2.0, "source": "file agent.toml"}
    assert data["store"]["url"] == {"value": "x.db", "source": "flag --db"}
    text = _cli(tmp_path, "config", STARPOD_CRON_LEASE_SECS="45")
    assert "cron.lease_secs" in text.stdout and "env STARPOD_CRON_LEASE_SECS" in text.stdout


def test_every_command_refuses_an_unknown_variable(tmp_path: Path) -> None:
    done = _cli(tmp_path, "jobs", "list", STARPOD_CRON_MAX_CONCURENT_RUNS="7")
    assert done.returncode == 2
    assert "$STARPOD_CRON_MAX_CONCURENT_RUNS is not a configuration key" in done.stderr


def test_the_environment_reaches_the_store_settings(tmp_path: Path) -> None:
    done = _cli(
        tmp_path,
        "jobs",
        "add",
        "a",
        "hi",
        "--every",
        "1h",
        STARPOD_CRON_DEFAULT_MAX_RETRIES="9",
        STARPOD_STORE_URL=str(tmp_path / "env.db"),
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "env.db").exists()
    shown = _cli(
        tmp_path, "--json", "jobs", "show", "a", STARPOD_STORE_URL=str(tmp_path / "env.db")
    )
    assert json.loads(shown.stdout)["data"]["max_retries"] == 9


def test_the_sections_the_overlay_looks_for_are_those_the_keys_have() -> None:
    """Without a ``STARPOD_<SECTION>_`` variable the overlay reads no key (start-up): the
    sections it looks for must be every section the keys have."""
    assert tuple(sections()) == SECTIONS
    assert load_effective(None, {"STARPOD_PG_DSN": "postgresql://x"}).config.store.url
    with pytest.raises(ConfigError, match="STARPOD_PRICING_NOPE"):
        load_effective(None, {"STARPOD_PRICING_NOPE": "1"})
