"""`keyrail up` stopped and started again keeps users, tokens, projects, keys, integrations,
custom models, the catalog's owner entries, virtual models, gateway configs, the change history
and the credentials (the projection rebuilt from the stream, the credentials read from Vault); a
service that dies is restarted by the supervisor."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from keyrail_cli.mock_upstream import DEFAULT_REPLY
from tests.integration.conftest import provision
from tests.support.control_plane import api_key, integration, member, project
from tests.support.stack import KeyrailStack, MockUpstream, service_pids

pytestmark = pytest.mark.integration


def _chat(stack: KeyrailStack, api_key: str, model: str) -> str:
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=api_key, max_retries=0)
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "still there?"}]
    )
    return completion.choices[0].message.content or ""


def _control_plane(stack: KeyrailStack, upstream: MockUpstream, project_id: str) -> dict[str, str]:
    """A change of every kind; returns tokens whose fate the restart must keep."""
    kept = member(stack, "kept", {project_id: "project_admin"})
    gone = member(stack, "gone", {project_id: "developer"})
    (gone_token,) = stack.admin("GET", f"/admin/v1/users/{gone.user_id}/tokens").json()["data"]
    tokens_path = f"/admin/v1/users/{gone.user_id}/tokens/{gone_token['id']}"
    assert (
        stack.admin("DELETE", tokens_path, headers={"If-Match": str(gone_token["version"])}).status_code
        == 200
    )
    user_path = f"/admin/v1/users/{kept.user_id}"
    assert stack.change("PATCH", user_path, {"email": "kept@example.com"}, of=user_path).status_code == 200
    archived = project(stack, "archived before the restart")
    archived_key = api_key(stack, archived)["key"]
    path = f"/admin/v1/projects/{archived}"
    assert stack.change("PATCH", path, {"archived": True, "name": "archived"}, of=path).status_code == 200
    integration(stack, upstream, "openai-restart-gone", "all")
    gone_path = "/admin/v1/integrations/openai-restart-gone"
    assert stack.change("DELETE", gone_path, of=gone_path).status_code == 200
    slug_path = "/admin/v1/integrations/openai-restart-mock"
    headers = {"description": "patched", "custom_auth_headers": {"X-Kept": "hdr-kept-3e4f5a6b"}}
    assert stack.change("PATCH", slug_path, headers, of=slug_path).status_code == 200
    rotation = {"credentials": {"api_key": upstream.api_key}}
    assert stack.change("PUT", f"{slug_path}/credentials", rotation, of=slug_path).status_code == 200
    # Custom models registered, changed and removed; a catalog entry added and one overridden.
    models = f"{slug_path}/custom-models"
    for model_slug in ("ft-kept", "ft-removed"):
        body = {"model_slug": model_slug, "base_model": "openai/gpt-4o-mini", "input_price_per_mtok": 0.3}
        assert stack.admin("POST", models, body).status_code == 201
    kept_model = f"{models}/ft-kept"
    change = {"output_price_per_mtok": 0.0, "additional_token_pricing": {"reasoning": 2.5}}
    assert stack.change("PATCH", kept_model, change, of=kept_model).status_code == 200
    assert stack.change("DELETE", f"{models}/ft-removed", of=f"{models}/ft-removed").status_code == 200
    entry = {"schema": "openai", "context_window": 8000, "prices": {"input": 0.5, "output": 1.0}}
    assert stack.admin("PUT", "/admin/v1/catalog/openai/gpt-restart-added", entry).status_code == 200
    assert (
        stack.admin(
            "PUT", "/admin/v1/catalog/openai/gpt-4.1-nano", entry, headers={"If-Match": "0"}
        ).status_code
        == 200
    )
    chain = {
        "id": "restart-chain",
        "project_scope": [project_id],
        "strategy": "fallback",
        "targets": [{"provider_slug": "openai-restart-mock", "model": "gpt-4o-mini"}],
    }
    assert stack.admin("POST", "/admin/v1/configs", chain).status_code == 201
    config_path = "/admin/v1/configs/restart-chain"
    replaced = {k: v for k, v in chain.items() if k != "id"} | {"fallback_on": [503, "timeout"]}
    assert stack.change("PUT", config_path, replaced, of=config_path).status_code == 200
    for alias in ("restart-alias", "restart-alias-gone"):
        aliased = {"alias": alias, "project_scope": [project_id], "target": {"config": "restart-chain"}}
        assert stack.admin("POST", "/admin/v1/virtual-models", aliased).status_code == 201
    gone_alias = "/admin/v1/virtual-models/restart-alias-gone"
    assert stack.change("DELETE", gone_alias, of=gone_alias).status_code == 200
    return {"kept": kept.token, "gone": gone.token, "archived key": archived_key}


def _configuration(stack: KeyrailStack) -> dict[str, Any]:
    """Everything the admin API shows of the projection (last_used_at is the activity log's)."""

    def get(path: str) -> Any:
        answer = stack.admin("GET", path)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    users = get("/admin/v1/users")
    projects = get("/admin/v1/projects")
    keys = {p["id"]: get(f"/admin/v1/projects/{p['id']}/keys") for p in projects}
    for listed in keys.values():
        for key in listed:
            key.pop("last_used_at")
    return {
        "users": users,
        "tokens": {u["id"]: get(f"/admin/v1/users/{u['id']}/tokens") for u in users},
        "projects": projects,
        "keys": keys,
        "integrations": get("/admin/v1/integrations"),
        "virtual models": get("/admin/v1/virtual-models"),
        "configs": get("/admin/v1/configs"),
        "custom models": get("/admin/v1/integrations/openai-restart-mock/custom-models"),
        "catalog": get("/admin/v1/catalog"),
        "history": get("/admin/v1/events?limit=1000"),
    }


def test_restart_keeps_state_and_dead_services_come_back(tmp_path: Path, upstream: MockUpstream) -> None:
    stack = KeyrailStack(tmp_path / "data", tmp_path / "keyrail-up.log")
    stack.start()
    try:
        tenant = provision(stack, upstream, "openai-restart-mock")
        assert _chat(stack, tenant.api_key, tenant.model) == DEFAULT_REPLY
        tokens = _control_plane(stack, upstream, tenant.project_id)
        before = _configuration(stack)
        assert len(before["history"]) > 15
        assert {e["source"] for e in before["catalog"]} == {"seed", "override", "owner"}
        assert [(m["model_slug"], m["output_price_per_mtok"]) for m in before["custom models"]] == [
            ("ft-kept", 0.0)
        ]

        # A router that dies is restarted with backoff, and the log says so.
        (router_pid,) = service_pids(stack.data_dir, "router")
        os.kill(router_pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = service_pids(stack.data_dir, "router")
            if pids and pids != [router_pid]:
                break
            time.sleep(0.2)
        stack.wait_healthy(60)
        assert b"router exited with code -9; restarting" in stack.log_path.read_bytes()
        assert _chat(stack, tenant.api_key, tenant.model) == DEFAULT_REPLY
    finally:
        assert stack.stop() == 0
    for service in ("ingress", "router", "worker", "audit"):
        assert service_pids(stack.data_dir, service) == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{stack.url}/healthz", timeout=1)

    restarted = KeyrailStack(stack.data_dir, stack.log_path, base_port=stack.base_port)
    restarted.start()
    try:
        # The projection, rebuilt from the stream alone, is the one before: every user, token,
        # project, key, integration, custom model, catalog entry and change, field for field.
        assert _configuration(restarted) == before
        assert restarted.admin("GET", "/admin/v1/projects", token=tokens["kept"]).status_code == 200
        assert restarted.admin("GET", "/admin/v1/projects", token=tokens["gone"]).status_code == 401
        archived = httpx.get(
            f"{restarted.url}/v1/models", headers={"Authorization": f"Bearer {tokens['archived key']}"}
        )
        assert archived.status_code == 403 and archived.json()["error"]["code"] == "project_archived"
        projects = restarted.admin("GET", "/admin/v1/projects").json()["data"]
        assert tenant.project_id in [p["id"] for p in projects]
        integrations = restarted.admin("GET", "/admin/v1/integrations").json()["data"]
        assert "openai-restart-mock" in [i["provider_slug"] for i in integrations]
        # Same API key, and the credential (rotated, with the patched headers) is read back from
        # OpenBao's raft storage.
        assert _chat(restarted, tenant.api_key, tenant.model) == DEFAULT_REPLY
        assert _chat(restarted, tenant.api_key, "openai-restart-mock/ft-kept") == DEFAULT_REPLY
        assert [v["alias"] for v in _configuration(restarted)["virtual models"]] == ["restart-alias"]
        assert _chat(restarted, tenant.api_key, "restart-alias") == DEFAULT_REPLY
        # Every request row survives the restart (five chats), once the audit has caught up.
        deadline = time.monotonic() + 30
        requests: list[dict[str, object]] = []
        while time.monotonic() < deadline and len(requests) < 5:
            rows = restarted.admin(
                "GET", "/admin/v1/activity?provider_slug=openai-restart-mock&limit=100"
            ).json()["data"]
            requests = [r for r in rows if r["kind"] == "request"]
            time.sleep(0.3)
        assert len(requests) == 5
    finally:
        assert restarted.stop() == 0
