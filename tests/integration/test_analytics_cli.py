"""`keyrail activity` (with -f) and `keyrail costs` against the running stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from queue import Empty, Queue
from typing import Any

import httpx
import pytest

from keyrail_cli.main import main
from tests.integration.conftest import Tenant, provision
from tests.support.stack import OWNER_TOKEN, KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration

SLUG = "cli-analytics-mock"


def _chat(stack: KeyrailStack, tenant: Tenant) -> str:
    response = httpx.post(
        f"{stack.url}/v1/chat/completions",
        json={"model": tenant.model, "messages": [{"role": "user", "content": "one two three four five"}]},
        headers={"Authorization": f"Bearer {tenant.api_key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.headers["x-keyrail-request-id"]


def _cli(stack: KeyrailStack, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--url", stack.url])
    out, err = capsys.readouterr()
    assert exit_.value.code == 0, (argv, out, err)
    return out


@pytest.fixture(scope="module")
def tenant(stack: KeyrailStack, upstream: MockUpstream) -> Tenant:
    tenant = provision(stack, upstream, SLUG)
    ids = [_chat(stack, tenant) for _ in range(2)]
    for request_id in ids:
        stack.activity_rows(request_id, expected=2)
    return tenant


def test_activity_prints_a_table_or_the_apis_json(
    stack: KeyrailStack, tenant: Tenant, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYRAIL_ADMIN_TOKEN", OWNER_TOKEN)

    out = _cli(stack, capsys, "activity", "--provider-slug", SLUG, "--since", "1h")
    as_json: dict[str, Any] = json.loads(_cli(stack, capsys, "activity", "--provider-slug", SLUG, "--json"))

    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ts", "request_id", "kind", "attempt"]
    assert len(lines) == 5 and all(SLUG in line for line in lines[1:])
    assert len(as_json["data"]) == 4 and as_json["next_cursor"] is None


def test_costs_prints_the_groups(
    stack: KeyrailStack, tenant: Tenant, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYRAIL_ADMIN_TOKEN", OWNER_TOKEN)

    report = json.loads(_cli(stack, capsys, "costs", "--by", "slug", "--since", "7d", "--json"))
    out = _cli(stack, capsys, "costs", "--by", "slug", "--since", "7d")

    (group,) = [g for g in report["data"] if g["key"] == SLUG]
    assert group["requests"] == 2 and group["tokens"]["prompt"] == 10
    (line,) = [line for line in out.splitlines() if line.startswith(SLUG)]
    assert line.split()[:2] == [SLUG, "2"] and line.split()[-1] == group["cost_usd"]


def test_follow_shows_a_new_request_within_seconds(stack: KeyrailStack, tenant: Tenant) -> None:
    env = {**os.environ, "KEYRAIL_ADMIN_TOKEN": OWNER_TOKEN}
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keyrail_cli.main",
            "activity",
            "-f",
            "--provider-slug",
            SLUG,
            "--url",
            stack.url,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: Queue[str] = Queue()

    def read() -> None:
        for line in follower.stdout or ():
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        seen = [lines.get(timeout=20) for _ in range(5)]  # the header and the four rows so far
        assert seen[0].split()[0] == "ts"
        new = _chat(stack, tenant)
        deadline = time.monotonic() + 15
        shown = ""
        while new not in shown and time.monotonic() < deadline:
            try:
                shown += lines.get(timeout=1)
            except Empty:
                pass
        assert new in shown
    finally:
        follower.terminate()
        follower.wait(10)
