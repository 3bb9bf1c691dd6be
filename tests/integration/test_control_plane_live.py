"""Every ingress follows the config stream live: a revoked key, a key of an archived project and a
revoked admin token are refused by a second ingress (its own process, its own projection) within
a second of the change made through the first."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.control_plane import api_key, created, integration, member, project
from tests.support.stack import KeyrailStack, MockUpstream, free_port_block

pytestmark = pytest.mark.integration

WITHIN_S = 1.0


@pytest.fixture(scope="module")
def second_ingress(stack: KeyrailStack) -> Iterator[str]:
    """`keyrail ingress` alone, as production runs more of them, on the stack's NATS and Vault."""
    port = free_port_block(1)
    env = {**stack.env(), "KEYRAIL_PORT": str(port), "KEYRAIL_ACCESS_LOG": "0"}
    log = (stack.log_path.parent / "second-ingress.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "keyrail_cli.main", "ingress"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the second ingress exited; see second-ingress.log"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the second ingress did not become healthy"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def _refused_within(check: Callable[[], int], refused: int, started: float) -> float:
    """Seconds from `started` until `check()` answers `refused` (polled every 10 ms)."""
    while True:
        status = check()
        elapsed = time.monotonic() - started
        if status == refused:
            return elapsed
        assert elapsed < WITHIN_S, f"still {status} after {elapsed:.2f}s"
        time.sleep(0.01)


def _models(url: str, key: str) -> Callable[[], int]:
    return lambda: (
        httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code
    )


def test_a_revoked_key_is_refused_by_every_ingress_within_a_second(
    stack: KeyrailStack, upstream: MockUpstream, second_ingress: str
) -> None:
    project_id = project(stack, "live revocation")
    integration(stack, upstream, "openai-live", [project_id])
    key = api_key(stack, project_id)
    chat = {"model": "openai-live/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    auth = {"Authorization": f"Bearer {key['key']}"}
    served = httpx.post(f"{second_ingress}/v1/chat/completions", json=chat, headers=auth, timeout=30)
    assert served.status_code == 200, served.text
    # "Last used" comes from the activity log, once the audit service has written the request.
    deadline = time.monotonic() + 20
    while (listed := stack.admin("GET", f"/admin/v1/projects/{project_id}/keys").json()["data"])[0][
        "last_used_at"
    ] is None:
        assert time.monotonic() < deadline, listed
        time.sleep(0.2)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", listed[0]["last_used_at"])

    path = f"/admin/v1/projects/{project_id}/keys/{key['id']}"
    started = time.monotonic()
    revoked = stack.admin("DELETE", path, headers={"If-Match": str(listed[0]["version"])})
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True

    elapsed = _refused_within(_models(second_ingress, key["key"]), 401, started)
    assert elapsed < WITHIN_S
    refused = httpx.post(f"{second_ingress}/v1/chat/completions", json=chat, headers=auth, timeout=30)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert (
        httpx.post(f"{stack.url}/v1/chat/completions", json=chat, headers=auth, timeout=30).status_code == 401
    )


def test_an_archived_projects_keys_are_refused_everywhere_and_come_back_on_restore(
    stack: KeyrailStack, second_ingress: str
) -> None:
    project_id = project(stack, "live archive")
    key = api_key(stack, project_id)["key"]
    assert _models(second_ingress, key)() == 200
    path = f"/admin/v1/projects/{project_id}"

    started = time.monotonic()
    archived = stack.change("PATCH", path, {"archived": True}, of=path)
    assert archived.status_code == 200 and archived.json()["archived"] is True
    assert _refused_within(_models(second_ingress, key), 403, started) < WITHIN_S
    answer = httpx.get(f"{second_ingress}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    assert answer.json()["error"]["code"] == "project_archived" and project_id in answer.text
    refused = stack.admin("POST", f"{path}/keys", {"name": "more"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "project_archived"

    started = time.monotonic()
    assert stack.change("PATCH", path, {"archived": False}, of=path).status_code == 200
    assert _refused_within(_models(second_ingress, key), 200, started) < WITHIN_S


def test_a_revoked_admin_token_and_a_disabled_user_are_refused_by_every_ingress_within_a_second(
    stack: KeyrailStack, second_ingress: str
) -> None:
    project_id = project(stack, "live tokens")
    someone = member(stack, "live", {project_id: "developer"})
    second = created(stack.admin("POST", f"/admin/v1/users/{someone.user_id}/tokens", {"name": "second"}))

    def projects(token: str) -> Callable[[], int]:
        return lambda: (
            httpx.get(
                f"{second_ingress}/admin/v1/projects", headers={"Authorization": f"Bearer {token}"}, timeout=5
            ).status_code
        )

    assert projects(someone.token)() == 200 and projects(second["token"])() == 200
    tokens = stack.admin("GET", f"/admin/v1/users/{someone.user_id}/tokens").json()["data"]
    (first,) = [t for t in tokens if t["id"] != second["id"]]
    started = time.monotonic()
    revoked = stack.admin(
        "DELETE",
        f"/admin/v1/users/{someone.user_id}/tokens/{first['id']}",
        headers={"If-Match": str(first["version"])},
    )
    assert revoked.status_code == 200
    assert _refused_within(projects(someone.token), 401, started) < WITHIN_S
    assert projects(second["token"])() == 200  # only that token

    user_path = f"/admin/v1/users/{someone.user_id}"
    started = time.monotonic()
    assert stack.change("DELETE", user_path, of=user_path).status_code == 200
    assert _refused_within(projects(second["token"]), 401, started) < WITHIN_S
