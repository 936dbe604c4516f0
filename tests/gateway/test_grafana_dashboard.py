"""docs/grafana-dashboard.json: every metric its PromQL names is one a live gateway's /metrics
serves (a real gateway that ran jobs, scraped over HTTP), so a renamed metric breaks this
test rather than a user's dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import eventually
from tests.gateway.conftest import config, running_gateway

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana-dashboard.json"
ROOT = {"Authorization": "Bearer root-token-0123456789"}
KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"}
    | {"group_left", "group_right"}
)
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_WORD = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: every identifier that is not a function
    or aggregation (followed by ``(``), a keyword, a label (inside ``{}`` or a grouping) or
    a range/duration (inside ``[]``)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = _GROUPING.sub("", expr)
    names = set()
    for match in _WORD.finditer(expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group() in KEYWORDS:
            continue
        names.add(match.group())
    return names


def expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every panel target's expr, and the metric of each label_values() variable."""
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else None
        if text and (m := re.fullmatch(r"label_values\((\w+)\s*,\s*\w+\)", text)):
            found.append(m.group(1))
    return found


def test_the_extractor_finds_metrics_and_skips_functions_labels_and_ranges() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{job=~"x|y", le!="1"}[5m]))) '
        "/ on (instance) group_left b_total > bool 0 or max without (kind) (c)"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def _served(text: str) -> set[str]:
    """The series names /metrics serves, and those its families would (a counter family with
    no sample yet still says its type: ``_total``; a histogram ``_bucket``/``_sum``/``_count``)."""
    names: set[str] = set()
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    for family in text_string_to_metric_families(text):
        names |= {s.name for s in family.samples}
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
    return names


async def test_every_metric_of_the_grafana_dashboard_is_served(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    found = [metric_names(e) for e in expressions(dashboard)]
    assert all(found), "every expression reads a metric"
    wanted = set().union(*found)
    assert {"starpod_cron_runs_total", "starpod_cron_run_lateness_seconds_bucket"} <= wanted
    assert {"starpod_cron_runs_in_flight", "starpod_cron_deliveries"} <= wanted

    async with running_gateway(config(tmp_path), str(tmp_path / "grafana.db")) as gw:
        base = f"http://127.0.0.1:{gw.http_port}"
        async with httpx.AsyncClient(base_url=base, headers=ROOT) as client:
            job = {"name": "g", "prompt": "hello", "every": "1h"}
            assert (await client.post("/api/jobs", json=job)).status_code == 200
            assert (await client.post("/api/jobs/g/run")).status_code == 200

            async def scraped() -> set[str]:
                served = _served((await client.get("/metrics")).text)
                return served if "starpod_cron_runs_total" in served else set()

            served = await eventually(scraped)
    missing = sorted(wanted - served)
    assert not missing, f"the dashboard reads metrics /metrics does not serve: {missing}"
