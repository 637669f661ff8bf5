"""API keys: generated once, stored only as a hash, looked up by that hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "sk_"


def new_secret() -> str:
    """A fresh API key: 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 is enough for keys with 256 bits of entropy (no dictionary to attack). Any
    string hashes, even one with lone surrogates (how undecodable header bytes arrive): it
    then matches no key, rather than failing."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison, so response timing says nothing about a key."""
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))
