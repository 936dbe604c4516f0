"""Every run status (``held`` too) is one the front ends know: a colour on the dashboard, a
choice of the HTTP API's ``status`` filter and of ``jobs history --status``."""

from __future__ import annotations

from pathlib import Path

from gateway.api import ENDPOINTS
from starpod_cron import RunStatus
from starpod_cron.cli.parser import run_statuses

WEB = Path(__file__).resolve().parents[2] / "gateway" / "web"


def test_every_status_has_a_colour_on_the_dashboard() -> None:
    css = (WEB / "app.css").read_text()
    missing = [s.value for s in RunStatus if f".status-{s.value}" not in css]
    assert missing == []


def test_the_cli_and_the_api_filter_by_every_status() -> None:
    assert [s.value for s in RunStatus] == run_statuses() and "held" in run_statuses()
    enums = [
        p.schema.get("enum")
        for e in ENDPOINTS
        for p in getattr(e, "params", ())
        if p.name == "status" and p.schema.get("enum") and "success" in p.schema["enum"]
    ]
    assert enums and all("held" in values for values in enums)
