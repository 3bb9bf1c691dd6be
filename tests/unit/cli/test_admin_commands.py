"""`keyrail users|projects|keys|integrations|events`: tables, inputs, and no secret on the command
line. The commands against the real stack: tests/integration/test_admin_cli.py."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from keyrail_cli.admin_client import CommandError
from keyrail_cli.admin_commands import ADMIN_COMMANDS, Output, read_json_object, render, table
from keyrail_cli.main import build_parser, main


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every admin command and action's parser."""
    found = []
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in ADMIN_COMMANDS:
        parser = commands.choices[name]
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions:
            found.append((name, parser))
        for sub in actions:
            found += [(f"{name} {action}", p) for action, p in sub.choices.items()]
    return found


def test_no_option_takes_a_secret_on_the_command_line() -> None:
    parsers = _parsers()
    assert len(parsers) > 20
    for name, parser in parsers:
        options = {o for a in parser._actions for o in a.option_strings}
        secret_like = {
            o for o in options if any(w in o for w in ("token", "key", "secret", "credential", "header"))
        }
        assert secret_like <= {"--credentials-file", "--headers-file", "--no-headers"}, (name, secret_like)


def test_a_list_is_a_table_with_a_header_row() -> None:
    rows = [
        {"id": "proj_1", "name": "demo", "archived": False, "version": 12},
        {"id": "proj_22", "name": "a b", "archived": True, "version": 7},
    ]
    assert table(rows, ("id", "name", "archived", "version")) == (
        "id       name  archived  version\nproj_1   demo  no        12\nproj_22  a b   yes       7"
    )


def test_one_object_is_shown_field_per_line_and_json_is_the_apis_own() -> None:
    user = {"id": "user_1", "project_roles": {"proj_1": "developer"}, "email": "", "owner": False}
    output = Output(user, ("id", "email", "owner", "project_roles"))
    assert render(output, as_json=False) == (
        "id             user_1\nemail          -\nowner          no\nproject_roles  proj_1=developer"
    )
    assert json.loads(render(output, as_json=True)) == user


def test_changes_in_the_history_read_before_and_after() -> None:
    change = {"changes": {"name": {"before": "a", "after": "b"}, "scope": {"before": "all", "after": ["p"]}}}
    assert table([change], ("changes",)).splitlines()[1] == "name=a -> b, scope=all -> p"


def test_credentials_come_from_a_file_or_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "credentials.json"
    file.write_text('{"api_key": "sk-from-a-file"}')
    assert read_json_object(str(file), "the credentials") == {"api_key": "sk-from-a-file"}
    monkeypatch.setattr("sys.stdin", io.StringIO('{"api_key": "sk-from-stdin"}'))
    assert read_json_object("-", "the credentials") == {"api_key": "sk-from-stdin"}
    for content, message in (("[1]", "must be a JSON object"), ("{nope", "is not JSON")):
        file.write_text(content)
        with pytest.raises(CommandError, match=message) as caught:
            read_json_object(str(file), "the credentials")
        assert caught.value.exit_code == 2
    with pytest.raises(CommandError, match="cannot read the credentials"):
        read_json_object(str(tmp_path / "missing.json"), "the credentials")


def test_without_a_token_it_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KEYRAIL_ADMIN_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["projects", "list"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("keyrail projects: no admin token: set KEYRAIL_ADMIN_TOKEN") and err.count("\n") == 1
    )


def test_an_unreachable_gateway_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEYRAIL_ADMIN_TOKEN", "kra-anything")
    with pytest.raises(SystemExit) as exit_:
        main(["users", "list", "--url", "http://127.0.0.1:1"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith("keyrail users: cannot reach the Keyrail ingress at")
