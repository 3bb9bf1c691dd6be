"""README.md's quick start and worked example, run as a new user runs them, on a fresh `keyrail up`.

The commands, the Python file and every expected output come from README.md itself
(tests/support/readme.py explains the markers), so the README cannot drift from the product.
Three things are substituted, and nothing else: the mock upstream's port (`9900` → a free port),
the gateway's port (the reader's shell gets `KEYRAIL_PORT`, which the README's first command
reads, exactly as the README tells a reader who moved the port), and the token placeholder (→ the
token this first start printed). The other tests here check the README's tables and the
`keyrail sql` error promises against the code and the running stack.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyrail_common.registry import load_registry
from tests.integration.conftest import Tenant
from tests.support.readme import (
    README,
    ROOT,
    ReaderShell,
    Step,
    line_pattern,
    marked_block,
    matches,
    normalise,
    worked_example_steps,
)
from tests.support.stack import KeyrailStack, MockUpstream, free_port_block
from tests.support.vertex import service_account

pytestmark = pytest.mark.integration

TOKEN_PLACEHOLDER = "kra-PASTE-YOUR-TOKEN-HERE"
README_MOCK_PORT = 9900
README_PORT = 8080
README_UPSTREAM_KEY = "sk-my-upstream-key"
VENV = Path(sys.prefix)


class FirstStartStack(KeyrailStack):
    """`keyrail up` on an empty data dir without KEYRAIL_BOOTSTRAP_TOKEN, as on a new machine;
    its admin calls use the owner token it printed."""

    owner_token = ""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("KEYRAIL_BOOTSTRAP_TOKEN")
        return env

    def admin(
        self,
        method: str,
        path: str,
        json: Any = None,
        token: str = "",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return super().admin(method, path, json, token=token or self.owner_token, headers=headers)


@dataclass
class FirstStart:
    stack: FirstStartStack
    workdir: Path  # the reader's checkout: `.venv` (a link to the test's venv) and `.keyrail`
    token: str
    output: str


def _token_from(output: str, first_start_block: str) -> str:
    """The token, read with the README's own line for it."""
    (line,) = [ln for ln in first_start_block.splitlines() if "admin token" in ln]
    prefix = line.split("kra-")[0]
    found = re.search("^" + line_pattern(prefix) + r"(kra-[A-Za-z0-9_-]{20,})$", output, re.M)
    assert found, f"no line like {line!r} in the first start's output:\n{output}"
    return found.group(1)


@pytest.fixture(scope="module")
def first_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstStart]:
    assert (VENV / "bin" / "keyrail").exists(), "run the tests with the project's venv (make test)"
    workdir = tmp_path_factory.mktemp("readme-reader")
    (workdir / ".venv").symlink_to(VENV)
    stack = FirstStartStack(workdir / ".keyrail", workdir / "keyrail-up.log")
    stack.start()
    try:
        block = marked_block(README.read_text(), "first-start").code
        expected = block.replace(f"127.0.0.1:{README_PORT}", f"127.0.0.1:{stack.port}")
        deadline = time.monotonic() + 30  # the supervisor announces readiness after its own poll
        output = normalise(stack.log_path.read_text())
        while not matches(expected, output) and time.monotonic() < deadline:
            time.sleep(0.3)
            output = normalise(stack.log_path.read_text())
        assert matches(expected, output), (
            f"README's first-start lines:\n{block}\nkeyrail up printed:\n{output}"
        )
        stack.owner_token = _token_from(output, block)
        yield FirstStart(stack, workdir, stack.owner_token, output)
    finally:
        stack.stop()


