"""Secret generation and hashing: keys and tokens are stored only as hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TypeVar

T = TypeVar("T")

API_KEY_PREFIX = "kr-"
ADMIN_TOKEN_PREFIX = "kra-"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_admin_token() -> str:
    return ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 is enough here: the secrets are 256-bit random, not passwords."""
    return hashlib.sha256(secret.encode()).hexdigest()


def lookup_by_hash(table: dict[str, T], secret: str) -> T | None:
    """Find a record by the hash of a presented secret, comparing the hash in constant time."""
    digest = hash_secret(secret)
    record = table.get(digest)
    if record is None:
        return None
    stored = str(getattr(record, "key_hash", None) or getattr(record, "token_hash", ""))
    return record if hmac.compare_digest(stored, digest) else None


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
