"""`keyrail sql`: every failure is one line on stderr and a non-zero exit, never a traceback.

The answers come from a real HTTP server on 127.0.0.1 that plays the admin API's shapes; the
end-to-end cases against the real stack are in tests/integration/test_readme_worked_example.py.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from keyrail_cli.sql import run_sql

ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "ok": (
        200,
        "application/json",
        json.dumps({"columns": ["a", "b"], "rows": [[1, "x\ty"]], "elapsed_ms": 1.5}).encode(),
    ),
    "none": (200, "application/json", json.dumps({"columns": ["a"], "rows": [], "elapsed_ms": 1}).encode()),
    "html": (502, "text/html", b"<html>bad gateway</html>"),
    "list": (200, "application/json", b"[1, 2]"),
    "denied": (
        401,
        "application/json",
        json.dumps(
            {"error": {"message": "Invalid or missing admin token.", "code": "invalid_token"}}
        ).encode(),
    ),
    "sql": (
        400,
        "application/json",
        json.dumps(
            {"error": {"message": "Code: 62.\nSyntax error\n  here", "code": "query_failed"}}
        ).encode(),
    ),
    "audit": (
        503,
        "application/json",
        json.dumps({"error": {"message": "The audit service is not answering"}}).encode(),
    ),
}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/admin/v1/sql" and self.headers["Authorization"] == "Bearer kra-good"
        status, content_type, payload = ANSWERS[body["sql"]]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def admin_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _one_line_failure(capsys: pytest.CaptureFixture[str], code: int, expected_code: int, start: str) -> str:
    out, err = capsys.readouterr()
    assert (code, out) == (expected_code, "")
    assert err.startswith(f"keyrail sql: {start}") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_prints_columns_rows_and_a_count(admin_api: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_sql("ok", admin_api, "kra-good") == 0
    assert capsys.readouterr().out == "a\tb\n1\tx y\n(1 row, 1.5 ms)\n"
    assert run_sql("none", admin_api, "kra-good") == 0
    assert capsys.readouterr().out == "a\n(0 rows, 1 ms)\n"


def test_missing_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KEYRAIL_ADMIN_TOKEN", raising=False)
    _one_line_failure(capsys, run_sql("ok", "http://127.0.0.1:1", None), 2, "no admin token")
    _one_line_failure(capsys, run_sql("ok", "http://127.0.0.1:1", "  "), 2, "no admin token")


@pytest.mark.parametrize(
    ("token", "named"),
    [
        ("kra-…", "HORIZONTAL ELLIPSIS (U+2026) at character 5"),
        ("kra-a\nb", "(U+000A)"),
        ("kra a", "SPACE (U+0020)"),
    ],
)
def test_token_a_header_cannot_carry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], token: str, named: str
) -> None:
    monkeypatch.setenv("KEYRAIL_ADMIN_TOKEN", token)
    err = _one_line_failure(capsys, run_sql("ok", "http://127.0.0.1:1", None), 2, "the admin token has")
    assert named in err


def test_bad_url(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_failure(capsys, run_sql("ok", "localhost:8080", "kra-good"), 2, "--url must start with http")


def test_unreachable_ingress(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connection refused
        monkeypatch.setenv("KEYRAIL_PORT", str(port))
        err = _one_line_failure(
            capsys, run_sql("ok", None, "kra-good"), 1, "cannot reach the Keyrail ingress at"
        )
    assert f"http://127.0.0.1:{port}" in err and "KEYRAIL_PORT" in err


@pytest.mark.parametrize(
    ("query", "start"),
    [
        ("html", "http://127.0.0.1:"),  # … answered HTTP 502 with a body that is not Keyrail's JSON
        ("list", "http://127.0.0.1:"),
        ("denied", "the admin token was rejected (HTTP 401): Invalid or missing admin token."),
        ("sql", "query failed: Code: 62. Syntax error here"),
        ("audit", "HTTP 503: The audit service is not answering"),
    ],
)
def test_gateway_failures(admin_api: str, capsys: pytest.CaptureFixture[str], query: str, start: str) -> None:
    err = _one_line_failure(capsys, run_sql(query, admin_api, "kra-good"), 1, start)
    if query in ("html", "list"):
        assert "is not Keyrail's JSON" in err