def reader_env(port: int) -> dict[str, str]:
    """A terminal on the reader's machine: nothing of ours, only KEYRAIL_PORT for the moved port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYRAIL_", "OPENAI_", "PYTHON"))}
    env["KEYRAIL_PORT"] = str(port)
    return env


def _substitute(steps: list[Step], replacements: dict[str, str]) -> list[Step]:
    text = "".join(s.block.code + (s.expected or "") for s in steps)
    for old in replacements:
        assert old in text, f"the worked example no longer contains {old!r}; update this test's substitutions"
    for step in steps:
        for old, new in replacements.items():
            step.block.code = step.block.code.replace(old, new)
            step.expected = step.expected.replace(old, new) if step.expected else None
    leftover = "".join(s.block.code + (s.expected or "") for s in steps)
    assert not re.search(rf"\b{README_MOCK_PORT}\b", leftover) and TOKEN_PLACEHOLDER not in leftover
    return steps


def _failure(step: Step, why: str, output: str) -> str:
    return (
        f"README.md:{step.block.line}: {why}\n--- command ---\n{step.block.code}"
        f"--- README's output ---\n{step.expected}--- actual output ---\n{normalise(output)}"
    )


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_make_run_is_keyrail_up_and_first_start_prints_the_token(first_start: FirstStart) -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: \$\(STAMP\)\n\t\$\(BIN\)/keyrail up$", makefile, re.M), "README: make run"
    assert first_start.token.startswith("kra-")
    assert first_start.output.count(first_start.token) == 1, "the token is printed once"


def test_worked_example_runs_as_written(first_start: FirstStart) -> None:
    stack = first_start.stack
    mock_port = free_port_block(1)
    steps = _substitute(
        worked_example_steps(README.read_text()),
        {
            f"--port {README_MOCK_PORT}": f"--port {mock_port}",
            f"127.0.0.1:{README_MOCK_PORT}": f"127.0.0.1:{mock_port}",
            TOKEN_PLACEHOLDER: first_start.token,
        },
    )
    assert sum(1 for s in steps if s.save_as) == 1 and len(steps) >= 9
    for step in steps:  # what a reader pastes: plain ASCII, no placeholder to edit
        assert step.block.code.isascii(), _failure(step, "a command a reader pastes is not ASCII", "")
    shell = ReaderShell(first_start.workdir, reader_env(stack.port))
    try:
        for step in steps:
            if step.save_as:
                (first_start.workdir / step.save_as).write_text(step.block.code)
                continue
            status, output = shell.run(step.block.code)
            assert status == 0, _failure(step, f"exit status {status}", output)
            if step.expected is None:
                continue
            deadline = time.monotonic() + (30 if step.eventually else 10)
            while not matches(step.expected, output):
                assert time.monotonic() < deadline, _failure(step, "output differs", output)
                if step.eventually:  # the README says: run it again
                    time.sleep(0.5)
                    status, output = shell.run(step.block.code)
                    assert status == 0, _failure(step, f"exit status {status}", output)
                else:  # a background job (the mock upstream) may print after the prompt returns
                    output += shell.more_output(0.5)
        deadline = time.monotonic() + 10
        while _port_open(mock_port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _port_open(mock_port), "the README's last step stops the mock upstream"
    finally:
        shell.stop()
    assert README_UPSTREAM_KEY not in stack.log_path.read_text(), "the credential reached a log line"


def _sql(first_start: FirstStart, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = reader_env(first_start.stack.port)
    if token is not None:
        env["KEYRAIL_ADMIN_TOKEN"] = token
    return subprocess.run(
        [str(VENV / "bin" / "keyrail"), "sql", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "token", "code", "message"),
    [
        (["SELECT 1"], None, 2, "keyrail sql: no admin token: pass --token or set KEYRAIL_ADMIN_TOKEN"),
        (["SELECT 1"], "kra-…", 2, "keyrail sql: the admin token has HORIZONTAL ELLIPSIS (U+2026) at"),
        (["SELECT 1"], "kra-wrong", 1, "keyrail sql: the admin token was rejected (HTTP 401): Invalid"),
        (["--url", "localhost:1", "SELECT 1"], "kra-wrong", 2, "keyrail sql: --url must start with http"),
        (["SELEC 1"], "<owner>", 1, "keyrail sql: query failed: Code: 62. DB::Exception: Syntax error"),
        (["DROP TABLE keyrail.activity"], "<owner>", 1, "keyrail sql: query failed: Code: 164."),
    ],
)
def test_keyrail_sql_failures_are_one_line(
    first_start: FirstStart, args: list[str], token: str | None, code: int, message: str
) -> None:
    result = _sql(first_start, *args, token=first_start.token if token == "<owner>" else token)
    assert (result.returncode, result.stdout) == (code, ""), result
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr


def test_keyrail_sql_unreachable_or_foreign_ingress_is_one_line(first_start: FirstStart) -> None:
    closed = free_port_block(1)
    metrics = first_start.stack.base_port + 1  # the audit service's Prometheus port: HTTP, not Keyrail
    cases = [
        (f"http://127.0.0.1:{closed}", "keyrail sql: cannot reach the Keyrail ingress at"),
        (f"http://127.0.0.1:{metrics}", f"keyrail sql: http://127.0.0.1:{metrics} answered HTTP"),
    ]
    for url, message in cases:
        result = _sql(first_start, "--url", url, "SELECT 1", token=first_start.token)
        assert (result.returncode, result.stdout) == (1, ""), result
        assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    ok = _sql(first_start, "SELECT 1 AS one", token=first_start.token)
    assert ok.returncode == 0 and re.fullmatch(r"one\n1\n\(1 row, [0-9.]+ ms\)\n", ok.stdout), ok


def _section(title: str) -> str:
    return README.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _tenant(stack: FirstStartStack, upstream: MockUpstream, slug: str) -> Tenant:
    """A project, a key and an integration on the mock upstream, like conftest's provision()."""
    project = stack.admin("POST", "/admin/v1/projects", {"name": slug})
    key = stack.admin("POST", f"/admin/v1/projects/{project.json()['id']}/keys", {})
    integration = stack.admin(
        "POST",
        "/admin/v1/integrations",
        {
            "name": slug,
            "provider": "openai",
            "provider_slug": slug,
            "credentials": {"api_key": upstream.api_key},
            "custom_host": upstream.url,
            "allow_http": True,
            "enabled_models": ["gpt-4o-mini"],
        },
    )
    assert (project.status_code, key.status_code, integration.status_code) == (201, 201, 201), (
        integration.text
    )
    return Tenant(project_id=project.json()["id"], api_key=key.json()["key"], slug=slug)


