"""`keyrail`'s manners: --version, every command's help lists the environment variables it reads
(with their defaults), and --providers names the pools it accepts and refuses the others."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from keyrail_cli.main import build_parser, main
from keyrail_cli.pools import accepted_pools
from keyrail_common.settings import load_settings
from keyrail_workers.adapters import ADAPTERS

REPO = Path(__file__).resolve().parents[3]
ADMIN_COMMANDS = [
    "users",
    "projects",
    "keys",
    "integrations",
    "custom-models",
    "catalog",
    "virtual-models",
    "configs",
    "events",
]
COMMANDS = ["up", "ingress", "router", "worker", "audit", "sql", "mock-upstream", *ADMIN_COMMANDS]

# What each command reads, worked out from the code (settings fields each service uses), written
# here independently of keyrail_cli.envhelp so that a wrong table fails.
READS = {
    "up": {
        "KEYRAIL_DATA_DIR",
        "KEYRAIL_HOST",
        "KEYRAIL_PORT",
        "KEYRAIL_NATS_URL",
        "KEYRAIL_NATS_PORT",
        "KEYRAIL_VAULT_ADDR",
        "KEYRAIL_VAULT_PORT",
        "KEYRAIL_VAULT_TOKEN_FILE",
        "KEYRAIL_CLICKHOUSE_URL",
        "KEYRAIL_ACTIVITY_TTL_DAYS",
        "KEYRAIL_COSTS_TTL_DAYS",
        "KEYRAIL_BOOTSTRAP_TOKEN",
        "KEYRAIL_METRICS_BASE_PORT",
        "KEYRAIL_ACCESS_LOG",
        "KEYRAIL_PROVIDERS_OVERRIDE",
    },
    "ingress": {
        "KEYRAIL_HOST",
        "KEYRAIL_PORT",
        "KEYRAIL_NATS_URL",
        "KEYRAIL_VAULT_ADDR",
        "KEYRAIL_VAULT_TOKEN",
        "KEYRAIL_BOOTSTRAP_TOKEN",
        "KEYRAIL_REQUEST_TIMEOUT_S",
        "KEYRAIL_HEALTH_POOLS",
        "KEYRAIL_PROVIDERS_OVERRIDE",
        "KEYRAIL_ACTIVITY_BUFFER",
    },
    "router": {
        "KEYRAIL_NATS_URL",
        "KEYRAIL_METRICS_PORT",
        "KEYRAIL_ACCESS_LOG",
        "KEYRAIL_REQUEST_TIMEOUT_S",  # the budget of a request from an ingress that sent none
        "KEYRAIL_PROVIDERS_OVERRIDE",
        "KEYRAIL_ACTIVITY_BUFFER",
    },
    "worker": {
        "KEYRAIL_NATS_URL",
        "KEYRAIL_VAULT_ADDR",
        "KEYRAIL_VAULT_ROLE_ID",
        "KEYRAIL_METRICS_PORT",
        "KEYRAIL_PROVIDERS_OVERRIDE",
        "KEYRAIL_ACTIVITY_BUFFER",
    },
    "audit": {
        "KEYRAIL_NATS_URL",
        "KEYRAIL_CLICKHOUSE_URL",
        "KEYRAIL_ACTIVITY_TTL_DAYS",
        "KEYRAIL_COSTS_TTL_DAYS",
        "KEYRAIL_DATA_DIR",
        "KEYRAIL_METRICS_PORT",
    },
    "sql": {"KEYRAIL_PORT", "KEYRAIL_ADMIN_TOKEN"},
    "mock-upstream": set(),
    **{command: {"KEYRAIL_PORT", "KEYRAIL_ADMIN_TOKEN"} for command in ADMIN_COMMANDS},
}
# ...and what it must not claim to read.
IGNORES = {
    "up": {"KEYRAIL_METRICS_PORT", "KEYRAIL_ADMIN_TOKEN"},  # up sets each service's metrics port itself
    "ingress": {"KEYRAIL_CLICKHOUSE_URL", "KEYRAIL_METRICS_BASE_PORT", "KEYRAIL_ADMIN_TOKEN"},
    "router": {"KEYRAIL_VAULT_ADDR", "KEYRAIL_CLICKHOUSE_URL", "KEYRAIL_PORT", "KEYRAIL_BOOTSTRAP_TOKEN"},
    "worker": {"KEYRAIL_CLICKHOUSE_URL", "KEYRAIL_PORT", "KEYRAIL_BOOTSTRAP_TOKEN"},
    "audit": {"KEYRAIL_VAULT_ADDR", "KEYRAIL_PORT", "KEYRAIL_BOOTSTRAP_TOKEN", "KEYRAIL_ACTIVITY_BUFFER"},
    "sql": {"KEYRAIL_NATS_URL", "KEYRAIL_VAULT_ADDR", "KEYRAIL_DATA_DIR"},
    "mock-upstream": {"KEYRAIL_PORT", "KEYRAIL_DATA_DIR"},
    **{command: {"KEYRAIL_NATS_URL", "KEYRAIL_VAULT_ADDR", "KEYRAIL_DATA_DIR"} for command in ADMIN_COMMANDS},
}


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def documented(help_text: str) -> dict[str, str]:
    """KEYRAIL_* variable → the default its help entry states."""
    return dict(re.findall(r"^  (KEYRAIL_[A-Z0-9_]+) +default: (.+)$", help_text, re.MULTILINE))


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"keyrail {metadata.version('keyrail')}\n"


def test_installed_command_answers_version() -> None:
    keyrail = Path(sys.executable).parent / "keyrail"
    result = subprocess.run([str(keyrail), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"keyrail \d+\.\d+\.\d+\S*\n", result.stdout), result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_the_environment_variables_the_command_reads(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    text = help_of(capsys, command)
    assert "environment variables" in text
    listed = documented(text)
    assert READS[command] <= set(listed), READS[command] - set(listed)
    assert not IGNORES[command] & set(listed), IGNORES[command] & set(listed)
    if not READS[command]:
        assert "environment variables: none" in text
    # No variable appears without a stated default.
    assert set(re.findall(r"^  (KEYRAIL_[A-Z0-9_]+)", text, re.MULTILINE)) == set(listed)


def _variables_read_in_code() -> set[str]:
    """Every KEYRAIL_* name the services and the CLI read from the environment."""
    read = re.compile(r"""(?:_env|environ\.get|getenv|environ\[|setdefault)\(?\s*["'](KEYRAIL_[A-Z0-9_]+)""")
    names: set[str] = set()
    for source in [*REPO.joinpath("libs").rglob("*.py"), *REPO.joinpath("services").rglob("*.py")]:
        names |= set(read.findall(source.read_text()))
    return names


def test_every_variable_the_code_reads_is_in_some_help(capsys: pytest.CaptureFixture[str]) -> None:
    in_code = _variables_read_in_code()
    assert {
        "KEYRAIL_DATA_DIR",
        "KEYRAIL_ADMIN_TOKEN",
        "KEYRAIL_METRICS_BASE_PORT",
    } <= in_code  # the scan works
    helped: set[str] = set()
    for command in COMMANDS:
        helped |= set(documented(help_of(capsys, command)))
    assert in_code - helped == set()


def test_up_help_lists_every_setting_but_the_per_service_metrics_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings_source = (REPO / "libs" / "keyrail_common" / "settings.py").read_text()
    in_settings = set(re.findall(r"""["'](KEYRAIL_[A-Z0-9_]+)["']""", settings_source))
    assert len(in_settings) > 15  # the scan works
    assert in_settings - set(documented(help_of(capsys, "up"))) == {"KEYRAIL_METRICS_PORT"}


def test_stated_defaults_are_the_defaults(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("KEYRAIL_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    stated = documented(help_of(capsys, "up")) | documented(help_of(capsys, "router"))
    assert Path(stated["KEYRAIL_DATA_DIR"]).resolve() == settings.data_dir
    assert stated["KEYRAIL_HOST"] == settings.host
    assert int(stated["KEYRAIL_PORT"]) == settings.port
    assert int(stated["KEYRAIL_NATS_PORT"]) == settings.nats_port
    assert int(stated["KEYRAIL_VAULT_PORT"]) == settings.vault_port
    assert stated["KEYRAIL_VAULT_KV_MOUNT"] == settings.vault_kv_mount
    assert stated["KEYRAIL_METRICS_HOST"] == settings.metrics_host
    assert float(stated["KEYRAIL_REQUEST_TIMEOUT_S"]) == settings.request_timeout_s
    assert stated["KEYRAIL_METRICS_PORT"].startswith(f"{settings.metrics_port} ")
    assert (stated["KEYRAIL_ACCESS_LOG"] == "1") is settings.access_log
    nats_url = stated["KEYRAIL_NATS_URL"].replace("$KEYRAIL_NATS_PORT", stated["KEYRAIL_NATS_PORT"])
    assert nats_url == settings.nats_url
    vault_addr = stated["KEYRAIL_VAULT_ADDR"].replace("$KEYRAIL_VAULT_PORT", stated["KEYRAIL_VAULT_PORT"])
    assert vault_addr == settings.vault_addr
    data_dir = str(settings.data_dir)
    assert stated["KEYRAIL_VAULT_TOKEN_FILE"].replace("<data dir>", data_dir) == settings.vault_token_file
    assert stated["KEYRAIL_CLICKHOUSE_URL"].replace("<data dir>", data_dir) == settings.clickhouse_url
    assert stated["KEYRAIL_ACTIVITY_TTL_DAYS"].startswith(f"{settings.activity_ttl_days} ")
    assert stated["KEYRAIL_COSTS_TTL_DAYS"].startswith(f"{settings.costs_ttl_days} ")


def test_accepted_pools_are_the_adapters_this_worker_has() -> None:
    assert set(accepted_pools()) == set(ADAPTERS)


@pytest.mark.parametrize("command", ["up", "worker"])
def test_providers_help_names_the_accepted_pools(capsys: pytest.CaptureFixture[str], command: str) -> None:
    text = " ".join(help_of(capsys, command).split())  # argparse wraps the option's help
    assert f"(accepted: {', '.join(accepted_pools())};" in text
    assert "{accepted pools}" not in text


@pytest.mark.parametrize("command", ["up", "worker"])
def test_unknown_provider_is_refused_by_argparse(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--providers", "openai,not-a-pool"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"keyrail {command}: error: argument --providers" in err
    assert "unknown worker pool 'not-a-pool'" in err
    assert f"accepted: {', '.join(accepted_pools())}" in err


@pytest.mark.parametrize("command", ["up", "worker"])
def test_known_providers_are_parsed(command: str) -> None:
    pools = accepted_pools()
    args = build_parser().parse_args([command, "--providers", " , ".join(pools)])
    assert args.providers == list(pools)
    assert build_parser().parse_args([command]).providers is None  # main() then takes every accepted pool


def test_empty_providers_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["up", "--providers", ","])
    assert exit_.value.code == 2
    assert "name at least one worker pool" in capsys.readouterr().err


def test_up_has_a_verbose_switch(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["up", "--verbose"]).verbose is True
    assert build_parser().parse_args(["up"]).verbose is False
    assert "<data dir>/logs/nats.log" in " ".join(help_of(capsys, "up").split())
