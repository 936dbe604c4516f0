"""agent.toml loading: defaults, every key, and clear errors for unknown keys and wrong types."""

from __future__ import annotations

from pathlib import Path

import pytest

from starpod_cron import (
    ConfigError,
    CronScheduler,
    CronStore,
    JobContext,
    JobResult,
    Schedule,
    SchedulerSettings,
    StoreSettings,
)
from starpod_cron.config import AgentConfig, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_match_the_documentation() -> None:
    config = parse_config("")
    assert config == AgentConfig()
    assert config.store_settings == StoreSettings() and config.scheduler == SchedulerSettings()
    st, sc = config.store_settings, config.scheduler
    assert (st.default_max_retries, st.default_timeout_secs, sc.max_concurrent_runs) == (
        3,
        7200,
        4,
    )
    assert (sc.tick_secs, st.default_timezone, st.runs_keep_per_job) == (30, "UTC", 200)
    assert (sc.shutdown_timeout_secs, sc.lease_secs, sc.claim_ahead) == (30, 30, 1)
    assert config.store.url == "starpod-cron.db"


def test_the_example_file_loads_and_sets_every_key() -> None:
    config = load_config(ROOT / "agent.toml.example")
    assert config.store_settings.default_timezone == "Europe/Rome"
    assert config.base_dir == ROOT
    documented = (ROOT / "agent.toml.example").read_text()
    assert config.executor.kind == "openai" and config.executor.model == "llama3.2"
    sections = (
        config.store_settings,
        config.scheduler,
        config.store,
        config.executor,
        config.gateway,
        config.telegram,
    )
    renamed = {"default_timezone": "timezone"}
    for section in sections:
        for key in type(section).__dataclass_fields__:
            if key == "spend":  # [pricing] and [gateway] budgets, not a [cron] key
                continue
            key = renamed.get(key, key)
            assert f"{key} =" in documented, f"agent.toml.example does not document {key}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[cron]\nmax_concurent_runs = 4", "unknown key 'max_concurent_runs'"),
        ("[crontab]\n", "unknown section [crontab]"),
        ("[cron]\ntick_secs = 'fast'", "tick_secs: expected a number"),
        ("[cron]\ndefault_max_retries = 2.5", "default_max_retries: expected an integer"),
        ("[cron]\ndefault_max_retries = true", "default_max_retries: expected an integer"),
        ("[cron]\ntimezone = 'Mars/Base'", "timezone"),
        ("[cron]\nmax_concurrent_runs = 0", "max_concurrent_runs: must be a whole number from 1"),
        ("[cron]\nlease_secs = 10\nclaim_ahead_secs = 10", "claim_ahead_secs: must be shorter"),
        ("[executor]\nkind = 'command'\nargv = ['x']\nmodel = 'gpt'", "model: applies to"),
        ("[gateway]\nport = 70000", "[gateway] port: must be"),
        ("[cron]\nretry_backoff_secs = 30", "retry_backoff_secs: expected a list"),
        ("[cron]\nretry_backoff_secs = []", "retry_backoff_secs"),
        ("[store]\nsynchronous = 'off'", "synchronous"),
        ("[cron\n", "invalid TOML"),
        ("cron = 5", "[cron] must be a table"),
    ],
)
def test_bad_config_is_reported_clearly(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="agent.toml")
    assert message in str(err.value) and "agent.toml" in str(err.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


async def test_config_drives_store_and_scheduler(tmp_path: Path) -> None:
    config = parse_config(
        "[cron]\ndefault_max_retries = 7\ndefault_timeout_secs = 60\ntimezone = 'Asia/Tokyo'\n"
        "max_concurrent_runs = 9\nretry_backoff_secs = [1, 2]\n"
    )
    store = await CronStore.open(str(tmp_path / "c.db"), settings=config.store_settings)

    async def executor(ctx: JobContext) -> JobResult:
        return JobResult("", "")

    scheduler = CronScheduler(store, executor, config.scheduler)
    try:
        job = await store.get_job(await store.add_job("j", "p", Schedule.cron("0 9 * * *")))
        assert job is not None
        assert (job.max_retries, job.timeout_secs, job.timezone) == (7, 60, "Asia/Tokyo")
        assert scheduler.settings.max_concurrent_runs == 9
        assert store.settings.retry_backoff_secs == (1, 2)
    finally:
        await store.close()
