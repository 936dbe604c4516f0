"""/openapi.json is generated from the agent tools' JSON schemas (gateway/openapi.py from
gateway/api.py's declarations): every tool is one operation whose path, query and body
fields are exactly the tool's input schema; and what the document declares is what the API
enforces. A real gateway on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from starpod_cron.tools import TOOLS
from tests.gateway.conftest import config, running_gateway

ROOT = {"Authorization": "Bearer root-token-0123456789"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(config(tmp_path), str(tmp_path / "api.db")) as gw:
        base = f"http://127.0.0.1:{gw.http_port}"
        async with httpx.AsyncClient(base_url=base, headers=ROOT) as client:
            yield client


def _operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        op["operationId"]: (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }


async def test_every_tools_input_schema_is_an_operation_of_the_document(
    api: httpx.AsyncClient,
) -> None:
    spec = (await api.get("/openapi.json")).json()
    operations = _operations(spec)
    for name, tool in TOOLS.items():
        assert name in operations, f"{name} is not in /openapi.json"
        _, path, op = operations[name]
        fields: dict[str, Any] = {}
        required: set[str] = set()
        for param in op.get("parameters", []):
            fields[param["name"]] = param["schema"]
            if param["required"]:
                required.add(param["name"])
            if param["in"] == "path":
                assert f"{{{param['name']}}}" in path
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            schema = body["schema"]
            assert schema["additionalProperties"] is False
            overlap = set(fields) & set(schema["properties"])
            assert not overlap, (name, overlap)
            fields.update(schema["properties"])
            required |= set(schema.get("required", []))
        assert fields == tool.parameters["properties"], name
        assert required == set(tool.parameters.get("required", [])), name
        assert op["description"] == tool.description


async def test_the_api_enforces_the_bounds_the_document_declares(api: httpx.AsyncClient) -> None:
    """Every integer query parameter of every GET, one past its maximum and one below its
    minimum: 400 ``invalid`` (the document and the checks are one declaration)."""
    made = await api.post("/api/jobs", json={"name": "j", "prompt": "p", "every": "1h"})
    assert made.status_code == 200, made.text
    spec = (await api.get("/openapi.json")).json()
    checked = 0
    for method, path, op in _operations(spec).values():
        if method != "GET":
            continue
        url = path.replace("{name}", "j")
        given = {"expression": "0 9 * * *"} if op["operationId"] == "cron_next" else {}
        assert (await api.get(url, params=given)).status_code == 200, url
        for param in op.get("parameters", []):
            schema = param["schema"]
            if param["in"] != "query" or schema.get("type") != "integer":
                continue
            for value in (schema["maximum"] + 1, schema["minimum"] - 1, "x"):
                answer = await api.get(url, params={**given, param["name"]: str(value)})
                assert answer.status_code == 400, (url, param["name"], value, answer.text)
                assert answer.json()["error"]["code"] == "invalid"
                checked += 1
    assert checked >= 15  # runs/limit, timeline/hours, next/count, job runs/limit, deliveries
