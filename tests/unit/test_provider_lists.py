"""The provider registry is the one list of providers: no other module, manifest or table spells one.

`libs/keyrail_common/providers.json` (read by `registry.py`) names the providers. A provider
name that is not also an adapter name (`groq`, `together`, ...) has no business in any other
product module: one such string is the start of a second provider list. Adapter names
(`openai`, `anthropic`) are wire formats and dialects, and may appear where those are meant.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyrail_common.registry import load_registry
from keyrail_workers.adapters import ADAPTERS
from tests.support.contracts import REPO_ROOT

REGISTRY = load_registry()
PROVIDERS = frozenset(REGISTRY.names())
ADAPTER_NAMES = frozenset(REGISTRY.adapters)
NOT_ADAPTERS = PROVIDERS - ADAPTER_NAMES
REGISTRY_MODULE = Path("libs/keyrail_common/registry.py")

# A string constant that is a name or a list of names ("groq", "openai,groq", "worker --providers groq"):
# identifier-like words separated by commas, spaces, pipes or slashes. Prose is not a name list.
_NAME_LIST = re.compile(r"[A-Za-z0-9_.\-]+(?:[\s,;|/]+[A-Za-z0-9_.\-]+)*")
_SEPARATORS = re.compile(r"[\s,;|/]+")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """Ids of the string constants that are docstrings (of modules, classes, functions, attributes)."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                ids.add(id(node.value))
    return ids


def provider_names_in(source: str) -> set[str]:
    """Registry provider names (not adapter names) spelled by the string constants of `source`."""
    tree = ast.parse(source)
    docstrings = _docstring_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docstrings:
            continue
        text = node.value.strip()
        if not _NAME_LIST.fullmatch(text):
            continue
        found |= {token.lower() for token in _SEPARATORS.split(text)} & NOT_ADAPTERS
    return found


def product_modules() -> Iterator[Path]:
    for top in ("libs", "services"):
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT)
            if relative != REGISTRY_MODULE and "build" not in relative.parts:
                yield relative


def test_the_scan_covers_every_service_and_the_cli() -> None:
    packages = {str(p.parent) for p in product_modules()}

    for expected in (
        "libs/keyrail_cli",
        "libs/keyrail_common",
        "services/ingress/keyrail_ingress",
        "services/router/keyrail_router",
        "services/provider-workers/keyrail_workers",
        "services/provider-workers/keyrail_workers/adapters/openai",
        "services/audit/keyrail_audit",
    ):
        assert expected in packages
    assert str(REGISTRY_MODULE) not in {str(p) for p in product_modules()}


def test_the_registry_has_providers_that_are_not_adapters() -> None:
    # Otherwise the scan below checks nothing.
    assert {"groq", "together", "perplexity"} <= NOT_ADAPTERS
    assert {"openai", "anthropic"} <= PROVIDERS & ADAPTER_NAMES


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('OPENAI_FAMILY = {"openai", "groq", "together"}', {"groq", "together"}),
        ('FAMILY = ("perplexity",)', {"perplexity"}),
        ('if provider == "nebius":\n    pass', {"nebius"}),
        ('DEFAULT = "openai,groq"', {"groq"}),
        ('HELP = f"keyrail worker --providers groq {x}"', {"groq"}),
        ('X = {"Groq": 1}', {"groq"}),
        ('def f():\n    """Serves groq and together."""\n', set()),
        ('"""Module docstring: groq, together."""\nX = 1', set()),
        ("X = 1  # groq, together\n", set()),
        ('POOLS = ["openai", "anthropic"]', set()),  # adapter names are not a provider list
        ('MESSAGE = "Could not reach the upstream, try again."', set()),
        ('PATTERN = r"\\b(sk|gsk|xai)[-_]"', set()),  # a key-prefix pattern, not a name
    ],
    ids=[
        "set",
        "tuple",
        "comparison",
        "comma-list",
        "f-string",
        "capitalised",
        "function-docstring",
        "module-docstring",
        "comment",
        "adapter-names",
        "prose",
        "regex",
    ],
)
def test_the_scanner_finds_provider_names_in_code_not_in_docs(source: str, expected: set[str]) -> None:
    assert provider_names_in(source) == expected


