"""What the Anthropic integration tests share: projects with Anthropic integrations on the
session's stack."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import openai

from tests.support.stack import KeyrailStack

ANTHROPIC_KEY = "sk-ant-upstream-" + secrets.token_hex(16)
MODEL = "claude-sonnet-4-6"
PRICES = {
    "input": Decimal("3"),
    "cached_input": Decimal("0.3"),
    "output": Decimal("15"),
}  # the catalog's, USD per 1M tokens


@dataclass
class Project:
    project_id: str
    api_key: str

    def client(self, stack: KeyrailStack) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=self.api_key, max_retries=0)


def new_project(stack: KeyrailStack, name: str) -> Project:
    project = stack.admin("POST", "/admin/v1/projects", {"name": name})
    assert project.status_code == 201, project.text
    key = stack.admin("POST", f"/admin/v1/projects/{project.json()['id']}/keys", {"name": "tests"})
    assert key.status_code == 201, key.text
    return Project(project.json()["id"], key.json()["key"])


def add_anthropic_integration(
    stack: KeyrailStack, project: Project, slug: str, base_url: str, **fields: Any
) -> dict[str, Any]:
    body = {
        "name": slug,
        "provider": "anthropic",
        "provider_slug": slug,
        "project_scope": [project.project_id],
        "credentials": {"api_key": ANTHROPIC_KEY},
        "custom_host": base_url,
        "allow_http": True,
        "enabled_models": [MODEL],
        **fields,
    }
    response = stack.admin("POST", "/admin/v1/integrations", body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["api_format"] == "anthropic"
    return created
