"""`keyrail custom-models|catalog`: an integration's custom models and the model catalog, over the
admin API, with the conventions of admin_commands.py (tables, `--json`, `--version`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from keyrail_cli.admin_client import USAGE_ERROR, AdminClient, CommandError
from keyrail_cli.admin_commands import (
    COMMAND_HELP,
    INTEGRATIONS,
    Output,
    _Actions,
    _get,
    _given,
    _version,
    _versioned,
    add_common_options,
)

CUSTOM_MODEL = (
    "id",
    "base_model",
    "custom_host",
    "input_price_per_mtok",
    "output_price_per_mtok",
    "additional_token_pricing",
    "price_version",
    "version",
)
CATALOG = ("id", "schema", "operation", "context_window", "prices", "source_date", "source", "version")


def price(value: str) -> float | None:
    """A price option: USD per 1M tokens, or `none` for unpriced."""
    if value.lower() == "none":
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"a price is a number or none (got {value!r})") from exc


def _pricing(pairs: list[str]) -> dict[str, float]:
    """`--price KIND=PRICE` options: further token kinds and their prices."""
    pricing = {}
    for pair in pairs:
        kind, _, value = pair.partition("=")
        try:
            pricing[kind] = float(value)
        except ValueError:
            raise CommandError(
                f"--price takes KIND=PRICE, e.g. cached_input=0.15 (got {pair!r})", USAGE_ERROR
            ) from None
    return pricing


def _custom_models(a: argparse.Namespace) -> str:
    return f"{INTEGRATIONS}/{a.slug}/custom-models"


def _one_custom_model(a: argparse.Namespace) -> str:
    return f"{_custom_models(a)}/{a.model_slug}"


UNGIVEN = ...  # a price option's default: absent (None is `none`, the price made unpriced)


def _custom_model_body(a: argparse.Namespace) -> dict[str, Any]:
    body = _given(a, "base_model", "custom_host")
    for option, field in (("input_price", "input_price_per_mtok"), ("output_price", "output_price_per_mtok")):
        if getattr(a, option) is not UNGIVEN:
            body[field] = getattr(a, option)
    if a.price or getattr(a, "no_prices", False):
        body["additional_token_pricing"] = _pricing(a.price)
    return body


def _add_custom_model(c: AdminClient, a: argparse.Namespace) -> Output:
    body = {"model_slug": a.model_slug, **_custom_model_body(a)}
    return Output(c.call("POST", _custom_models(a), body), CUSTOM_MODEL)


def _update_custom_model(c: AdminClient, a: argparse.Namespace) -> Output:
    path = _one_custom_model(a)
    return Output(c.call("PATCH", path, _custom_model_body(a), _version(a, c, path)), CUSTOM_MODEL)


CATALOG_PATH = "/admin/v1/catalog"


def _catalog(c: AdminClient, a: argparse.Namespace) -> Output:
    query = f"?{urlencode({'provider': a.provider})}" if a.provider else ""
    return Output(c.call("GET", f"{CATALOG_PATH}{query}"), CATALOG)


def _catalog_version(c: AdminClient, a: argparse.Namespace) -> int | None:
    """`--version`, or the entry's as listed now (None: a new id, which needs none)."""
    if a.version is not None:
        return int(a.version)
    listed = c.call("GET", f"{CATALOG_PATH}?{urlencode({'provider': a.provider})}")["data"]
    rows = [r for r in listed if r["id"] == f"{a.provider}/{a.model}"]
    return int(rows[0]["version"]) if rows else None


def _set_catalog_entry(c: AdminClient, a: argparse.Namespace) -> Output:
    prices = {
        "input": a.input_price,
        "output": a.output_price,
        "cached_input": a.cached_input_price,
        "cache_write": a.cache_write_price,
        "additional": _pricing(a.price),
    }
    body = {
        "schema": a.schema,
        "context_window": a.context_window,
        "prices": prices,
        "operation": a.operation,
        **_given(a, "source_date"),
    }
    path = f"{CATALOG_PATH}/{a.provider}/{a.model}"
    return Output(c.call("PUT", path, body, _catalog_version(c, a)), CATALOG)


