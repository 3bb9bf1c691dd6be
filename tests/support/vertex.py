"""Vertex AI service accounts for tests: the contract's key-file layout with a fresh RSA-2048 key.

The fixture's `private_key` is a placeholder (provider reference §6.3): the key is generated here
(once per process: RSA generation takes a while), and its public half verifies what Keyrail signed.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.contracts import FIXTURES

REGION = "us-central1"


def rsa_key(label: str = "default") -> rsa.RSAPrivateKey:
    """One RSA-2048 key per label for the whole test process."""
    return _generated(label)


@functools.cache
def _generated(label: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def service_account(token_uri: str = "", label: str = "default", **changes: Any) -> dict[str, Any]:
    """The fixture key file with a generated key (and `token_uri` when given)."""
    account: dict[str, Any] = json.loads((FIXTURES / "vertex" / "service_account_example.json").read_text())
    account["private_key"] = private_pem(rsa_key(label))
    if token_uri:
        account["token_uri"] = token_uri
    account.update(changes)
    return account


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verified_jwt(token: str, key: rsa.RSAPrivateKey) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of an RS256 JWT whose signature the key's public half verifies (else raises)."""
    header, claims, signature = token.split(".")
    key.public_key().verify(
        _b64decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return json.loads(_b64decode(header)), json.loads(_b64decode(claims))
