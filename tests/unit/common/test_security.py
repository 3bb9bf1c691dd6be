"""Secrets are generated with a recognisable prefix and only ever looked up by their hash."""

from __future__ import annotations

import hashlib
import re

import msgspec

from keyrail_common.config_events import ApiKeyIssued, UserCreated
from keyrail_common.security import (
    API_KEY_PREFIX,
    hash_secret,
    lookup_by_hash,
    new_admin_token,
    new_api_key,
    new_id,
)


def issued(secret: str, key_id: str = "key_1") -> ApiKeyIssued:
    return ApiKeyIssued(
        key_id=key_id,
        org_id="org_1",
        project_id="proj_a",
        name="ci",
        key_hash=hash_secret(secret),
        key_prefix=secret[:7],
    )


def test_api_keys_have_the_kr_prefix_and_enough_randomness() -> None:
    keys = {new_api_key() for _ in range(50)}

    assert API_KEY_PREFIX == "kr-"
    assert len(keys) == 50
    for key in keys:
        assert re.fullmatch(r"kr-[A-Za-z0-9_-]{43}", key), key  # 32 random bytes, url-safe base64


def test_admin_tokens_have_their_own_prefix() -> None:
    token = new_admin_token()

    assert re.fullmatch(r"kra-[A-Za-z0-9_-]{43}", token), token
    assert token != new_admin_token()
    # An API key can never be mistaken for an admin token: its third character is always '-'.
    assert not new_api_key().startswith("kra-")


def test_hash_is_sha256_hex_and_does_not_contain_the_secret() -> None:
    secret = new_api_key()

    digest = hash_secret(secret)

    assert digest == hashlib.sha256(secret.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert secret not in digest
    assert hash_secret(secret) == digest
    assert hash_secret(secret + "x") != digest


def test_lookup_by_hash_finds_the_record_for_the_presented_secret() -> None:
    secret_one, secret_two = new_api_key(), new_api_key()
    one, two = issued(secret_one, "key_1"), issued(secret_two, "key_2")
    table = {one.key_hash: one, two.key_hash: two}

    assert lookup_by_hash(table, secret_one) is one
    assert lookup_by_hash(table, secret_two) is two


def test_lookup_by_hash_rejects_other_secrets() -> None:
    secret = new_api_key()
    record = issued(secret)
    table = {record.key_hash: record}

    assert lookup_by_hash(table, new_api_key()) is None
    assert lookup_by_hash(table, "") is None
    assert lookup_by_hash(table, secret[:-1]) is None
    assert lookup_by_hash(table, secret + " ") is None
    # Knowing the stored hash is not enough: presenting it is hashed again.
    assert lookup_by_hash(table, record.key_hash) is None


def test_lookup_by_hash_rejects_a_record_whose_stored_hash_disagrees_with_its_table_key() -> None:
    secret = new_api_key()
    corrupt = msgspec.structs.replace(issued(secret), key_hash=hash_secret("something else"))

    assert lookup_by_hash({hash_secret(secret): corrupt}, secret) is None


def test_lookup_by_hash_works_for_admin_token_records() -> None:
    token = new_admin_token()
    user = UserCreated(
        user_id="usr_1", org_id="org_1", name="Ada", role="owner", token_hash=hash_secret(token)
    )

    assert lookup_by_hash({user.token_hash: user}, token) is user
    assert lookup_by_hash({user.token_hash: user}, new_admin_token()) is None


def test_new_id_is_prefixed_and_unique() -> None:
    ids = {new_id("int") for _ in range(50)}

    assert len(ids) == 50
    assert all(re.fullmatch(r"int_[0-9a-f]{16}", i) for i in ids)
