"""The OpenAPI 3.1 document, built from the same route table that routes requests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.api.endpoints import Endpoint
from web.api.errors import ErrorOut

REF = "#/components/schemas/{model}"

# What every error answer looks like (web.api.errors writes them with this model).
ERROR = {"$ref": REF.format(model=ErrorOut.__name__)}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
        for name in endpoint.path_params
    ]
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema(ref_template=REF)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    return params


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "operationId": f"{endpoint.method.lower()}_{endpoint.handler.__name__}",
        "parameters": _parameters(endpoint),
    }
    if endpoint.roles:
        operation["security"] = [{"bearer": []}, {"session": []}]
        operation["x-roles"] = sorted(role.value for role in endpoint.roles)
    else:
        operation["security"] = []
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(endpoint.body)}},
        }
    ok: dict[str, Any] = {"description": "OK"}
    if endpoint.response is not None:
        ok["content"] = {"application/json": {"schema": _ref(endpoint.response)}}
    responses: dict[str, Any] = {str(endpoint.status): ok}
    if endpoint.repeat_status is not None:
        responses[str(endpoint.repeat_status)] = {**ok, "description": "Done before: the same"}
    statuses = set(endpoint.errors)
    if endpoint.body is not None:
        # 413: a body over the server's size limit, refused before it is read.
        statuses |= {400, 413, 415, 422}
    if endpoint.query is not None:
        statuses.add(422)
    if endpoint.roles:
        statuses |= {401, 403}
    if endpoint.path_params:
        statuses.add(404)
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": "error",
            "content": {"application/json": {"schema": ERROR}},
        }
    operation["responses"] = responses
    return operation


def build_openapi(endpoints: list[Endpoint], *, version: str) -> dict[str, Any]:
    models: dict[str, type[BaseModel]] = {ErrorOut.__name__: ErrorOut}
    for endpoint in endpoints:
        # Query models too: their enums are referenced from the parameters.
        for model in (endpoint.body, endpoint.response, endpoint.query):
            if model is not None:
                models[model.__name__] = model
    _, schema = models_json_schema(
        [(model, "validation") for model in models.values()], ref_template=REF
    )
    schemas: dict[str, Any] = dict(schema.get("$defs", {}))

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {"title": "calldesk API", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "desk_session"},
            },
        },
    }