def test_documented_headers_behave_as_the_readme_says(
    first_start: FirstStart, upstream: MockUpstream
) -> None:
    stack = first_start.stack
    assert {
        *re.findall(r"^\| `((?:x-keyrail-|Authorization|retry-after)[a-z-]*)", _section("Headers"), re.M)
    } == {
        "Authorization",
        "x-keyrail-provider",
        "x-keyrail-config",
        "x-keyrail-tags",
        "x-keyrail-timeout-ms",
        "retry-after",
        "x-keyrail-request-id",
        "x-keyrail-provider-slug",
        "x-keyrail-model",
        "x-keyrail-attempts",
        "x-keyrail-overhead-ms",
    }
    tenant = _tenant(stack, upstream, "openai-headers-mock")
    url = f"{stack.url}/v1/chat/completions"
    auth = {"Authorization": f"Bearer {tenant.api_key}"}
    hello = [{"role": "user", "content": "Hello"}]

    def post(body: object, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(url, json=body, headers={**auth, **(headers or {})}, timeout=30)

    def check(response: httpx.Response, status: int, present: set[str]) -> None:
        assert response.status_code == status, response.text
        names = {h for h in response.headers if h.startswith("x-keyrail-")}
        assert names == {"x-keyrail-request-id", "x-keyrail-overhead-ms", *present}, response.headers
        assert re.fullmatch(r"req_[0-9a-f]{24}", response.headers["x-keyrail-request-id"])
        assert re.fullmatch(r"\d+\.\d{3}", response.headers["x-keyrail-overhead-ms"])

    routed = {"x-keyrail-provider-slug", "x-keyrail-model", "x-keyrail-attempts"}
    ok = post({"model": tenant.model, "messages": hello}, {"x-keyrail-tags": "demo, laptop"})
    check(ok, 200, routed)
    assert ok.headers["x-keyrail-provider-slug"] == tenant.slug
    assert (ok.headers["x-keyrail-model"], ok.headers["x-keyrail-attempts"]) == ("gpt-4o-mini", "1")
    for model in ("gpt-4o-mini", tenant.model, "openai/gpt-4o-mini"):  # pinned by the header
        pinned = post({"model": model, "messages": hello}, {"x-keyrail-provider": tenant.slug})
        check(pinned, 200, routed)
        assert pinned.headers["x-keyrail-provider-slug"] == tenant.slug
    unknown_slug = post({"model": "gpt-4o-mini", "messages": hello}, {"x-keyrail-provider": "nope"})
    check(unknown_slug, 404, {"x-keyrail-attempts"})
    assert unknown_slug.json()["error"]["code"] == "provider_not_found"
    assert unknown_slug.headers["x-keyrail-attempts"] == "0"
    unknown_model = post({"model": "nope/gpt-4o-mini", "messages": hello})
    check(unknown_model, 404, {"x-keyrail-attempts"})
    assert unknown_model.headers["x-keyrail-attempts"] == "0"
    check(post({"model": tenant.model, "messages": hello}, {"Authorization": "Bearer kr-wrong"}), 401, set())
    check(post({"model": tenant.model}), 400, set())
    upstream_failed = post({"model": tenant.model, "messages": hello, "mock": {"status": 503}})
    check(upstream_failed, 503, routed)
    assert tenant.slug in upstream_failed.json()["error"]["message"]
    assert "retry-after" not in upstream_failed.headers
    limited = post({"model": tenant.model, "messages": hello, "mock": {"status": 429, "retry_after": 3}})
    check(limited, 429, routed)
    assert limited.headers["retry-after"] == "3"
    for bad in ("0", "soon"):
        refused = post({"model": tenant.model, "messages": hello}, {"x-keyrail-timeout-ms": bad})
        check(refused, 400, set())
        assert refused.json()["error"]["param"] == "x-keyrail-timeout-ms"
    slow = {"model": tenant.model, "messages": hello, "mock": {"delay_ms": 2000}}
    late = post(slow, {"x-keyrail-timeout-ms": "100"})
    check(late, 504, routed)
    assert float(late.headers["x-keyrail-overhead-ms"]) < 1500
    with httpx.stream(
        "POST", url, json={"model": tenant.model, "messages": hello, "stream": True}, headers=auth
    ) as s:
        check(s, 200, routed)
        s.read()

    tagged = post(
        {"model": tenant.model, "messages": hello, "metadata": {"tags": "x"}},
        {"x-keyrail-tags": "demo, laptop"},
    )
    rows = stack.activity_rows(tagged.headers["x-keyrail-request-id"])
    assert [row["tags"] for row in rows] == [["demo", "laptop", "x"]] * 2


def test_what_works_today_claims(first_start: FirstStart, upstream: MockUpstream) -> None:
    stack = first_start.stack
    for method, path in [
        ("POST", "/v1/responses"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/messages"),
    ]:
        response = httpx.request(method, f"{stack.url}{path}", json={}, timeout=10)
        assert response.status_code == 404 and response.json()["error"]["message"].startswith("No route")
    for path, content_type in (("/docs", "text/html"), ("/openapi.json", "application/json")):
        served = httpx.get(f"{stack.url}{path}", timeout=10)
        assert served.status_code == 200 and served.headers["content-type"].startswith(content_type)

    tenant = _tenant(stack, upstream, "openai-claims-mock")
    saved: dict[str, dict[str, Any]] = {
        "vertex-claims": {
            "provider": "vertex",
            "credentials": {"service_account_json": service_account(), "region": "us-central1"},
        },
        "deepinfra-claims-mock": {
            "provider": "deepinfra",
            "credentials": {"api_key": upstream.api_key},
            "custom_host": upstream.url,
            "allow_http": True,
        },
        "fal-claims": {"provider": "fal", "credentials": {"api_key": "k"}},
        "openai-embed-mock": {
            "provider": "openai",
            "credentials": {"api_key": upstream.api_key},
            "custom_host": upstream.url,
            "allow_http": True,
        },
        "groq-claims-mock": {
            "provider": "groq",
            "credentials": {"api_key": upstream.api_key},
            "custom_host": upstream.url,
            "allow_http": True,
        },
    }
    for slug, fields in saved.items():
        created = stack.admin(
            "POST", "/admin/v1/integrations", {"name": slug, "provider_slug": slug, **fields}
        )
        assert created.status_code == 201, created.text

    def call(path: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tenant.api_key}"}
        return httpx.post(f"{stack.url}/v1/{path}", json=body, headers=headers, timeout=30)

    def chat(model: str) -> httpx.Response:
        return call("chat/completions", {"model": model, "messages": [{"role": "user", "content": "Hello"}]})

    # A Vertex key file is checked when saved (its requests are tested in test_vertex_end_to_end.py).
    unusable = {"service_account_json": {"type": "service_account"}, "region": "us-central1"}
    refused = stack.admin(
        "POST",
        "/admin/v1/integrations",
        {"name": "v", "provider_slug": "vertex-refused", "provider": "vertex", "credentials": unusable},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "credentials.service_account_json.project_id"
    deepinfra = chat("deepinfra-claims-mock/deepseek-ai/DeepSeek-V3")  # the compatible family's catalog
    assert deepinfra.status_code == 200 and deepinfra.json()["model"] == "deepseek-ai/DeepSeek-V3"
    outside = chat("deepinfra-claims-mock/meta-llama/Llama-3.3-70B-Instruct")  # not in the catalog
    assert (outside.status_code, outside.json()["error"]["code"]) == (404, "model_not_found")
    groq = chat("groq-claims-mock/llama-3.3-70b-versatile")
    assert groq.status_code == 200 and groq.headers["x-keyrail-provider-slug"] == "groq-claims-mock"
    fal = chat("fal-claims/fast-sdxl")
    assert (fal.status_code, fal.json()["error"]["code"]) == (400, "operation_not_supported")
    bare = chat("gpt-4o-mini")  # every in-scope integration serving it, in slug order
    assert bare.status_code == 200 and bare.headers["x-keyrail-provider-slug"] == "openai-claims-mock"
    custom = {"model_slug": "ft-claims", "base_model": "openai/gpt-4o-mini", "input_price_per_mtok": 0.3}
    registered = stack.admin("POST", "/admin/v1/integrations/openai-claims-mock/custom-models", custom)
    assert registered.status_code == 201, registered.text
    ft = chat("openai-claims-mock/ft-claims")  # custom models: routed from the moment the call returns
    assert ft.status_code == 200 and ft.json()["model"] == "ft-claims", ft.text
    models = httpx.get(f"{stack.url}/v1/models", headers={"Authorization": f"Bearer {tenant.api_key}"})
    assert {"openai-claims-mock/gpt-4o-mini", "openai-claims-mock/ft-claims"} <= {
        m["id"] for m in models.json()["data"]
    }
    catalog = stack.admin("GET", "/admin/v1/catalog?provider=anthropic").json()["data"]
    assert catalog and {e["provider"] for e in catalog} == {"anthropic"}
    embedded = call("embeddings", {"model": "openai-embed-mock/text-embedding-3-small", "input": "Hello"})
    assert embedded.status_code == 200 and embedded.json()["data"][0]["embedding"], embedded.text
    assert embedded.headers["x-keyrail-provider-slug"] == "openai-embed-mock"
    wrong = call("embeddings", {"model": "openai-embed-mock/gpt-4o-mini", "input": "Hello"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "wrong_endpoint_for_model")

    registry = load_registry()
    health = httpx.get(f"{stack.url}/healthz", timeout=10).json()
    assert [c for c in health["components"] if c.startswith("worker.")] == [
        f"worker.{pool}" for pool in registry.pools()
    ]
    for pool in sorted(set(registry.pools(available_only=False)) - set(registry.pools())):
        worker = subprocess.run(
            [sys.executable, "-m", "keyrail_cli.main", "worker", "--providers", pool],
            env=reader_env(stack.port),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert worker.returncode != 0 and f"unknown worker pool '{pool}'" in worker.stderr


def test_settings_table_names_every_setting_and_only_those() -> None:
    table = _section("Settings")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(KEYRAIL_[A-Z_]+)`.*$", table, re.M)}
    documented = {name for row in rows.values() for name in re.findall(r"`(KEYRAIL_[A-Z_]+)`", row)}
    sources = ["libs/keyrail_common/settings.py", "libs/keyrail_cli/supervisor.py"]
    read = {n for s in sources for n in re.findall(r"\"(KEYRAIL_[A-Z_]+)\"", (ROOT / s).read_text())}
    assert documented == read
    from keyrail_common.settings import load_settings

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("KEYRAIL_")}
    try:
        defaults = load_settings()
    finally:
        os.environ.update(saved)
    assert f"`{defaults.port}` / `{defaults.host}`" in rows["KEYRAIL_PORT"]
    assert f"({defaults.nats_port})" in rows["KEYRAIL_NATS_URL"]
    assert f"({defaults.vault_port};" in rows["KEYRAIL_VAULT_ADDR"]
    assert f"`{defaults.vault_kv_mount}`" in rows["KEYRAIL_VAULT_KV_MOUNT"]
    assert f"`{defaults.request_timeout_s:.0f}`" in rows["KEYRAIL_REQUEST_TIMEOUT_S"]
    assert defaults.providers_override == "" and "| none |" in rows["KEYRAIL_PROVIDERS_OVERRIDE"]
    assert defaults.data_dir == Path("./.keyrail").resolve() and "`./.keyrail`" in rows["KEYRAIL_DATA_DIR"]
    assert defaults.access_log and defaults.health_pools == ()  # () = every available pool


def test_layout_table_paths_exist() -> None:
    paths = re.findall(r"^\| ((?:`[^`]+`(?:, )?)+) \|", _section("Repository layout"), re.M)
    listed = [p for cell in paths for p in re.findall(r"`([^`]+)`", cell)]
    assert "contracts/" in listed and len(listed) >= 10
    for path in listed:
        assert (ROOT / path).exists(), path
