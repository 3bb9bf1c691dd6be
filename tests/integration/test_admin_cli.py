"""The `keyrail` admin commands against the running stack: the same API, tables or --json, the
token from KEYRAIL_ADMIN_TOKEN, credentials from a file or stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keyrail_cli.main import main
from tests.support.control_plane import vault_secret
from tests.support.stack import OWNER_TOKEN, KeyrailStack, MockUpstream

pytestmark = pytest.mark.integration


class Cli:
    def __init__(self, stack: KeyrailStack, capsys: pytest.CaptureFixture[str]) -> None:
        self.stack, self.capsys = stack, capsys

    def __call__(self, *argv: str, code: int = 0) -> tuple[str, str]:
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--url", self.stack.url])
        out, err = self.capsys.readouterr()
        assert exit_.value.code == code, (argv, out, err)
        return out, err

    def json(self, *argv: str) -> Any:
        return json.loads(self(*argv, "--json")[0])


@pytest.fixture
def cli(stack: KeyrailStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("KEYRAIL_ADMIN_TOKEN", OWNER_TOKEN)
    return Cli(stack, capsys)


def test_projects_keys_and_users_from_the_command_line(cli: Cli) -> None:
    project = cli.json("projects", "create", "cli project")
    out, _ = cli("projects", "list")
    assert out.splitlines()[0].split() == ["id", "name", "archived", "version"]
    assert any(line.startswith(project["id"]) and "cli project" in line for line in out.splitlines())
    out, note = cli("keys", "create", project["id"], "--name", "laptop")
    assert "the key is shown only now" in note and "kr-" in out
    key = next(line.split()[-1] for line in out.splitlines() if line.startswith("key "))
    assert key.startswith("kr-") and len(key) > 30
    key_id = next(line.split()[-1] for line in out.splitlines() if line.startswith("id "))
    listed, _ = cli("keys", "list", project["id"])
    assert key_id in listed and key not in listed
    revoked = cli.json("keys", "revoke", project["id"], key_id)
    assert revoked["revoked"] is True
    renamed = cli.json("projects", "rename", project["id"], "renamed")
    assert renamed["name"] == "renamed"
    assert cli.json("projects", "archive", project["id"])["archived"] is True
    assert cli.json("projects", "restore", project["id"])["archived"] is False
    # A version that is not the current one is refused, not overwritten.
    _, err = cli("projects", "rename", project["id"], "stale", "--version", str(project["version"]), code=1)
    assert err.startswith("keyrail projects: HTTP 409 version_conflict:")

    user = cli.json("users", "create", "Cli dev", "--role", f"{project['id']}=developer")
    assert user["project_roles"] == {project["id"]: "developer"}
    out, note = cli("users", "issue-token", user["id"], "--name", "cli")
    token = next(line.split()[-1] for line in out.splitlines() if line.startswith("token "))
    assert token.startswith("kra-") and "shown only now" in note
    tokens, _ = cli("users", "tokens", user["id"])
    assert token not in tokens
    changed = cli.json("users", "update", user["id"], "--role", f"{project['id']}=project_admin")
    assert changed["project_roles"] == {project["id"]: "project_admin"}
    token_id = cli.json("users", "tokens", user["id"])["data"][0]["id"]
    assert cli.json("users", "revoke-token", user["id"], token_id)["revoked"] is True
    assert cli.json("users", "disable", user["id"])["disabled"] is True
    history, _ = cli("events", "--aggregate", f"user/{user['id']}")
    assert "UserDisabled" in history and "UserUpdated" in history and "project_roles=" in history


def test_integrations_take_credentials_from_a_file_or_stdin_never_argv(
    cli: Cli, stack: KeyrailStack, upstream: MockUpstream, tmp_path: Path
) -> None:
    home = cli.json("projects", "create", "cli integrations")["id"]
    provider_key = upstream.api_key or ""
    assert provider_key
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"api_key": provider_key}))
    headers = tmp_path / "headers.json"
    headers.write_text(json.dumps({"X-Cli": "hdr-cli-8d7c6b5a"}))
    created = cli.json(
        "integrations",
        "create",
        "--name",
        "Cli mock",
        "--provider",
        "openai",
        "--slug",
        "openai-cli",
        "--credentials-file",
        str(credentials),
        "--headers-file",
        str(headers),
        "--models",
        "gpt-4o-mini",
        "--custom-host",
        upstream.url,
        "--allow-http",
        "--scope",
        home,  # not "all": other tests' `openai/<model>` requests would route through it too
    )
    assert created["enabled_models"] == ["gpt-4o-mini"] and created["credential_version"] == 1
    assert created["project_scope"] == [home]
    out, _ = cli("integrations", "list")
    assert "openai-cli" in out and provider_key not in out
    updated = cli.json(
        "integrations", "update", "openai-cli", "--description", "from the cli", "--no-headers"
    )
    assert updated["description"] == "from the cli" and updated["credential_version"] == 2
    assert "custom_auth_headers" not in vault_secret(stack, "openai-cli", 2)
    models = cli.json("integrations", "models", "openai-cli", "gpt-4o-mini,gpt-4o")
    assert models["enabled_models"] == ["gpt-4o-mini", "gpt-4o"]
    _, err = cli("integrations", "update", "openai-cli", "--custom-host", "http://169.254.169.254/", code=1)
    assert err.startswith("keyrail integrations: HTTP 400 invalid_value:") and err.count("\n") == 1

    # The installed command, the credential on stdin.
    rotated = subprocess.run(
        [
            str(Path(sys.executable).parent / "keyrail"),
            "integrations",
            "rotate",
            "openai-cli",
            "--credentials-file",
            "-",
            "--url",
            stack.url,
            "--json",
        ],
        input=json.dumps({"api_key": provider_key}),
        env={"KEYRAIL_ADMIN_TOKEN": OWNER_TOKEN, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout)["version"] == 3 and provider_key not in rotated.stdout
    health = cli.json("integrations", "health", "openai-cli")
    assert health == {"provider_slug": "openai-cli", "data": []}  # nothing failed: every circuit closed
    out, _ = cli("integrations", "health", "openai-cli")
    assert out.split()[:3] == ["model", "state", "failures"]
    assert cli.json("integrations", "disable", "openai-cli")["disabled"] is True
