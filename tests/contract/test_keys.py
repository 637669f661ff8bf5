"""API keys: stored by name with only the hash of the secret, found by that hash, revocable."""

from __future__ import annotations

import hashlib
import time

import pytest

from skipline.domain.errors import KeyExists
from skipline.domain.models import ApiKey
from skipline.store.base import Store


def make_key(name: str, tier: str = "regular", admin: bool = False) -> ApiKey:
    digest = hashlib.sha256(f"secret-of-{name}".encode()).hexdigest()
    return ApiKey(name, tier, admin, digest, created_at=time.time())


def assert_same_key(found: ApiKey | None, expected: ApiKey, revoked: bool = False) -> None:
    assert found is not None
    assert (found.name, found.tier, found.admin, found.key_hash) == (
        expected.name, expected.tier, expected.admin, expected.key_hash,
    )
    assert found.revoked is revoked
    assert found.created_at == pytest.approx(expected.created_at, abs=0.001)


async def test_a_key_is_found_by_its_hash(store: Store) -> None:
    alice, root = make_key("alice", "vip"), make_key("root", "regular", admin=True)
    await store.add_key(alice)
    await store.add_key(root)

    assert_same_key(await store.find_key(alice.key_hash), alice)
    assert_same_key(await store.find_key(root.key_hash), root)
    assert await store.find_key(make_key("nobody").key_hash) is None


async def test_a_taken_name_is_refused(store: Store) -> None:
    await store.add_key(make_key("alice", "vip"))

    with pytest.raises(KeyExists):
        await store.add_key(make_key("alice", "regular"))

    assert [key.tier for key in await store.list_keys()] == ["vip"]


async def test_keys_are_listed(store: Store) -> None:
    assert await store.list_keys() == []
    keys = [make_key("carol"), make_key("alice", "vip"), make_key("bob", admin=True)]
    for key in keys:
        await store.add_key(key)

    listed = {key.name: key for key in await store.list_keys()}

    assert set(listed) == {"alice", "bob", "carol"}
    for key in keys:
        assert_same_key(listed[key.name], key)


async def test_a_revoked_key_stays_listed_as_revoked(store: Store) -> None:
    alice = make_key("alice")
    await store.add_key(alice)

    assert await store.revoke_key("alice") is True
    assert await store.revoke_key("alice") is False
    assert await store.revoke_key("nobody") is False

    assert_same_key(await store.find_key(alice.key_hash), alice, revoked=True)
    (listed,) = await store.list_keys()
    assert listed.revoked is True