def test_no_product_module_but_the_registry_spells_a_provider_name() -> None:
    offenders = {
        str(path): sorted(names)
        for path in product_modules()
        if (names := provider_names_in((REPO_ROOT / path).read_text(encoding="utf-8")))
    }

    assert offenders == {}, f"provider names outside the registry (read them from the registry): {offenders}"


# --- deploy manifests ----------------------------------------------------------------------------

_PROVIDERS_ARG = re.compile(r"--providers[\"']?(?:\s*,\s*|[ =]+)[\"']?([A-Za-z0-9_,<>\-]+)")
_POOL_SUBJECT = re.compile(r"keyrail\.provider\.([A-Za-z0-9_<>*\-]+)")


def pools_named_in(text: str) -> set[str]:
    """Worker pools a manifest names: `--providers a,b` (shell or YAML list form) and `keyrail.provider.<x>`;
    placeholders such as `<pool>` are skipped."""
    names: set[str] = set()
    for match in [*_PROVIDERS_ARG.finditer(text), *_POOL_SUBJECT.finditer(text)]:
        for name in match.group(1).split(","):
            if name and not any(c in name for c in "<>*"):
                names.add(name)
    return names


def deploy_files() -> list[Path]:
    return sorted(
        path
        for path in (REPO_ROOT / "deploy").rglob("*")
        if path.is_file()
        and ("--providers" in (text := path.read_text(errors="replace")) or "keyrail.provider." in text)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('command: ["worker", "--providers", "openai"]', {"openai"}),
        ("args: [worker, --providers, groq]", {"groq"}),
        ("args: ['worker', '--providers', 'groq,xai']", {"groq", "xai"}),
        ("run `keyrail worker --providers openai,anthropic`", {"openai", "anthropic"}),
        ("--providers=openai", {"openai"}),
        ("queue `keyrail.provider.openai` and keyrail.provider.groq,", {"openai", "groq"}),
        ("copy as worker-<pool> with `--providers <pool>` (keyrail.provider.<family>)", set()),
        ("keyrail.provider.*", set()),
    ],
)
def test_the_manifest_scanner(text: str, expected: set[str]) -> None:
    assert pools_named_in(text) == expected


def test_deploy_manifests_name_only_registry_pools() -> None:
    files = deploy_files()
    named = {str(path.relative_to(REPO_ROOT)): pools_named_in(path.read_text()) for path in files}

    assert files, "no deploy file mentions worker pools: the scan checks nothing"
    strays = {path: sorted(names - set(REGISTRY.pools())) for path, names in named.items()}
    assert {path: names for path, names in strays.items() if names} == {}


def test_the_deploy_manifests_run_a_worker_for_every_pool() -> None:
    """Without KEYRAIL_HEALTH_POOLS the ingress waits for every available pool: the shipped manifests
    must run them all, with a worker that names no pool (it serves every one) or one per pool."""
    for manifest in ("deploy/compose.yaml", "deploy/kubernetes/worker.yaml"):
        text = (REPO_ROOT / manifest).read_text()
        serves_all = re.search(r"""(?:command|args): \[["']?worker["']?\]""", text) is not None
        assert serves_all or pools_named_in(text) >= set(REGISTRY.pools()), manifest


# --- the worker's adapter table ------------------------------------------------------------------


def test_the_workers_adapters_are_the_registrys_available_adapters() -> None:
    assert set(ADAPTERS) == set(REGISTRY.pools())
    assert set(ADAPTERS) == {name for name, info in REGISTRY.adapters.items() if info.available}


def test_each_adapter_is_filed_under_its_own_name() -> None:
    for name, adapter in ADAPTERS.items():
        assert adapter.name == name
        assert adapter.operations, name
        assert adapter.dialects, name
