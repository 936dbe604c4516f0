"""The docs site (mkdocs.yml, docs/, docsgen/hooks.py): every page is in the nav, the generated
references hold every command, endpoint and key, and the README's links reach real pages.
(CI builds the site with ``mkdocs build --strict``.)"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from docsgen.hooks import OPTIONAL, cli_reference, configuration_reference, http_reference
from gateway.api import ENDPOINTS
from gateway.openapi import openapi_document
from starpod_cron.config import GatewayConfig
from starpod_cron.settings import SchedulerSettings

ROOT = Path(__file__).resolve().parent.parent


def nav_pages(nav: list[Any]) -> set[str]:
    pages: set[str] = set()
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages |= nav_pages(value) if isinstance(value, list) else {value}
    return pages


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_exists_or_is_expected() -> None:
    nav = nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages - nav == set(), "add these pages to mkdocs.yml's nav"
    assert nav - pages <= {"configuration.md", *OPTIONAL}  # generated, or other branches'


def test_the_cli_reference_shows_every_command() -> None:
    page = cli_reference()
    for command in ("starpod-cron jobs add", "starpod-cron serve", "starpod-cron dev-postgres"):
        assert f"`{command}`" in page, command
    assert "--cron" in page and "--http-port" in page  # the options, not just the names


def test_the_http_reference_lists_every_endpoint() -> None:
    page = http_reference(openapi_document())
    for endpoint in ENDPOINTS:
        assert f"`{endpoint.method.upper()} {endpoint.path}`" in page, endpoint.path


def test_the_generated_configuration_names_every_key() -> None:
    page = configuration_reference()
    for section, cls in (("cron", SchedulerSettings), ("gateway", GatewayConfig)):
        table = page.split(f"## `[{section}]`", 1)[1].split("\n## ", 1)[0]
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in table, (section, f.name)
    assert "| `max_concurrent_runs` | `int` | `4` | a whole number from 1 to 1000000 |" in page


def test_the_readme_links_reach_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(links) >= 10
    for link in links:
        assert (ROOT / link).exists() or Path(link).name in {"configuration.md", *OPTIONAL}, link
