"""docs/configuration.md is generated from the settings: it fails here while stale."""

from __future__ import annotations

from pathlib import Path

from starpod_cron.configdoc import render
from starpod_cron.configkeys import config_keys

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_the_committed_reference_is_the_generated_one() -> None:
    assert PAGE.read_text() == render(), (
        "docs/configuration.md is stale: python -m starpod_cron.configdoc > docs/configuration.md"
    )


def test_every_key_is_in_the_reference_with_its_variable() -> None:
    page = render()
    for key in config_keys():
        assert f"| `{key.name}` | `{key.env}` |" in page
    assert "`STARPOD_CRON_MAX_CONCURRENT_RUNS`" in page
