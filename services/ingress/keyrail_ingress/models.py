"""`GET /v1/models`: what the caller's project can route, in OpenAI's list shape.

Built from the same scope rules the router enforces (keyrail_common.routable), so the list never
offers a model the router would refuse: every enabled catalog model of every in-scope
integration as `<provider-slug>/<model>`, and once each as `<provider>/<model>`; every custom
model of every in-scope integration as `<provider-slug>/<model_slug>`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response

from keyrail_common.routable import routable_custom_models, routable_models
from keyrail_ingress.auth import api_key_for, key_refusal
from keyrail_ingress.context import IngressContext
from keyrail_ingress.responses import error_response, json_response


class Model(msgspec.Struct):
    """One model string the key can send as `model`."""

    id: Annotated[str, Meta(examples=["openai-dev-mock/gpt-4o-mini", "openai/gpt-4o-mini"])]
    owned_by: Annotated[str, Meta(description="The provider slug, or the provider for `<provider>/<model>`.")]
    object: Literal["model"] = "model"
    created: Annotated[int, Meta(description="Always 0: the catalog records no creation dates.")] = 0


class ModelList(msgspec.Struct):
    """OpenAI's ListModelsResponse."""

    data: list[Model]
    object: Literal["list"] = "list"


def list_project_models(ctx: IngressContext, project_id: str) -> ModelList:
    models: list[Model] = []
    generic: dict[str, Model] = {}
    state = ctx.projection.state
    for model_string, entry, integration in routable_models(state, project_id):
        models.append(Model(id=model_string, owned_by=integration.provider_slug))
        generic.setdefault(entry.id, Model(id=entry.id, owned_by=entry.provider))
    custom = [
        Model(id=model_string, owned_by=integration.provider_slug)
        for model_string, _, integration in routable_custom_models(state, project_id)
    ]
    return ModelList(data=models + custom + sorted(generic.values(), key=lambda m: m.id))


async def list_models(request: Request) -> Response:
    ctx: IngressContext = request.app.state.ctx
    key = api_key_for(ctx.projection.state, request)
    if key is None:
        return error_response(key_refusal(ctx.projection.state, request))
    return json_response(list_project_models(ctx, key.project_id))
