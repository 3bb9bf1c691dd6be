"""Helpers for the tests of the ingress's OpenAPI document: routes served, schema validation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import fastapi.routing
import jsonschema
from fastapi import FastAPI
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.routing import BaseRoute

DOCUMENT_URI = "urn:keyrail:ingress-openapi"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _flat_routes(routes: Sequence[BaseRoute]) -> Iterator[Any]:
    """Every route, with included routers expanded (FastAPI >= 0.137 keeps them as a tree)."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    yield from iterate(routes) if iterate is not None else routes


def served_routes(api: FastAPI, data_plane: Mapping[str, Any]) -> tuple[set[tuple[str, str]], list[Any]]:
    """(method, path) of every route the ingress serves as an API operation, and the routes kept
    out of the schema (FastAPI routes with include_in_schema=False)."""
    served = {("POST", path) for path in data_plane}  # the fast path takes POSTs only
    hidden = []
    for route in _flat_routes(api.routes):
        if not getattr(route, "include_in_schema", True):
            hidden.append(route)
            continue
        for method in route.methods or ():
            served.add((method, route.path.replace(":path}", "}")))  # a path converter is documented plain
    return served, hidden


def documented_operations(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def pointer(*parts: str | int) -> str:
    """A JSON pointer into the document (RFC 6901 escaping)."""
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def validator(document: Mapping[str, Any], at: str) -> jsonschema.protocols.Validator:
    """A JSON Schema 2020-12 validator for the schema at pointer `at`, whose `$ref`s resolve
    inside the document (OpenAPI 3.1 schemas are JSON Schema 2020-12)."""
    resource: Resource[Any] = Resource.from_contents(dict(document), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    return jsonschema.Draft202012Validator({"$ref": DOCUMENT_URI + at}, registry=registry)


def validate(document: Mapping[str, Any], at: str, instance: Any) -> None:
    errors = sorted(validator(document, at).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{at}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


def operation_for(document: Mapping[str, Any], method: str, path: str) -> Mapping[str, Any]:
    operation: Mapping[str, Any] = document["paths"][path][method.lower()]
    return operation


def response_schema_pointer(method: str, path: str, status: int, media_type: str = "application/json") -> str:
    return pointer("paths", path, method.lower(), "responses", str(status), "content", media_type, "schema")
