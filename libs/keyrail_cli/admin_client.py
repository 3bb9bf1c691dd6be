"""What every `keyrail` command on the admin API shares: the token, the URL, the HTTP call, and
failures as one line (CommandError) instead of a traceback.

Exit status 2 when the command itself is wrong (no or malformed token, bad URL, unreadable
file), 1 when the gateway refused or failed.
"""

from __future__ import annotations

import os
import unicodedata
from typing import Any

import httpx

USAGE_ERROR = 2
FAILED = 1
TIMEOUT_S = 60.0


class CommandError(Exception):
    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(text: str, limit: int = 500) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def check_token(token: str, how: str = "set KEYRAIL_ADMIN_TOKEN") -> str:
    token = token.strip()
    if not token:
        raise CommandError(
            f"no admin token: {how} to the owner token that `keyrail up` printed on first start "
            "(or another admin token)",
            USAGE_ERROR,
        )
    for position, char in enumerate(token, start=1):
        if not "!" <= char <= "~":  # printable ASCII without space: what an HTTP header can carry
            name = unicodedata.name(char, "a control character")
            raise CommandError(
                f"the admin token has {name} (U+{ord(char):04X}) at character {position}, which an "
                "HTTP header cannot carry; paste the whole kra- token that `keyrail up` printed",
                USAGE_ERROR,
            )
    return token


def base_url(url: str | None) -> str:
    base = (url or f"http://127.0.0.1:{os.environ.get('KEYRAIL_PORT') or '8080'}").rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CommandError(f"--url must start with http:// or https:// (got {base!r})", USAGE_ERROR)
    return base


class AdminClient:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self._token = token

    def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """The raw answer; a gateway that cannot be reached is a CommandError."""
        where = f"the Keyrail ingress at {self.base}"
        try:
            return httpx.request(
                method,
                f"{self.base}{path}",
                json=body,
                headers={"Authorization": f"Bearer {self._token}", **(headers or {})},
                timeout=TIMEOUT_S,
            )
        except httpx.ConnectError as exc:
            raise CommandError(
                f"cannot reach {where} ({one_line(str(exc)) or 'connection failed'}); is `keyrail up` "
                "running? Set KEYRAIL_PORT or pass --url if it listens elsewhere"
            ) from exc
        except httpx.TimeoutException as exc:
            raise CommandError(f"no answer from {where} within {TIMEOUT_S:.0f}s") from exc
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            raise CommandError(f"cannot query {where}: {one_line(str(exc)) or type(exc).__name__}") from exc

    def call(self, method: str, path: str, body: Any = None, version: int | None = None) -> Any:
        """The answer's JSON; an error answer is a CommandError carrying the gateway's message."""
        headers = {"If-Match": f'"{version}"'} if version is not None else None
        response = self.send(method, path, body, headers)
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code < 300 and payload is not None:
            return payload
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            raise CommandError(
                f"{self.base} answered HTTP {response.status_code} with a body that is not Keyrail's "
                "JSON; is that address a Keyrail ingress?"
            )
        code = f" {error['code']}" if error.get("code") else ""
        raise CommandError(f"HTTP {response.status_code}{code}: {one_line(error.get('message', ''))}")
