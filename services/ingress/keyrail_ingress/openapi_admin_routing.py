"""The admin API in the OpenAPI document: virtual models and gateway configs."""

from __future__ import annotations

from keyrail_ingress.admin_types import (
    AliasTarget,
    ConditionSpec,
    GatewayConfig,
    GatewayConfigChange,
    GatewayConfigList,
    NewGatewayConfig,
    NewVirtualModel,
    RetrySpec,
    TargetSpec,
    VirtualModel,
    VirtualModelChange,
    VirtualModelList,
    WhenSpec,
)
from keyrail_ingress.openapi_admin import (
    EXAMPLE_PROJECT_ID,
    admin_operation,
    not_found_reply,
    path_parameter,
)
from keyrail_ingress.openapi_parts import Operation, error_example, error_reply, json_reply, request_body

_TARGETS = [
    TargetSpec(
        provider_slug="azure-prod-classifier",
        model="gpt-4o-mini",
        timeout_ms=20000,
        retry=RetrySpec(attempts=1, backoff_ms=200),
        override_params={"temperature": 0},
    ),
    TargetSpec(provider_slug="anthropic-prod-general", model="claude-sonnet-4-6"),
]
EXAMPLE_CONFIG = GatewayConfig(
    id="classifier-chain",
    project_scope=[EXAMPLE_PROJECT_ID],
    strategy="fallback",
    targets=_TARGETS,
    fallback_on=[429, 500, 502, 503, 504, 529, "timeout", "connection", 401, 403],
    conditions=[],
    default_target=0,
    version=31,
)
EXAMPLE_VIRTUAL_MODEL = VirtualModel(
    alias="classifier",
    project_scope=[EXAMPLE_PROJECT_ID],
    target=AliasTarget(config="classifier-chain"),
    version=32,
)
_ALIAS = path_parameter("alias", "The virtual model's alias.", EXAMPLE_VIRTUAL_MODEL.alias)
_CONFIG = path_parameter("config_id", "The gateway config's id.", EXAMPLE_CONFIG.id)
_VM_404 = not_found_reply(f"virtual model '{EXAMPLE_VIRTUAL_MODEL.alias}'", "/virtual-models")
_CONFIG_404 = not_found_reply(f"gateway config '{EXAMPLE_CONFIG.id}'", "/configs")
_VM_400 = error_reply(
    "Invalid body or value (alias format, unknown project, integration or model, unknown config); "
    "`param` names the field.",
    error_example(
        400,
        "Integration 'azure-prod-classifer' does not exist. GET /admin/v1/integrations lists them.",
        "invalid_value",
        "target.provider_slug",
    ),
)
_CONFIG_400 = error_reply(
    "Invalid body or value (id format, unknown integration, model or nested config, a cycle between "
    "configs, a weight that is not positive, a condition or default_target naming no target, an "
    "unknown fallback_on entry); `param` names the field as a path into the body.",
    error_example(
        400,
        "Nesting would form a cycle: classifier-chain -> general-chain -> classifier-chain. A config "
        "may not lead back to itself.",
        "invalid_value",
        "targets[2].config",
    ),
)
_CONFIG_DESCRIPTION = (
    "`fallback` tries the targets in order; `loadbalance` picks one at random by weight, then falls "
    "back to the others heaviest first; `conditional` takes the target of the first condition that "
    "matches (tags from `x-keyrail-tags` or `metadata.tags`, the model string, `stream`), else "
    "`default_target`. Targets may nest configs, to any depth without cycles. Clients use a config "
    "with `x-keyrail-config: <id>` or through a virtual model; it is routable when the call returns."
)

