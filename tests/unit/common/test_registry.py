"""The provider registry: the shipped `providers.json`, operator overrides, credential validation."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import pytest

from keyrail_common.registry import (
    AdapterInfo,
    CredentialError,
    CredentialField,
    CredentialKind,
    Operation,
    ProviderEntry,
    ProviderRegistry,
    Quirks,
    RegistryError,
    load_registry,
)
from tests.support.vertex import service_account

REGISTRY = load_registry()

# SPEC §2, "Providers (all must work)": the display name there → the registry's name.
SPEC_PROVIDERS = {
    "OpenAI": "openai",
    "Anthropic": "anthropic",
    "Google AI Studio": "gemini",
    "Google Vertex AI": "vertex",
    "Microsoft Azure OpenAI": "azure",
    "Groq": "groq",
    "DeepInfra": "deepinfra",
    "Together AI": "together",
    "Fireworks AI": "fireworks",
    "xAI": "xai",
    "Perplexity": "perplexity",
    "Baseten": "baseten",
    "Minimax": "minimax",
    "Moonshot": "moonshot",
    "Nebius": "nebius",
    "FAL AI": "fal",
    "Pollo AI": "pollo",
}

# Base URLs from provider reference §2 and §3 (Nebius is written there with a trailing slash).
REFERENCE_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "together": "https://api.together.xyz/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "xai": "https://api.x.ai/v1",
    "perplexity": "https://api.perplexity.ai",
    "baseten": "https://inference.baseten.co/v1",
    "minimax": "https://api.minimax.io/v1",
    "moonshot": "https://api.moonshot.ai/v1",
    "nebius": "https://api.tokenfactory.nebius.com/v1/",
}
OPENAI_COMPATIBLE = sorted(set(REFERENCE_BASE_URLS) - {"openai"})

SECRET = "sk-live-DO-NOT-ECHO-0123456789"


def entry(name: str) -> ProviderEntry:
    found = REGISTRY.get(name)
    assert found is not None, f"no provider '{name}' in the registry"
    return found


def raw_registry() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(
        resources.files("keyrail_common").joinpath("providers.json").read_text(encoding="utf-8")
    )
    return raw


def override(tmp_path: Path, content: object) -> str:
    path = tmp_path / "providers-override.json"
    path.write_text(json.dumps(content))
    return str(path)


# --- the shipped registry ------------------------------------------------------------------------


def test_the_shipped_registry_loads_with_unique_provider_names() -> None:
    names = [p["name"] for p in raw_registry()["providers"]]

    assert len(names) == len(set(names))  # the registry keys by name: a duplicate would hide one
    assert REGISTRY.names() == sorted(names)
    assert [e.name for e in REGISTRY.entries()] == REGISTRY.names()


@pytest.mark.parametrize(("spec_name", "name"), sorted(SPEC_PROVIDERS.items()))
def test_every_spec_provider_is_in_the_registry(spec_name: str, name: str) -> None:
    provider = entry(name)

    assert provider.display_name
    assert provider.credentials, f"{spec_name} has no credential fields"
    assert provider.adapter in REGISTRY.adapters


def test_custom_hosts_speak_the_three_formats_of_the_spec() -> None:
    # SPEC §2 "Custom host": any provider + a custom base URL, API format openai, anthropic or cohere.
    assert set(REGISTRY.custom_host_formats) == {"openai", "anthropic", "cohere"}
    assert set(REGISTRY.custom_host_formats) <= set(REGISTRY.adapters)


def test_the_openai_compatible_family_is_the_reference_list() -> None:
    family = {e.name for e in REGISTRY.entries() if e.adapter == "openai"}

    assert family == set(REFERENCE_BASE_URLS)


@pytest.mark.parametrize("name", sorted(REFERENCE_BASE_URLS))
def test_default_base_urls_are_the_reference_ones(name: str) -> None:
    assert entry(name).base_url.rstrip("/") == REFERENCE_BASE_URLS[name].rstrip("/")


@pytest.mark.parametrize("name", sorted(REFERENCE_BASE_URLS))
def test_openai_compatible_providers_take_a_bearer_api_key_and_serve_chat(name: str) -> None:
    provider = entry(name)

    assert [(f.name, f.kind, f.required) for f in provider.credentials] == [
        ("api_key", CredentialKind.STRING, True)
    ]
    assert (provider.quirks.auth_header, provider.quirks.auth_scheme) == ("Authorization", "Bearer ")
    assert Operation.CHAT in provider.operations


def test_credential_shapes_of_the_providers_that_need_more_than_an_api_key() -> None:
    fields = {name: {(f.name, f.kind) for f in entry(name).credentials} for name in ("vertex", "azure")}

    assert fields["vertex"] == {
        ("service_account_json", CredentialKind.GOOGLE_SERVICE_ACCOUNT),
        ("region", CredentialKind.GOOGLE_LOCATION),
    }
    assert fields["azure"] == {
        ("api_key", CredentialKind.STRING),
        ("resource_name", CredentialKind.STRING),
        ("api_version", CredentialKind.STRING),
        ("deployments", CredentialKind.STRING_MAP),
    }


def test_quirks_of_the_openai_compatible_family_and_none_for_openai() -> None:
    assert entry("groq").quirks.drop_params == {"logprobs", "logit_bias", "top_logprobs"}
    assert entry("groq").quirks.drop_message_fields == {"name"}
    assert entry("groq").quirks.usage_envelope == "x_groq"
    assert entry("perplexity").quirks.drop_params == {"tools", "tool_choice"}
    assert entry("minimax").quirks.drop_params == {"n"}
    assert entry("minimax").quirks.temperature_range == (0.01, 1.0)
    assert entry("xai").quirks.model_drop_params["grok-4.20-"] == {"reasoning_effort"}
    assert entry("xai").quirks.model_drop_params["grok-4-1-fast-reasoning"] == {
        "presence_penalty",
        "frequency_penalty",
        "stop",
    }
    assert entry("openai").quirks == Quirks()


@pytest.mark.parametrize("name", ["fal", "pollo"])
def test_media_providers_offer_no_chat(name: str) -> None:
    assert Operation.CHAT not in entry(name).operations


def test_operations_of_some_providers() -> None:
    assert entry("openai").operations == {Operation.CHAT, Operation.EMBEDDINGS, Operation.MODELS}
    assert Operation.EMBEDDINGS not in entry("groq").operations
    assert entry("perplexity").operations == {Operation.CHAT}


def test_unknown_providers_are_none() -> None:
    assert REGISTRY.get("nosuchprovider") is None
    assert "nosuchprovider" not in REGISTRY.names()


# --- pools and adapters --------------------------------------------------------------------------


def test_pools_are_the_available_adapters() -> None:
    available = sorted(a for a, info in REGISTRY.adapters.items() if info.available)

    assert REGISTRY.pools() == available
    assert "openai" in REGISTRY.pools()
    assert REGISTRY.pools(available_only=False) == sorted(REGISTRY.adapters)
    assert set(REGISTRY.pools()) <= set(REGISTRY.pools(available_only=False))


def test_is_available() -> None:
    for adapter, info in REGISTRY.adapters.items():
        assert REGISTRY.is_available(adapter) is info.available
    assert REGISTRY.is_available("nosuchadapter") is False


@pytest.mark.parametrize(
    ("provider", "custom_host", "api_format", "expected"),
    [
        ("anthropic", "", "openai", "anthropic"),  # no custom host: api_format is ignored
        ("gemini", "", "openai", "gemini"),
        ("azure", "", "openai", "azure"),
        ("vertex", "", "openai", "vertex"),
        ("fal", "", "openai", "media"),
        ("openai", "https://llm.example.com/v1", "anthropic", "anthropic"),
        ("anthropic", "https://proxy.example.com", "openai", "openai"),
        ("together", "https://cohere-like.example.com", "cohere", "cohere"),
        ("groq", "https://groq-proxy.example.com/openai/v1", "openai", "openai"),
        ("anthropic", "https://proxy.example.com", "", "anthropic"),  # a custom host without a format
    ],
)
def test_adapter_for_custom_hosts_follows_api_format(
    provider: str, custom_host: str, api_format: str, expected: str
) -> None:
    assert REGISTRY.adapter_for(provider, custom_host, api_format) == expected


@pytest.mark.parametrize("provider", sorted(REFERENCE_BASE_URLS))
def test_openai_compatible_providers_use_the_openai_adapter(provider: str) -> None:
    assert REGISTRY.adapter_for(provider, "", "") == "openai"
    assert REGISTRY.adapter_for(provider, "", "anthropic") == "openai"


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("openai", "openai"),
        ("groq", "openai"),
        ("anthropic", "anthropic"),  # a custom host may speak Anthropic's own format
        ("gemini", "openai"),  # no custom host speaks generateContent: OpenAI's
        ("vertex", "vertex"),  # its service account is for Vertex's own API only
        ("azure", "azure"),  # api-key and deployments: a gateway in front of Azure speaks its API
        ("fal", "openai"),
    ],
)
def test_default_api_format(provider: str, expected: str) -> None:
    assert REGISTRY.default_api_format(provider) == expected
    assert REGISTRY.default_api_format(provider) in REGISTRY.api_formats(provider)


def test_vertex_and_azure_custom_hosts_speak_their_own_format_and_the_others_the_three() -> None:
    assert REGISTRY.api_formats("vertex") == ("vertex",)
    assert REGISTRY.adapter_for("vertex", "https://psc.example.internal", "vertex") == "vertex"
    # Regression (Azure custom host silently on the OpenAI adapter): Bearer instead of api-key.
    assert REGISTRY.api_formats("azure") == ("azure",)
    assert REGISTRY.adapter_for("azure", "https://apim.example.internal", "azure") == "azure"
    for provider in ("openai", "anthropic", "gemini"):
        assert REGISTRY.api_formats(provider) == REGISTRY.custom_host_formats


def test_a_provider_cannot_mark_a_format_every_custom_host_speaks_as_its_own() -> None:
    entries = [
        msgspec.structs.replace(e, custom_host_own_format=True) if e.name == "anthropic" else e
        for e in REGISTRY.entries()
    ]
    with pytest.raises(RegistryError, match="'anthropic'"):
        ProviderRegistry(entries, REGISTRY.adapters, REGISTRY.custom_host_formats)


# --- overrides -----------------------------------------------------------------------------------


def test_an_override_replaces_the_base_url_and_nothing_else(tmp_path: Path) -> None:
    path = override(tmp_path, {"groq": {"base_url": "https://egress.internal/groq/v1"}})

    registry = load_registry(path)

    groq = registry.get("groq")
    assert groq is not None
    assert groq.base_url == "https://egress.internal/groq/v1"
    assert groq.quirks == entry("groq").quirks
    assert groq.credentials == entry("groq").credentials
    assert registry.get("openai") == entry("openai")
    assert registry.names() == REGISTRY.names()


def test_overrides_of_several_providers_and_fields(tmp_path: Path) -> None:
    path = override(
        tmp_path,
        {
            "openai": {"base_url": "https://eu.api.openai.example/v1"},
            "together": {"quirks": {"drop_params": ["seed"]}, "display_name": "Together (EU)"},
        },
    )

    registry = load_registry(path)

    openai = registry.get("openai")
    together = registry.get("together")
    assert openai is not None
    assert openai.base_url == "https://eu.api.openai.example/v1"
    assert together is not None
    assert together.quirks.drop_params == {"seed"}
    assert together.display_name == "Together (EU)"


def test_no_override_file_is_the_shipped_registry() -> None:
    assert [e for e in load_registry("").entries()] == REGISTRY.entries()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ({"nosuchprovider": {"base_url": "https://x.example"}}, "nosuchprovider"),
        (["groq"], "must be a JSON object"),
        ("groq", "must be a JSON object"),
        ({"groq": "https://x.example"}, "groq"),
        ({"groq": ["base_url"]}, "groq"),
        ({"groq": {"base_uri": "https://x.example"}}, "base_uri"),  # a typo is an unknown field
        ({"groq": {"base_url": 5}}, "base_url"),
        ({"groq": {"operations": ["chat", "telepathy"]}}, "operations"),
        ({"groq": {"credentials": [{"name": "api_key", "kind": "password"}]}}, "kind"),
        ({"groq": {"adapter": "nosuchadapter"}}, "nosuchadapter"),
        ({"groq": {"quirks": {"drop_parms": ["seed"]}}}, "drop_parms"),
    ],
    ids=[
        "unknown-provider",
        "list",
        "string",
        "provider-not-an-object",
        "provider-a-list",
        "unknown-field",
        "wrong-type",
        "unknown-operation",
        "unknown-credential-kind",
        "unknown-adapter",
        "unknown-quirk",
    ],
)
def test_bad_overrides_are_a_registry_error_naming_the_problem(
    tmp_path: Path, content: object, says: str
) -> None:
    with pytest.raises(RegistryError, match=says):
        load_registry(override(tmp_path, content))


def test_an_unreadable_override_file_is_a_registry_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"

    with pytest.raises(RegistryError, match="cannot read provider overrides"):
        load_registry(str(missing))


def test_an_override_file_that_is_not_json_is_a_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"groq": {"base_url": ')

    with pytest.raises(RegistryError, match="cannot read provider overrides"):
        load_registry(str(path))


def test_an_override_cannot_rename_a_provider(tmp_path: Path) -> None:
    with pytest.raises(RegistryError):
        load_registry(override(tmp_path, {"groq": {"name": "openai"}}))


# --- registry consistency ------------------------------------------------------------------------


def provider(name: str, adapter: str = "openai", *fields: CredentialField) -> ProviderEntry:
    return ProviderEntry(
        name=name,
        display_name=name.title(),
        adapter=adapter,
        base_url=f"https://{name}.example/v1",
        credentials=fields or (CredentialField("api_key", CredentialKind.STRING),),
        operations=frozenset({Operation.CHAT}),
    )


ADAPTERS = {"openai": AdapterInfo(available=True), "anthropic": AdapterInfo(available=False)}


def test_a_registry_without_providers_is_an_error() -> None:
    with pytest.raises(RegistryError, match="no providers"):
        ProviderRegistry([], ADAPTERS, ("openai",))


def test_a_custom_host_format_must_be_an_adapter() -> None:
    with pytest.raises(RegistryError, match="cohere"):
        ProviderRegistry([provider("a")], ADAPTERS, ("openai", "cohere"))


def test_a_provider_must_name_a_known_adapter() -> None:
    with pytest.raises(RegistryError, match="gemini"):
        ProviderRegistry([provider("a"), provider("b", "gemini")], ADAPTERS, ("openai",))


# --- credential validation -----------------------------------------------------------------------

TEST_REGISTRY = ProviderRegistry(
    [
        provider(
            "mixed",
            "openai",
            CredentialField("api_key", CredentialKind.STRING),
            CredentialField("account", CredentialKind.OBJECT),
            CredentialField("routes", CredentialKind.STRING_MAP),
            CredentialField("org", CredentialKind.STRING, required=False),
        )
    ],
    ADAPTERS,
    ("openai",),
)
VALID = {"api_key": SECRET, "account": {"type": "service_account"}, "routes": {"gpt-4o": "dep-1"}}


def credential_error(registry: ProviderRegistry, name: str, credentials: dict[str, Any]) -> CredentialError:
    with pytest.raises(CredentialError) as caught:
        registry.validate_credentials(name, credentials)
    return caught.value


@pytest.mark.parametrize(
    "credentials", [VALID, {**VALID, "org": "org-1"}], ids=["required-only", "with-optional"]
)
def test_valid_credentials_pass(credentials: dict[str, Any]) -> None:
    TEST_REGISTRY.validate_credentials("mixed", credentials)


@pytest.mark.parametrize(
    ("credentials", "field"),
    [
        ({k: v for k, v in VALID.items() if k != "api_key"}, "api_key"),
        ({k: v for k, v in VALID.items() if k != "account"}, "account"),
        ({k: v for k, v in VALID.items() if k != "routes"}, "routes"),
        ({**VALID, "api_key": None}, "api_key"),
    ],
    ids=["string", "object", "string-map", "null"],
)
def test_a_missing_required_field_is_named(credentials: dict[str, Any], field: str) -> None:
    error = credential_error(TEST_REGISTRY, "mixed", credentials)

    assert error.field == f"credentials.{field}"
    assert f"credentials.{field} is required" in str(error)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_key", ""),
        ("api_key", "   "),
        ("api_key", 12345),
        ("api_key", {"nested": SECRET}),
        ("api_key", [SECRET]),
        ("account", SECRET),  # a key file pasted as a string, not an object
        ("account", {}),
        ("account", [SECRET]),
        ("routes", SECRET),
        ("routes", {"gpt-4o": ""}),
        ("routes", {"gpt-4o": 7}),
        ("routes", [SECRET]),
        ("org", 42),  # an optional field, when given, must still be of its kind
        ("org", ""),
    ],
)
def test_a_field_of_the_wrong_kind_is_named_and_its_value_never_echoed(field: str, value: object) -> None:
    error = credential_error(TEST_REGISTRY, "mixed", {**VALID, field: value})

    assert error.field == f"credentials.{field}"
    assert f"credentials.{field} must be" in str(error)
    assert SECRET not in str(error)
    assert "12345" not in str(error)


def test_kind_texts_say_what_is_expected() -> None:
    texts = {
        field: str(credential_error(TEST_REGISTRY, "mixed", {**VALID, field: 0}))
        for field in ("api_key", "account", "routes")
    }

    assert "a non-empty string" in texts["api_key"]
    assert "a JSON object" in texts["account"]
    assert "an object mapping names to non-empty strings" in texts["routes"]


def test_an_unknown_field_is_named_with_the_expected_ones_and_no_value() -> None:
    error = credential_error(TEST_REGISTRY, "mixed", {**VALID, "api_secret": "hunter2-very-secret"})

    assert error.field == "credentials.api_secret"
    assert "api_secret" in str(error)
    assert "api_key" in str(error) and "routes" in str(error)  # what it expected
    assert "hunter2-very-secret" not in str(error)
    assert SECRET not in str(error)


@pytest.mark.parametrize(
    ("name", "credentials"),
    [
        ("openai", {"api_key": SECRET}),
        ("groq", {"api_key": SECRET}),
        ("vertex", {"service_account_json": service_account(), "region": "us-central1"}),
        (
            "azure",
            {
                "api_key": SECRET,
                "resource_name": "my-resource",
                "api_version": "2024-10-21",
                "deployments": {"gpt-4o-mini": "my-gpt-deployment"},
            },
        ),
    ],
)
def test_spec_payload_credentials_pass_the_shipped_registry(name: str, credentials: dict[str, Any]) -> None:
    REGISTRY.validate_credentials(name, credentials)


@pytest.mark.parametrize(
    ("name", "credentials", "field"),
    [
        ("openai", {}, "credentials.api_key"),
        ("openai", {"api_key": SECRET, "organization": "org-1"}, "credentials.organization"),
        (
            "vertex",
            {"service_account_json": SECRET, "region": "us-central1"},
            "credentials.service_account_json",
        ),
        ("vertex", {"service_account_json": service_account()}, "credentials.region"),
        (
            "azure",
            {"api_key": SECRET, "resource_name": "r", "api_version": "v", "deployments": SECRET},
            "credentials.deployments",
        ),
    ],
)
def test_shipped_registry_rejects_bad_credentials_by_field(
    name: str, credentials: dict[str, Any], field: str
) -> None:
    error = credential_error(REGISTRY, name, credentials)

    assert error.field == field
    assert SECRET not in str(error)


def test_a_blank_string_map_value_is_rejected_like_a_blank_string() -> None:
    error = credential_error(TEST_REGISTRY, "mixed", {**VALID, "routes": {"gpt-4o": "   "}})

    assert error.field == "credentials.routes"


def test_only_configuration_fields_are_marked_non_secret() -> None:
    # Error messages are scrubbed of every secret credential value; Azure's resource, api-version
    # and deployment map are configuration that a helpful error must be able to name.
    public = {(e.name, f.name) for e in REGISTRY.entries() for f in e.credentials if not f.secret}

    assert public == {
        ("azure", "resource_name"),
        ("azure", "api_version"),
        ("azure", "deployments"),
        ("vertex", "region"),
    }
