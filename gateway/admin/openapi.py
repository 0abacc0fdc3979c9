"""The admin API's OpenAPI 3.1 document, made from its route table and pydantic models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from gateway.admin.models import Problem
from gateway.admin.routing import Endpoint, JsonBody
from gateway.problems import PROBLEM_JSON

_REF: Final = "#/components/schemas/{model}"

#: What each error status means on any operation that can return it.
_COMMON: Final = {
    400: "The body is not JSON, or is missing.",
    401: "No bearer token, or not a live operator's.",
    404: "Nothing has that id.",
    409: "The registry's state refuses the change.",
    413: "The body is too large.",
    415: "The body is not of the type the operation takes.",
    422: "A parameter or field breaks its schema.",
    503: "The store cannot be reached.",
}


def _errors(endpoint: Endpoint) -> dict[int, str]:
    statuses = {401: _COMMON[401], 503: _COMMON[503]}
    if endpoint.path_model or endpoint.query_model or endpoint.body:
        statuses[422] = _COMMON[422]
    if endpoint.path_model is not None:
        statuses[404] = _COMMON[404]
    if endpoint.body is not None:
        statuses.update({status: _COMMON[status] for status in (400, 413, 415)})
    statuses.update(endpoint.errors)
    return dict(sorted(statuses.items()))


def _parameters(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        # A parameter left out is the null default: the URL has no null to send.
        branches = [b for b in prop.pop("anyOf", ()) if b != {"type": "null"}]
        if len(branches) == 1:
            prop.update(branches[0])
        elif branches:
            prop["anyOf"] = branches
        if prop.get("default", 0) is None:
            del prop["default"]
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}},
    }


def openapi(
    endpoints: Sequence[Endpoint],
    *,
    title: str,
    version: str,
    server: str,
    tags: Mapping[str, str],
    public: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """The document. ``public`` adds operations that need no token (the document itself)."""
    inputs: list[tuple[tuple[str, str], JsonSchemaMode, TypeAdapter[Any]]] = [
        (("problem", ""), "serialization", TypeAdapter(Problem))
    ]
    for endpoint in endpoints:
        inputs.append((("result", endpoint.name), "serialization", endpoint.result))
        if isinstance(endpoint.body, JsonBody):
            inputs.append((("body", endpoint.name), "validation", TypeAdapter(endpoint.body.model)))
    schemas, definitions = TypeAdapter.json_schemas(inputs, ref_template=_REF)

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "operationId": endpoint.name,
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
        }
        if endpoint.description:
            operation["description"] = endpoint.description
        parameters = []
        if endpoint.path_model is not None:
            parameters += _parameters(endpoint.path_model, "path")
        if endpoint.query_model is not None:
            parameters += _parameters(endpoint.query_model, "query")
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            body_schema = (
                schemas[(("body", endpoint.name), "validation")]
                if isinstance(endpoint.body, JsonBody)
                else {"type": "string", "description": "The file, in UTF-8."}
            )
            operation["requestBody"] = {
                "required": endpoint.body.required,
                "content": {endpoint.body.media_type: {"schema": body_schema}},
            }
        responses: dict[str, Any] = {
            str(endpoint.status): {
                "description": "Done." if endpoint.method != "GET" else "Found.",
                "content": {
                    "application/json": {
                        "schema": schemas[(("result", endpoint.name), "serialization")]
                    }
                },
            }
        }
        for status, description in _errors(endpoint).items():
            responses[str(status)] = _problem(description)
        operation["responses"] = responses
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    for path, operations in public.items():
        paths.setdefault(path, {}).update(operations)

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": server}],
        "tags": [{"name": name, "description": text} for name, text in tags.items()],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An operator's token: fng-gateway admin-tokens create NAME.",
                }
            },
        },
    }
