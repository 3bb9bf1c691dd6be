"""`keyrail custom-models|catalog`: the bodies the options make (the commands against the real
stack: tests/integration/test_custom_models.py)."""

from __future__ import annotations

import pytest

from keyrail_cli.admin_client import CommandError
from keyrail_cli.main import build_parser
from keyrail_cli.model_commands import _custom_model_body, _pricing


def test_add_sends_only_the_prices_given_and_none_means_unpriced() -> None:
    args = build_parser().parse_args(
        [
            "custom-models",
            "add",
            "openai-prod",
            "ft-v3",
            "--base-model",
            "openai/gpt-4o-mini",
            "--input-price",
            "0",
        ]
    )
    assert _custom_model_body(args) == {"base_model": "openai/gpt-4o-mini", "input_price_per_mtok": 0.0}
    update = build_parser().parse_args(
        [
            "custom-models",
            "update",
            "openai-prod",
            "ft-v3",
            "--output-price",
            "none",
            "--price",
            "reasoning=12",
        ]
    )
    assert _custom_model_body(update) == {
        "output_price_per_mtok": None,
        "additional_token_pricing": {"reasoning": 12.0},
    }
    cleared = build_parser().parse_args(["custom-models", "update", "openai-prod", "ft-v3", "--no-prices"])
    assert _custom_model_body(cleared) == {"additional_token_pricing": {}}


def test_a_price_that_is_no_number_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["custom-models", "add", "s", "m", "--base-model", "b", "--input-price", "cheap"]
        )
    with pytest.raises(CommandError, match="--price takes KIND=PRICE"):
        _pricing(["reasoning"])


def test_catalog_lists_by_default() -> None:
    args = build_parser().parse_args(["catalog", "--provider", "anthropic"])
    assert (args.action, args.provider, args.run.__name__) == (None, "anthropic", "_catalog")