ROUTING_OPERATIONS: tuple[Operation, ...] = (
    admin_operation(
        "POST",
        "/admin/v1/virtual-models",
        "createVirtualModel",
        "Routing",
        "Create a virtual model",
        "virtual_model.create",
        (201, json_reply("The new virtual model.", VirtualModel, EXAMPLE_VIRTUAL_MODEL)),
        description="An alias clients send as `model`; it routes to an integration + model or to a "
        "gateway config, from the moment the call returns.",
        request=request_body(
            NewVirtualModel(
                alias="classifier",
                project_scope=[EXAMPLE_PROJECT_ID],
                target=AliasTarget(config="classifier-chain"),
            )
        ),
        errors={
            400: _VM_400,
            409: error_reply(
                "The alias exists.",
                error_example(
                    409,
                    "Virtual model 'classifier' already exists: replace it with PUT, or pick another.",
                    "conflict",
                    "alias",
                ),
            ),
        },
    ),
    admin_operation(
        "GET",
        "/admin/v1/virtual-models",
        "listVirtualModels",
        "Routing",
        "List virtual models",
        "virtual_model.list",
        (
            200,
            json_reply(
                "The virtual models the caller may see.",
                VirtualModelList,
                VirtualModelList(data=[EXAMPLE_VIRTUAL_MODEL], next_cursor=None),
            ),
        ),
    ),
    admin_operation(
        "GET",
        "/admin/v1/virtual-models/{alias}",
        "getVirtualModel",
        "Routing",
        "Read a virtual model",
        "virtual_model.read",
        (200, json_reply("The virtual model.", VirtualModel, EXAMPLE_VIRTUAL_MODEL)),
        parameters=(_ALIAS,),
        errors={404: _VM_404},
    ),
    admin_operation(
        "PUT",
        "/admin/v1/virtual-models/{alias}",
        "replaceVirtualModel",
        "Routing",
        "Replace a virtual model",
        "virtual_model.update",
        (200, json_reply("The virtual model as it is now.", VirtualModel, EXAMPLE_VIRTUAL_MODEL)),
        description="Scope and target are replaced whole, checked as at creation.",
        parameters=(_ALIAS,),
        request=request_body(
            VirtualModelChange(
                project_scope=[EXAMPLE_PROJECT_ID],
                target=AliasTarget(provider_slug="azure-prod-classifier", model="gpt-4o-mini"),
                version=32,
            )
        ),
        errors={400: _VM_400, 404: _VM_404},
        versioned="virtualmodel",
    ),
    admin_operation(
        "DELETE",
        "/admin/v1/virtual-models/{alias}",
        "deleteVirtualModel",
        "Routing",
        "Delete a virtual model",
        "virtual_model.delete",
        (200, json_reply("The virtual model as it was.", VirtualModel, EXAMPLE_VIRTUAL_MODEL)),
        description="From then on the alias is resolved like any other model string.",
        parameters=(_ALIAS,),
        errors={404: _VM_404},
        versioned="virtualmodel",
    ),
    admin_operation(
        "POST",
        "/admin/v1/configs",
        "createGatewayConfig",
        "Routing",
        "Create a gateway config",
        "config.create",
        (201, json_reply("The new gateway config.", GatewayConfig, EXAMPLE_CONFIG)),
        description=_CONFIG_DESCRIPTION,
        request=request_body(
            NewGatewayConfig(
                id="classifier-chain",
                project_scope=[EXAMPLE_PROJECT_ID],
                strategy="fallback",
                targets=_TARGETS,
                fallback_on=EXAMPLE_CONFIG.fallback_on,
            )
        ),
        errors={
            400: _CONFIG_400,
            409: error_reply(
                "The id exists.",
                error_example(
                    409,
                    "Gateway config 'classifier-chain' already exists: replace it with PUT, or pick another.",
                    "conflict",
                    "id",
                ),
            ),
        },
    ),
    admin_operation(
        "GET",
        "/admin/v1/configs",
        "listGatewayConfigs",
        "Routing",
        "List gateway configs",
        "config.list",
        (
            200,
            json_reply(
                "The gateway configs the caller may see.",
                GatewayConfigList,
                GatewayConfigList(data=[EXAMPLE_CONFIG], next_cursor=None),
            ),
        ),
    ),
    admin_operation(
        "GET",
        "/admin/v1/configs/{config_id}",
        "getGatewayConfig",
        "Routing",
        "Read a gateway config",
        "config.read",
        (200, json_reply("The gateway config.", GatewayConfig, EXAMPLE_CONFIG)),
        parameters=(_CONFIG,),
        errors={404: _CONFIG_404},
    ),
    admin_operation(
        "PUT",
        "/admin/v1/configs/{config_id}",
        "replaceGatewayConfig",
        "Routing",
        "Replace a gateway config",
        "config.update",
        (200, json_reply("The gateway config as it is now.", GatewayConfig, EXAMPLE_CONFIG)),
        description="Replaced whole, checked as at creation; every following request routes by it.",
        parameters=(_CONFIG,),
        request=request_body(
            GatewayConfigChange(
                project_scope=[EXAMPLE_PROJECT_ID],
                strategy="conditional",
                targets=_TARGETS,
                conditions=[ConditionSpec(when=WhenSpec(tags=["batch"]), target=1)],
                default_target=0,
                version=31,
            )
        ),
        errors={400: _CONFIG_400, 404: _CONFIG_404},
        versioned="gatewayconfig",
    ),
    admin_operation(
        "DELETE",
        "/admin/v1/configs/{config_id}",
        "deleteGatewayConfig",
        "Routing",
        "Delete a gateway config",
        "config.delete",
        (200, json_reply("The gateway config as it was.", GatewayConfig, EXAMPLE_CONFIG)),
        description="Refused while another config or a virtual model routes to it.",
        parameters=(_CONFIG,),
        errors={
            404: _CONFIG_404,
            409: error_reply(
                "Still used by other configs or virtual models (named), or changed since the version sent.",
                error_example(
                    409,
                    "Gateway config 'classifier-chain' is still used by virtual model 'classifier': "
                    "change or delete those first. Nothing was deleted.",
                    "config_in_use",
                ),
            ),
        },
        versioned="gatewayconfig",
    ),
)
