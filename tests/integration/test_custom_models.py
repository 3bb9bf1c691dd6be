"""Custom models and the catalog as configuration, on the real stack: a custom model registered
with a base model and prices is routed at once with the `openai` SDK, to the upstream as its
model slug, and its activity rows are costed with its own prices; an owner's catalog override is
the price of the next request; bad input is a 4xx naming the field that leaves no event."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from keyrail_cli.main import main
from keyrail_cli.mock_upstream import DEFAULT_REPLY
from keyrail_common.cost import attempt_cost
from keyrail_common.messages import Prices, Usage
from tests.integration.conftest import Tenant, provision
from tests.support.control_plane import config_last_seq, member
from tests.support.stack import OWNER_TOKEN, KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

SLUG = "openai-custom-mock"
MODELS = f"/admin/v1/integrations/{SLUG}/custom-models"
FT = {
    "model_slug": "ft-classifier-v3",
    "base_model": "openai/gpt-4o-mini",
    "input_price_per_mtok": 0.3,
    "output_price_per_mtok": 1.2,
    "additional_token_pricing": {"cached_input": 0.15, "reasoning": 12},
}


@pytest.fixture(scope="module")
def custom_tenant(stack: KeyrailStack, upstream: MockUpstream) -> Tenant:
    return provision(stack, upstream, SLUG)


@pytest.fixture(scope="module")
def sdk(stack: KeyrailStack, custom_tenant: Tenant) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=custom_tenant.api_key, max_retries=0)


def _chat(sdk: openai.OpenAI, model: str, **extra: Any) -> Any:
    return sdk.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "classify this please"}], **extra
    )


def _costed(stack: KeyrailStack, raw: Any, prices: Prices, model: str) -> None:
    """Both activity rows name the slug and the model and are costed with `prices`."""
    usage = raw.parse().usage
    assert usage is not None
    expected = attempt_cost(
        prices, Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
    )
    assert expected is not None and expected > 0
    rows = stack.activity_rows(raw.headers["x-keyrail-request-id"])
    assert {r["kind"] for r in rows} == {"request", "attempt"}
    for row in rows:
        assert (row["provider_slug"], row["model"], row["status"]) == (SLUG, model, "ok")
        assert (Decimal(row["cost_usd"]), row["cost_status"]) == (expected, "priced")
        assert row["price_version"] == prices.version or not prices.version


def test_a_custom_model_is_routed_at_once_to_the_upstream_as_its_slug_with_its_own_prices(
    stack: KeyrailStack, custom_tenant: Tenant, sdk: openai.OpenAI
) -> None:
    registered = stack.admin("POST", MODELS, FT)
    assert registered.status_code == 201, registered.text
    model = registered.json()
    assert model["id"] == f"{SLUG}/ft-classifier-v3" and model["price_version"].startswith(f"custom:{SLUG}/")

    raw = _chat(sdk, f"{SLUG}/ft-classifier-v3")  # the very next request after the POST returned

    completion = raw.parse()
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.model == "ft-classifier-v3"  # the mock echoes the model it was sent
    assert raw.headers["x-keyrail-provider-slug"] == SLUG
    custom = Prices(input=0.3, output=1.2, cached_input=0.15, additional={"reasoning": 12})
    _costed(stack, raw, custom, "ft-classifier-v3")
    # The base model's list prices (0.15 / 0.60) were not used.
    five = Usage(prompt_tokens=5, completion_tokens=5)
    assert attempt_cost(custom, five) != attempt_cost(Prices(input=0.15, output=0.6), five)

    # The pin header with the bare model slug goes there too.
    pinned = _chat(sdk, "ft-classifier-v3", extra_headers={"x-keyrail-provider": SLUG})
    assert pinned.parse().model == "ft-classifier-v3" and pinned.headers["x-keyrail-provider-slug"] == SLUG

    listed = [m.id for m in sdk.models.list().data]
    assert f"{SLUG}/ft-classifier-v3" in listed and f"{SLUG}/gpt-4o-mini" in listed

    # A developer of the project reads it; the change history has it.
    developer = member(stack, "custom dev", {custom_tenant.project_id: "developer"})
    read = stack.admin("GET", MODELS, token=developer.token)
    assert read.status_code == 200 and [m["model_slug"] for m in read.json()["data"]] == ["ft-classifier-v3"]
    history = stack.admin("GET", f"/admin/v1/events?aggregate=custommodel/{SLUG}/ft-classifier-v3").json()[
        "data"
    ]
    assert [e["type"] for e in history] == ["CustomModelRegistered"]
    assert history[0]["changes"]["base_model"] == {"before": None, "after": "openai/gpt-4o-mini"}


def test_a_price_change_and_a_removal_apply_from_the_next_request(
    stack: KeyrailStack, sdk: openai.OpenAI
) -> None:
    body = {**FT, "model_slug": "ft-changing"}
    assert stack.admin("POST", MODELS, body).status_code == 201
    path = f"{MODELS}/ft-changing"
    changed = stack.change("PATCH", path, {"output_price_per_mtok": 0, "input_price_per_mtok": 2.0}, of=path)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["input_price_per_mtok"], changed.json()["output_price_per_mtok"]) == (2.0, 0.0)
    raw = _chat(sdk, f"{SLUG}/ft-changing")
    _costed(stack, raw, Prices(input=2.0, output=0.0, cached_input=0.15), "ft-changing")

    removed = stack.change("DELETE", path, of=path)
    assert removed.status_code == 200, removed.text
    with pytest.raises(openai.NotFoundError) as gone:
        _chat(sdk, f"{SLUG}/ft-changing")
    assert (
        gone.value.code == "model_not_found"
        and f"POST /admin/v1/integrations/{SLUG}/custom-models" in str(gone.value)
    )
    # The slug can be registered again.
    assert stack.admin("POST", MODELS, body).status_code == 201


@pytest.fixture
def nano_override(stack: KeyrailStack) -> Iterator[str]:
    """gpt-4.1-nano (no other test routes it) overridden for the test, the shipped entry back after."""
    path = "/admin/v1/catalog/openai/gpt-4.1-nano"
    yield path
    current = [
        e
        for e in stack.admin("GET", "/admin/v1/catalog?provider=openai").json()["data"]
        if e["id"] == "openai/gpt-4.1-nano"
    ]
    if current and current[0]["source"] != "seed":
        stack.admin("DELETE", path, headers={"If-Match": str(current[0]["version"])})


def test_a_catalog_override_is_the_price_of_the_next_request_and_removing_it_restores_the_seed(
    stack: KeyrailStack, custom_tenant: Tenant, sdk: openai.OpenAI, nano_override: str
) -> None:
    enable = stack.change(
        "PUT",
        f"/admin/v1/integrations/{SLUG}/models",
        {"enabled_models": ["gpt-4o-mini", "gpt-4.1-nano"]},
        of=f"/admin/v1/integrations/{SLUG}",
    )
    assert enable.status_code == 200, enable.text
    seed = Prices(input=0.1, output=0.4, cached_input=0.025)
    _costed(stack, _chat(sdk, f"{SLUG}/gpt-4.1-nano"), seed, "gpt-4.1-nano")

    entry = {
        "schema": "openai",
        "context_window": 1047576,
        "prices": {"input": 3.0, "output": 7.0},
        "source_date": "2026-12-01",
    }
    assert stack.admin("PUT", nano_override, entry).status_code == 428  # a shipped entry needs its version
    put = stack.admin("PUT", nano_override, entry, headers={"If-Match": "0"})
    assert put.status_code == 200, put.text
    assert (
        put.json()["source"] == "override"
        and put.json()["prices"]["version"] == f"catalog@{put.json()['version']}"
    )
    _costed(stack, _chat(sdk, f"{SLUG}/gpt-4.1-nano"), Prices(input=3.0, output=7.0), "gpt-4.1-nano")
    again = stack.admin("PUT", nano_override, entry, headers={"If-Match": str(put.json()["version"])})
    assert again.json() == put.json()  # the same values again: no event, no new version

    listed = stack.admin("GET", "/admin/v1/catalog?provider=openai").json()["data"]
    assert [e["prices"]["input"] for e in listed if e["id"] == "openai/gpt-4.1-nano"] == [3.0]
    assert {e["provider"] for e in listed} == {"openai"}

    removed = stack.admin("DELETE", nano_override, headers={"If-Match": str(put.json()["version"])})
    assert removed.status_code == 200, removed.text
    assert (
        removed.json()["restored"]["source"] == "seed"
        and removed.json()["restored"]["prices"]["input"] == 0.1
    )
    _costed(stack, _chat(sdk, f"{SLUG}/gpt-4.1-nano"), seed, "gpt-4.1-nano")
    # A shipped entry itself is not removed.
    refused = stack.admin(
        "DELETE", nano_override, headers={"If-Match": str(removed.json()["restored"]["version"])}
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "seeded_entry"


def test_an_owner_added_catalog_model_is_routable_and_cannot_be_removed_while_in_use(
    stack: KeyrailStack, sdk: openai.OpenAI
) -> None:
    path = "/admin/v1/catalog/openai/gpt-owner-added"
    entry = {"schema": "openai", "context_window": 32000, "prices": {"input": 1.0, "output": 2.0}}
    added = stack.admin("PUT", path, entry)
    assert added.status_code == 200 and added.json()["source"] == "owner", added.text
    # The integration enables a list, so the new model is not routed there until enabled...
    with pytest.raises(openai.PermissionDeniedError):
        _chat(sdk, f"{SLUG}/gpt-owner-added")
    # ...but it is a base model at once.
    body = {"model_slug": "ft-on-added", "base_model": "openai/gpt-owner-added"}
    assert stack.admin("POST", MODELS, body).status_code == 201
    unpriced = _chat(sdk, f"{SLUG}/ft-on-added")
    assert unpriced.parse().model == "ft-on-added"
    # A custom model without prices is stored unpriced: NULL, never $0.
    rows = stack.activity_rows(unpriced.headers["x-keyrail-request-id"])
    assert {(r["kind"], r["cost_usd"], r["cost_status"]) for r in rows} == {
        ("request", None, "unpriced"),
        ("attempt", None, "unpriced"),
    }
    in_use = stack.admin("DELETE", path, headers={"If-Match": str(added.json()["version"])})
    assert (
        in_use.status_code == 409 and f"custom model {SLUG}/ft-on-added" in in_use.json()["error"]["message"]
    )
    # Once nothing names it, it leaves the catalog (and the tests sharing this stack never see it).
    assert stack.change("DELETE", f"{MODELS}/ft-on-added", of=f"{MODELS}/ft-on-added").status_code == 200
    removed = stack.admin("DELETE", path, headers={"If-Match": str(added.json()["version"])})
    assert removed.status_code == 200 and removed.json() == {"id": "openai/gpt-owner-added", "restored": None}
    assert stack.admin("DELETE", path, headers={"If-Match": "0"}).status_code == 404


def _refused(
    stack: KeyrailStack,
    method: str,
    path: str,
    body: Any,
    status: int,
    param: str | None,
    token: str = OWNER_TOKEN,
    headers: dict[str, str] | None = None,
) -> str:
    before = config_last_seq(stack)
    response = stack.admin(method, path, body, token=token, headers=headers)
    assert response.status_code == status, (body, response.text)
    error = response.json()["error"]
    if param is not None:
        assert error["param"] == param, (body, error)
    assert config_last_seq(stack) == before, f"{body} left an event behind"
    return str(error["message"])


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"base_model": "openai/gpt-no-such-model"}, 400, "base_model"),
        (
            {"base_model": "anthropic/claude-sonnet-4-6"},
            400,
            "base_model",
        ),  # a schema the host does not speak
        ({"input_price_per_mtok": -0.1}, 400, "input_price_per_mtok"),
        ({"additional_token_pricing": {"reasoning": -1}}, 400, "additional_token_pricing[...]"),
        ({"additional_token_pricing": {"Not A Kind": 1}}, 400, "additional_token_pricing"),
        ({"output_price_per_mtok": "cheap"}, 400, "output_price_per_mtok"),
        ({"model_slug": "bad..slug"}, 400, "model_slug"),
        ({"model_slug": "has/slash"}, 400, "model_slug"),
        ({"model_slug": 42}, 400, "model_slug"),
        ({"model_slug": "gpt-4o"}, 400, "model_slug"),  # a catalog model of the provider
        ({"colour": "blue"}, 400, "colour"),
        ({"custom_host": "https://169.254.169.254/v1"}, 400, "custom_host"),
        ({"model_slug": "ft-classifier-v3"}, 409, "model_slug"),  # registered by the first test
    ],
)
def test_bad_custom_models_are_refused_naming_the_field_and_leave_no_event(
    stack: KeyrailStack, custom_tenant: Tenant, change: dict[str, Any], status: int, param: str | None
) -> None:
    if (
        change.get("model_slug") == "ft-classifier-v3"
        and stack.admin("GET", f"{MODELS}/ft-classifier-v3").status_code == 404
    ):
        assert stack.admin("POST", MODELS, FT).status_code == 201
    body = {**FT, "model_slug": "ft-refused", **change}
    _refused(stack, "POST", MODELS, body, status, param)


def test_non_owners_and_bad_catalog_entries_are_refused_and_leave_no_event(
    stack: KeyrailStack, custom_tenant: Tenant
) -> None:
    developer = member(stack, "refused dev", {custom_tenant.project_id: "developer"})
    admin = member(stack, "refused admin", {custom_tenant.project_id: "project_admin"})
    for token in (developer.token, admin.token):
        message = _refused(stack, "POST", MODELS, {**FT, "model_slug": "ft-x"}, 403, None, token=token)
        assert "needs the role owner" in message
        _refused(
            stack,
            "PUT",
            "/admin/v1/catalog/openai/gpt-x",
            {"schema": "openai", "context_window": 1, "prices": {}},
            403,
            None,
            token=token,
        )
    assert stack.admin("GET", "/admin/v1/catalog", token=developer.token).status_code == 200
    _refused(stack, "POST", "/admin/v1/integrations/no-such-slug/custom-models", FT, 404, None)

    good = {"schema": "openai", "context_window": 8000, "prices": {"input": 1.0}}
    for path, body, param in [
        ("/admin/v1/catalog/nope/gpt-x", good, "provider"),
        ("/admin/v1/catalog/openai/gpt..x", good, "model"),
        ("/admin/v1/catalog/openai/gpt-x", {**good, "schema": "openia"}, "schema"),
        ("/admin/v1/catalog/openai/gpt-x", {**good, "context_window": 0}, "context_window"),
        ("/admin/v1/catalog/openai/gpt-x", {**good, "context_window": "big"}, "context_window"),
        ("/admin/v1/catalog/openai/gpt-x", {**good, "prices": {"input": -1}}, "prices.input"),
        ("/admin/v1/catalog/openai/gpt-x", {**good, "prices": {"inptu": 1}}, "prices.inptu"),
        ("/admin/v1/catalog/openai/gpt-x", {**good, "colour": "blue"}, "colour"),
        ("/admin/v1/catalog/openai/gpt-x", {**good, "source_date": "yesterday"}, "source_date"),
    ]:
        _refused(stack, "PUT", path, body, 400, param)
    assert "Unknown provider" in _refused(
        stack, "GET", "/admin/v1/catalog?provider=nope", None, 400, "provider"
    )
    # A model outside the catalog in enabled_models says how to register it, on the real route.
    message = _refused(
        stack,
        "PUT",
        f"/admin/v1/integrations/{SLUG}/models",
        {"enabled_models": ["my-finetune"]},
        400,
        "enabled_models",
        headers={"If-Match": str(stack.admin("GET", f"/admin/v1/integrations/{SLUG}").json()["version"])},
    )
    assert f"POST /admin/v1/integrations/{SLUG}/custom-models" in message


def test_the_cli_lists_adds_and_changes_custom_models_and_the_catalog(
    stack: KeyrailStack,
    custom_tenant: Tenant,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEYRAIL_ADMIN_TOKEN", OWNER_TOKEN)

    def cli(*argv: str) -> str:
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--url", stack.url])
        out, err = capsys.readouterr()
        assert exit_.value.code == 0, (argv, out, err)
        return out

    out = cli(
        "custom-models",
        "add",
        SLUG,
        "ft-cli",
        "--base-model",
        "openai/gpt-4o-mini",
        "--input-price",
        "0.5",
        "--price",
        "reasoning=3",
    )
    assert "ft-cli" in out and "reasoning=3.0" in out
    table = cli("custom-models", "list", SLUG)
    assert table.splitlines()[0].split()[:2] == ["id", "base_model"] and f"{SLUG}/ft-cli" in table
    out = cli("custom-models", "update", SLUG, "ft-cli", "--output-price", "0", "--json")
    assert '"output_price_per_mtok": 0.0' in out
    catalog = cli("catalog", "--provider", "anthropic")
    assert catalog.splitlines()[0].split()[0] == "id" and all(
        line.startswith("anthropic/") for line in catalog.splitlines()[1:]
    )
    out = cli(
        "catalog",
        "set",
        "openai",
        "gpt-cli-added",
        "--schema",
        "openai",
        "--context-window",
        "4096",
        "--input-price",
        "1",
        "--json",
    )
    assert '"source": "owner"' in out
    cli("catalog", "remove", "openai", "gpt-cli-added")
    cli("custom-models", "remove", SLUG, "ft-cli")
    gone = httpx.get(
        f"{stack.url}/admin/v1/integrations/{SLUG}/custom-models/ft-cli",
        headers={"Authorization": f"Bearer {OWNER_TOKEN}"},
    )
    assert gone.status_code == 404
