"""`POST /v1/embeddings`: the embeddings body's own checks, then routing (routing.py), answered
with the upstream's body."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response

from keyrail_common.failures import FailureClass, failure
from keyrail_common.registry import Operation
from keyrail_ingress.context import IngressContext
from keyrail_ingress.request_record import RequestRecord
from keyrail_ingress.routing import accept, answer, route_request


class EmbeddingsRequestHead(msgspec.Struct):
    """The fields the gateway itself reads. Every other field of OpenAI's CreateEmbeddingRequest
    (encoding_format, dimensions, user, ...) passes through to the provider untouched."""

    model: Annotated[
        str,
        Meta(
            description="`<provider-slug>/<model>` or `<provider>/<model>` of an embeddings model.",
            examples=["openai/text-embedding-3-small"],
        ),
    ]
    input: Annotated[
        str | list[Any],
        Meta(description="A string, a list of strings, or token arrays; not empty."),
    ]
    metadata: Annotated[
        dict[str, str] | None,
        Meta(description="A `tags` entry (comma-separated) adds activity-log tags."),
    ] = None


_head_decoder = msgspec.json.Decoder(EmbeddingsRequestHead)


async def embeddings(request: Request) -> Response:
    ctx: IngressContext = request.app.state.ctx
    record = RequestRecord(ctx)
    accepted = await accept(request, ctx, record, _head_decoder)
    if isinstance(accepted, Response):
        return accepted
    head = accepted.head
    if not head.input:
        return record.fail(failure(FailureClass.BAD_REQUEST, "'input' must not be empty.", param="input"))
    route = route_request(ctx, request, record, accepted, head.model, head.metadata, Operation.EMBEDDINGS)
    return await answer(ctx, record, route)
