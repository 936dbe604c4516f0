"""``/openapi.json``: the JSON API as OpenAPI 3.1, generated from the endpoints' declarations
(:data:`gateway.api.ENDPOINTS`), whose parameters and bodies are the agent tools' own JSON
schemas (:mod:`starpod_cron.tools`): a field added to a tool appears here, in the API and in
every other front end at once. Each tool's operation has the tool's name as ``operationId``.
"""

from __future__ import annotations

from typing import Any

from starpod_cron.tools import TOOLS

from .api import ENDPOINTS, Endpoint

ERRORS = {
    "400": "Invalid input (the message says what to change)",
    "401": "Invalid or missing token",
    "403": "Not allowed: a per-user limit, admins only, or the login cookie without its tab "
    "secret (X-Starpod-CSRF)",
    "404": "No such job (or not yours)",
    "409": "A job of that name exists, or the job is running",
    "503": "The store is unavailable; try again",
}


def operation(endpoint: Endpoint) -> dict[str, Any]:
    """One endpoint's OpenAPI operation."""
    json: dict[str, Any] = {"application/json": {"schema": {}}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": json}}
    responses.update({code: {"description": text} for code, text in ERRORS.items()})
    found: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "responses": responses,
    }
    if endpoint.tool is not None:
        found["description"] = TOOLS[endpoint.tool].description
    parameters = [
        {"name": p.name, "in": p.where, "required": p.required, "schema": p.schema}
        for p in endpoint.parameters()
    ]
    if parameters:
        found["parameters"] = parameters
    body = endpoint.body_schema()
    if body is not None:
        found["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return found


def openapi_document() -> dict[str, Any]:
    """The API as OpenAPI 3.1."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "starpod-cron", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
