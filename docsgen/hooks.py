"""mkdocs hooks (mkdocs.yml ``hooks:``): the reference pages made at build time from the code,
so they cannot drift from it.

- ``cli-reference.md``: every command's ``--help``, from ``starpod_cron.cli.main.build_parser``;
- ``http-api.md``: the endpoints of ``/openapi.json`` (``gateway.openapi.openapi_document``)
  rendered as Markdown under the page's own text, and the document itself beside it;
- ``configuration.md``: when no such page is committed (the "ops" generator writes one), a table
  of every key of agent.toml's fixed sections, from the settings dataclasses;
- the nav: entries whose page does not exist (yet) are dropped, so a page another branch adds
  appears once merged; a page missing from the nav fails ``--strict`` (mkdocs.yml validation).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import typing
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

MARKER = "<!-- generated -->"


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    os.environ["COLUMNS"] = "100"  # argparse wraps --help at the terminal's width
    docs = str(config["docs_dir"])
    config["nav"] = _existing(config["nav"] or [], docs)
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    if files.get_file_from_path("configuration.md") is None:
        files.append(File.generated(config, "configuration.md", content=configuration_reference()))
    openapi = json.dumps(_openapi(), indent=2) + "\n"
    files.append(File.generated(config, "openapi.json", content=openapi))
    return files


OPTIONAL = ("systemd.md", "logging.md", "tracing.md", "cli.md", "dashboard.md", "chaos.md")
"""Pages other branches write: a link to one that is not there (yet) becomes its text."""
_LINK = re.compile(r"\[([^\]]+)\]\((" + "|".join(map(re.escape, OPTIONAL)) + r")(#[^)]*)?\)")


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    def link(match: re.Match[str]) -> str:
        present = files.get_file_from_path(match.group(2)) is not None
        return match.group(0) if present else match.group(1)

    markdown = _LINK.sub(link, markdown)
    made = {"cli-reference.md": cli_reference, "http-api.md": lambda: http_reference(_openapi())}
    maker = made.get(page.file.src_uri)
    if maker is None:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{page.file.src_uri} needs the line {MARKER} where its reference goes")
    return markdown.replace(MARKER, maker())


def _openapi() -> dict[str, Any]:
    from gateway.openapi import openapi_document

    return openapi_document()


def _existing(nav: list[Any], docs: str) -> list[Any]:
    kept: list[Any] = []
    for entry in nav:
        if isinstance(entry, dict):
            ((title, value),) = entry.items()
            if isinstance(value, list):
                inner = _existing(value, docs)
                if inner:
                    kept.append({title: inner})
            elif _present(value, docs):
                kept.append(entry)
        elif _present(entry, docs):
            kept.append(entry)
    return kept


def _present(page: str, docs: str) -> bool:
    generated = ("configuration.md",)
    return "://" in page or page in generated or os.path.exists(os.path.join(docs, page))


# the pages

FIXED_SECTIONS = ("cron", "store", "executor", "gateway", "telegram", "maintenance")


def cli_reference() -> str:
    """Every command of ``starpod-cron`` with its ``--help``, depth first."""
    from starpod_cron.cli.main import build_parser

    out: list[str] = []

    def walk(parser: argparse.ArgumentParser, depth: int) -> None:
        out.append(f"{'#' * min(depth + 2, 6)} `{parser.prog}`\n")
        out.append(f"```text\n{parser.format_help().rstrip()}\n```\n")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in dict.fromkeys(action.choices.values()):
                    walk(sub, depth + 1)

    walk(build_parser(), 0)
    return "\n".join(out)


def http_reference(document: dict[str, Any]) -> str:
    """The endpoints of an OpenAPI document: a table, then each operation."""
    rows = ["| Method | Path | What it does |", "| --- | --- | --- |"]
    parts: list[str] = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            summary = (op.get("summary") or op.get("description") or "").split("\n")[0]
            rows.append(f"| `{method.upper()}` | `{path}` | {summary} |")
            parts.append(f"### `{method.upper()} {path}`\n")
            if op.get("description"):
                parts.append(op["description"].strip() + "\n")
            for param in op.get("parameters", []):
                where, name = param.get("in", ""), param.get("name", "")
                text = param.get("description", "")
                parts.append(f"- {where} parameter `{name}`: {text}")
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                schema = json.dumps(body.get("schema", {}), indent=2)
                parts.append(f"\nRequest body (JSON):\n\n```json\n{schema}\n```\n")
            answers = ", ".join(f"`{code}`" for code in op.get("responses", {}))
            if answers:
                parts.append(f"\nAnswers: {answers}\n")
    return "\n".join(rows) + "\n\n" + "\n".join(parts)


def configuration_reference() -> str:
    """Every key of agent.toml's fixed sections: type, default and bounds, from the settings
    dataclasses (used when no generated docs/configuration.md is committed)."""
    from starpod_cron.config import (
        ExecutorConfig,
        GatewayConfig,
        MaintenanceConfig,
        StoreConfig,
        TelegramConfig,
    )
    from starpod_cron.settings import SchedulerSettings, StoreSettings

    classes: dict[str, tuple[type[Any], ...]] = {
        "cron": (StoreSettings, SchedulerSettings),
        "store": (StoreConfig,),
        "executor": (ExecutorConfig,),
        "gateway": (GatewayConfig,),
        "telegram": (TelegramConfig,),
        "maintenance": (MaintenanceConfig,),
    }
    out = [
        "# Configuration reference\n",
        "Every key of the fixed sections of `agent.toml`, generated from the settings "
        "dataclasses (`starpod_cron/settings.py`, `starpod_cron/config.py`). How the file is "
        "read: [The config file](config-file.md).\n",
    ]
    for section in FIXED_SECTIONS:
        out.append(f"## `[{section}]`\n")
        out.append("| Key | Type | Default | Bounds |\n| --- | --- | --- | --- |")
        for cls in classes[section]:
            hints = typing.get_type_hints(cls)
            for f in dataclasses.fields(cls):
                if f.name.startswith("_") or not f.init:
                    continue
                rule = f.metadata.get("rule")
                bounds = _bounds(rule)
                hint = hints[f.name]
                kind = hint.__name__ if isinstance(hint, type) else str(hint)
                kind = kind.replace("typing.", "").replace("|", "or")
                out.append(f"| `{f.name}` | `{kind}` | `{_default(f)}` | {bounds} |")
        out.append("")
    return "\n".join(out)


def _bounds(rule: object) -> str:
    """A rule of starpod_cron/bounds.py in words."""
    from starpod_cron.bounds import Each, Identity, Within

    if isinstance(rule, Within):
        return rule.describe()
    if isinstance(rule, Each):
        return f"{rule.min_items}-{rule.max_items} values, each {rule.item.describe()}"
    if isinstance(rule, Identity):
        return f"a name of at most {rule.max_chars} characters"
    return ""


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value: object = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
