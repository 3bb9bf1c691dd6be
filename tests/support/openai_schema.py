"""Validate payloads against OpenAI's published OpenAPI description (``contracts/openai/openapi.yaml``).

The document is OpenAPI 3.1, whose schemas are JSON Schema 2020-12, with one catch: OpenAI still
writes the OpenAPI 3.0 keyword ``nullable: true`` in ~110 places (e.g. the stream chunk's
``finish_reason`` and ``usage``). JSON Schema ignores unknown keywords, so taken literally those
fields would reject ``null`` and every real stream chunk would fail. We rewrite each
``nullable: true`` schema to ``{"anyOf": [<schema>, {"type": "null"}]}`` once at load time.
``x-*`` extensions, ``discriminator`` and ``format`` (e.g. ``unixtime``) are annotations only.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.support.contracts import CONTRACTS_DIR

SPEC_URI = "urn:keyrail:openai-openapi"


def spec_path() -> Path:
    override = os.environ.get("KEYRAIL_OPENAI_SPEC")
    return Path(override) if override else CONTRACTS_DIR / "openai" / "openapi.yaml"


def _rewrite_nullable(node: Any) -> Any:
    """Return ``node`` with OpenAPI 3.0 ``nullable`` turned into JSON Schema (see module docstring).

    All ``$ref``s in the document point at ``#/components/<kind>/<Name>``, so wrapping nested
    schemas in ``anyOf`` does not break any JSON pointer.
    """
    if isinstance(node, list):
        return [_rewrite_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: _rewrite_nullable(value) for key, value in node.items()}
    # A bool value tells the keyword apart from a property that happens to be named "nullable".
    nullable = rewritten.get("nullable")
    if isinstance(nullable, bool):
        del rewritten["nullable"]
        if nullable:
            return {"anyOf": [rewritten, {"type": "null"}]}
    return rewritten


@functools.cache
def load_spec() -> dict[str, Any]:
    with spec_path().open("rb") as handle:
        document = yaml.load(handle, Loader=yaml.CSafeLoader)
    rewritten: dict[str, Any] = _rewrite_nullable(document)
    return rewritten


@functools.cache
def _registry() -> Registry:
    resource: Resource[Any] = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


@functools.cache
def validator_for(name: str) -> Validator:
    if name not in load_spec()["components"]["schemas"]:
        raise KeyError(f"no schema #/components/schemas/{name} in {spec_path()}")
    schema = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def validate_component(name: str, instance: object) -> None:
    """Raise AssertionError listing every violation if ``instance`` is not a valid ``name``."""
    errors = sorted(validator_for(name).iter_errors(instance), key=lambda error: error.json_path)
    if errors:
        # Messages embed the offending value, which can be a whole response: keep them readable.
        details = "\n".join(f"  at {error.json_path}: {error.message[:300]}" for error in errors)
        raise AssertionError(f"payload does not validate as {name}:\n{details}")
