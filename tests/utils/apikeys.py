"""API keys the tests use: one per role, handed to the API through IOC_API__KEYS."""

from __future__ import annotations

import orjson

from api.keys import hash_key

#: A key per role of the access matrix (never used outside tests).
KEYS: dict[str, str] = {
    "view": "ioc_test-view-4f9c2d7be1a04c5f8e3b6a1d9c0f2e7a",
    "publish:traffic": "ioc_test-publish-traffic-b7e1c3a95d2f4e6081a2c4d6e8f0a1b3",
    "replay": "ioc_test-replay-0c2e4a6b8d1f3e5a7c9b0d2f4a6c8e1b",
    "admin": "ioc_test-admin-9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a",
    # An engineer watches sandboxes: reads (view) and replays, no admin.
    "engineer": "ioc_test-engineer-5e1a9c3d7b2f4a6e8c0d1b3f5a7c9e2d",
    # A vendor's key: publishes traffic under its own sources only.
    "acme": "ioc_test-acme-2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e0b",
}
#: Scopes of each role's key (a role is its own scope unless listed).
SCOPES: dict[str, list[str]] = {"engineer": ["view", "replay"], "acme": ["publish:traffic"]}
#: CloudEvent sources a role's key may publish (any unless listed).
SOURCES: dict[str, list[str]] = {"acme": ["/vendors/acme/*"]}


def keys_env(**extra: str) -> dict[str, str]:
    """Environment that configures the test keys (names = roles) in an API process."""
    entries = [
        {
            "name": role.replace(":", "-"),
            "hash": hash_key(key),
            "scopes": SCOPES.get(role, [role]),
            "sources": SOURCES.get(role, []),
        }
        for role, key in KEYS.items()
    ]
    return {"IOC_API__KEYS": orjson.dumps(entries).decode(), **extra}


def auth(role: str) -> dict[str, str]:
    """Headers that present the key of ``role``."""
    return {"X-API-Key": KEYS[role]}
