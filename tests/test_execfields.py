"""The model call fields in agent.toml (issue 25): ``[[jobs]]`` keys for the per-job options,
``[cron] escalate_token``, and a list field typed as people type it."""

from __future__ import annotations

from pathlib import Path

import pytest

from starpod_cron.config import load_config
from starpod_cron.declared import from_config
from starpod_cron.errors import ConfigError, InvalidInput
from starpod_cron.fields import job_field
from starpod_cron.jobfields import from_text

TOML = """
[cron]
escalate_token = "<<HARD>>"

[[jobs]]
name = "triage"
prompt = "Triage the alerts"
cron = "0 7 * * *"
model = "gpt-4o-mini"
fallback_models = ["llama3.2"]
escalate_to = "gpt-4o"
tools = ["cron_list"]
max_tokens = 800
"""


def test_jobs_in_agent_toml_take_the_model_options(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(TOML)
    config = load_config(path)
    assert config.store_settings.escalate_token == "<<HARD>>"
    (job,) = from_config(config.jobs, str(path))
    spec = job.fields
    assert (spec.model, spec.fallback_models, spec.escalate_to) == (
        "gpt-4o-mini",
        ["llama3.2"],
        "gpt-4o",
    )
    assert (spec.tools, spec.max_tokens) == (["cron_list"], 800)


def test_a_blank_escalate_token_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[cron]\nescalate_token = "  "\n')
    with pytest.raises(ConfigError, match="escalate_token"):
        load_config(path)


def test_a_list_is_typed_as_names_separated_by_commas() -> None:
    tools = job_field("tools")
    assert from_text(tools, "cron_list, cron_get") == ["cron_list", "cron_get"]
    assert from_text(tools, "") == []
    with pytest.raises(InvalidInput):
        from_text(job_field("max_tokens"), "lots")


def test_a_bad_tool_in_agent_toml_is_refused_when_the_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(TOML.replace('tools = ["cron_list"]', 'tools = ["cron_nuke"]'))
    with pytest.raises(ConfigError, match="cron_nuke"):
        load_config(path)
