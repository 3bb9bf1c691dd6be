"""The building blocks of the OpenAPI document (openapi.py): operations, replies, examples.

An `Operation` describes one route; its request and response bodies name the msgspec types the
handlers decode and encode, so the schemas are generated from them. Error examples are produced
by the same functions the handlers call (`openai_error_body`, `bad_body`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from keyrail_common.errors import openai_error_body
from keyrail_common.failures import error_type_for
from keyrail_ingress.responses import bad_body

# --- Structs for bodies that are not built from a Struct ----------------------------------------


class Error(msgspec.Struct):
    """What went wrong, in OpenAI's error shape."""

    message: Annotated[str, Meta(description="What went wrong and, where possible, what to do.")]
    type: Annotated[
        str,
        Meta(
            description="`invalid_request_error` (400, 413), `authentication_error` (401), "
            "`permission_error` (403), `not_found_error` (404), `rate_limit_error` (429), "
            "`api_error` (5xx), or the upstream's own type."
        ),
    ]
    param: Annotated[str | None, Meta(description="The request field or header at fault, if any.")]
    code: Annotated[str | None, Meta(description="A stable machine-readable code, e.g. `invalid_api_key`.")]


class ErrorResponse(msgspec.Struct):
    """The body of every 4xx/5xx answer (keyrail_common.errors.error_body), as OpenAI sends it."""

    error: Error


# --- the operation table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """One media type of a body: a msgspec type (schema generated) or a literal schema."""

    example: Any
    type: Any = None
    schema: Mapping[str, Any] | None = None
    media_type: str = "application/json"


@dataclass(frozen=True)
class Reply:
    description: str
    content: tuple[Content, ...] = ()
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    tag: str
    summary: str
    auth: Literal["gateway", "admin", "none"]
    responses: Mapping[int, Reply]
    description: str = ""
    parameters: tuple[Mapping[str, Any], ...] = ()
    request: Content | None = None
    request_description: str = ""
    external_docs: str = ""
    extra_types: tuple[Any, ...] = field(default=())  # schemas referenced only from prose
    permission: str = ""  # the admin route's rule in the RBAC table (rbac.py)


def error_example(status: int, message: str, code: str | None = None, param: str | None = None) -> Any:
    return json.loads(openai_error_body(message, error_type_for(status), param, code))


def bad_body_example(kind: type, body: bytes) -> Any:
    """The 400 the admin API answers for `body`, produced by the handlers' own decoding."""
    try:
        msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        return json.loads(bytes(bad_body(exc).body))
    raise AssertionError(f"{body!r} is a valid {kind.__name__}")


def _is_default(f: msgspec.structs.FieldInfo, value: Any) -> bool:
    if f.default is not msgspec.NODEFAULT:
        return bool(value == f.default)
    if f.default_factory is not msgspec.NODEFAULT:
        return bool(value == f.default_factory())
    return False


def request_body(body: msgspec.Struct) -> Content:
    """A request body example as a client would write it: fields left at their default omitted."""
    example = {}
    for f in msgspec.structs.fields(body):
        value = getattr(body, f.name)
        if not _is_default(f, value):
            example[f.encode_name] = msgspec.to_builtins(value)
    return Content(example, type(body))


def error_reply(description: str, example: Any, headers: tuple[str, ...] = ()) -> Reply:
    return Reply(description, (Content(example, ErrorResponse),), headers)


def json_reply(description: str, kind: Any, example: Any) -> Reply:
    return Reply(description, (Content(msgspec.to_builtins(example), kind),))


ERROR_500 = error_reply(
    "Keyrail itself failed; the error is logged.",
    error_example(500, "Keyrail failed to handle this request; the error is logged.", "internal_error"),
)


def query_parameter(
    name: str, description: str, schema: Mapping[str, Any], example: Any
) -> Mapping[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": dict(schema),
        "example": example,
    }
