"""agent.toml loading: defaults, every key, and clear errors for unknown keys and wrong types."""

from __future__ import annotations

from pathlib import Path

import pytest

from starpod_cron import ConfigError, CronScheduler, CronStore, JobContext, JobResult, Schedule
from starpod_cron.config import AgentConfig, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_match_the_documentation() -> None:
    config = parse_config("")
    assert config == AgentConfig()
    c = config.cron
    assert (c.default_max_retries, c.default_timeout_secs, c.max_concurrent_runs) == (3, 7200, 4)
    assert (c.tick_secs, c.timezone, c.runs_keep_per_job, c.shutdown_timeout_secs) == (
        30,
        "UTC",
        200,
        30,
    )
    assert config.store.url == "starpod-cron.db"


def test_the_example_file_loads_and_sets_every_key() -> None:
    config = load_config(ROOT / "agent.toml.example")
    assert config.cron.timezone == "Europe/Rome"
    documented = (ROOT / "agent.toml.example").read_text()
    assert config.executor.kind == "openai" and config.executor.model == "llama3.2"
    for section in (config.cron, config.store, config.executor, config.gateway, config.telegram):
        for key in type(section).__dataclass_fields__:
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
        ("[cron]\nmax_concurrent_runs = 0", "max_concurrent_runs: must be greater than 0"),
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
    store = await CronStore.open(str(tmp_path / "c.db"), settings=config.store_settings())

    async def executor(ctx: JobContext) -> JobResult:
        return JobResult("", "")

    scheduler = CronScheduler(store, executor, **config.scheduler_options())
    try:
        job = await store.get_job(await store.add_job("j", "p", Schedule.cron("0 9 * * *")))
        assert job is not None
        assert (job.max_retries, job.timeout_secs, job.timezone) == (7, 60, "Asia/Tokyo")
        assert scheduler.max_concurrent_runs == 9
    finally:
        await store.close()