def _remove_catalog_entry(c: AdminClient, a: argparse.Namespace) -> Output:
    path = f"{CATALOG_PATH}/{a.provider}/{a.model}"
    removed = c.call("DELETE", path, version=_catalog_version(c, a))
    restored = removed.get("restored")
    return Output(restored or removed, CATALOG if restored else ("id",), "" if restored else "removed")


def _add_custom_models(models: _Actions) -> None:
    models.add("list", "list an integration's custom models", _get(_custom_models, CUSTOM_MODEL), "slug")
    models.add("show", "show a custom model", _get(_one_custom_model, CUSTOM_MODEL), "slug", "model_slug")
    add = models.add(
        "add", "register a custom model (routed as SLUG/MODEL_SLUG)", _add_custom_model, "slug", "model_slug"
    )
    update = models.add(
        "update", "change a custom model", _update_custom_model, "slug", "model_slug", version=True
    )
    for parser, required in ((add, True), (update, False)):
        parser.add_argument("--base-model", required=required, help="a catalog id whose schema it speaks")
        parser.add_argument("--custom-host", help="its own base URL (empty: the integration's)")
        prices = "USD per 1M tokens, or none for unpriced (absent: unpriced" + (
            ")" if required else ", or unchanged)"
        )
        parser.add_argument("--input-price", type=price, default=UNGIVEN, help=prices)
        parser.add_argument("--output-price", type=price, default=UNGIVEN, help=prices)
        parser.add_argument(
            "--price",
            action="append",
            default=[],
            metavar="KIND=PRICE",
            help="additional token pricing, e.g. cached_input=0.15; repeat it for more kinds",
        )
    update.add_argument("--no-prices", action="store_true", help="remove every additional token price")
    remove = _versioned("DELETE", _one_custom_model, CUSTOM_MODEL)
    models.add("remove", "remove a custom model", remove, "slug", "model_slug", version=True)


def _add_catalog(parser: argparse.ArgumentParser) -> None:
    add_common_options(parser)
    parser.add_argument("--provider", help="only this provider's entries")
    parser.set_defaults(run=_catalog)
    actions = parser.add_subparsers(dest="action", required=False, metavar="ACTION")
    listing = actions.add_parser("list", help="list the catalog (the default)")
    add_common_options(listing)
    listing.add_argument("--provider", help="only this provider's entries")
    for name, help, run in (
        ("set", "add a catalog entry, or override a shipped one (all of it)", _set_catalog_entry),
        ("remove", "remove an owner's entry (an override: the shipped one is back)", _remove_catalog_entry),
    ):
        action = actions.add_parser(name, help=help, description=help)
        action.add_argument("provider")
        action.add_argument("model")
        add_common_options(action)
        action.add_argument(
            "--version", type=int, default=None, help="the version you read (default: as listed now)"
        )
        action.set_defaults(run=run)
        if name == "set":
            action.add_argument(
                "--schema", required=True, help="the wire format the model speaks, e.g. openai"
            )
            action.add_argument("--context-window", type=int, required=True)
            action.add_argument("--operation", default="chat", help="chat or embeddings")
            action.add_argument("--source-date", help="when the prices were taken, YYYY-MM-DD")
            for kind in ("input", "output", "cached-input", "cache-write"):
                action.add_argument(
                    f"--{kind}-price", type=price, default=None, help="USD per 1M tokens (absent: unpriced)"
                )
            action.add_argument(
                "--price",
                action="append",
                default=[],
                metavar="KIND=PRICE",
                help="a further token kind's price",
            )


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register `custom-models` and `catalog` with main.py's `command(name, help)` factory."""
    _add_custom_models(_Actions(command("custom-models", COMMAND_HELP["custom-models"])))
    _add_catalog(command("catalog", COMMAND_HELP["catalog"]))
