"""The conformance cases: one JSON file per adapter in `cases/`, naming its fixtures (under
contracts/providers/fixtures) and what each must translate to. The suite (test_conformance.py)
runs every case of every adapter in `ADAPTERS`; a new adapter joins with fixtures and one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_common.messages import Usage

CASES_DIR = Path(__file__).parent / "cases"


class Call(msgspec.Struct, forbid_unknown_fields=True):
    """How the adapter is called: the provider's upstream model, base URL and credential."""

    model: str
    base_url: str
    credential: dict[str, Any]
    auth_header: str  # where the credential's key goes, e.g. "x-api-key"
    auth_prefix: str = ""  # e.g. "Bearer "


class RequestCase(msgspec.Struct, forbid_unknown_fields=True):
    fixture: str  # an OpenAI chat request body (the client's), under fixtures/
    url: str  # the upstream URL of the JSON request
    stream_url: str  # and of the streaming one


class Answer(msgspec.Struct, forbid_unknown_fields=True):
    """What the client must see of a translated answer, and the normalised usage."""

    content: str | None = None  # the joined text of the (first) choice
    finish_reason: str | None = None
    tool_calls: list[str] = []  # function names, in order
    usage: Usage | None = None


class ResponseCase(msgspec.Struct, forbid_unknown_fields=True):
    fixture: str
    answer: Answer | None = None  # the OpenAI answer, or
    error: FailureClass | None = None  # the failure a 200 body reports (a blocked prompt)


class StreamCase(msgspec.Struct, forbid_unknown_fields=True):
    fixture: str
    answer: Answer | None = None  # what the chunks add up to, or
    error: FailureClass | None = None  # the in-band error that ends it
    error_after_content: bool = False  # whether content reached the client before the error


class ErrorCase(msgspec.Struct, forbid_unknown_fields=True):
    fixture: str
    status: int
    failure_class: FailureClass
    provider_code: str
    retry_after_s: float = 0.0


class AdapterCases(msgspec.Struct, forbid_unknown_fields=True):
    adapter: str
    fixture_dirs: list[str]  # every response, stream and error fixture in these must have a case
    call: Call
    requests: list[RequestCase]
    responses: list[ResponseCase]
    streams: list[StreamCase]
    errors: list[ErrorCase]


def load_cases() -> dict[str, AdapterCases]:
    cases = [msgspec.json.decode(p.read_bytes(), type=AdapterCases) for p in sorted(CASES_DIR.glob("*.json"))]
    return {c.adapter: c for c in cases}
