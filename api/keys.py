"""API keys: made once, shown once, stored only as a SHA-256 hash.

A key is ``ioc_`` followed by 43 URL-safe characters (32 random bytes). Because keys are
random and long, a plain SHA-256 of the key is enough to store (a slow password hash
like argon2 protects guessable secrets, which these are not), and it lets the API find a
key by its hash in one dictionary look-up.

Keys live in two places, both read by :class:`KeyStore`:
- the settings (``IOC_API__KEYS``, a JSON list of ``{name, hash, scopes}``);
- the keys file (``<state_dir>/api-keys.json`` unless ``IOC_API__KEYS_FILE`` says
  otherwise), which ``ioc keys create|list|revoke`` manages. The API re-reads it when it
  changes, so a key made while the API runs works at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from pydantic import BaseModel, Field

from ioc.settings import ApiKeySettings, Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "ioc_"


def new_key() -> str:
    """A fresh random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def keys_path(settings: Settings) -> Path:
    """The keys file of these settings."""
    return settings.api.keys_file or settings.state_dir / "api-keys.json"


class StoredKey(ApiKeySettings):
    """A key in the keys file: the configured fields plus when it was made."""

    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class KeysFile(BaseModel):
    keys: list[StoredKey] = Field(default_factory=list)


def read_keys_file(path: Path) -> list[StoredKey]:
    """The keys in ``path``; none when it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    return KeysFile.model_validate_json(raw).keys


def write_keys_file(path: Path, keys: list[StoredKey]) -> None:
    """Replace the keys file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = orjson.dumps(KeysFile(keys=keys).model_dump(mode="json"), option=orjson.OPT_INDENT_2)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(body)
    tmp.replace(path)


def create_key(
    path: Path,
    *,
    name: str,
    scopes: list[str],
    sources: list[str] | None = None,
    replace: bool = False,
) -> str:
    """Make a key, store its hash under ``name`` and return the key (shown only now).

    Raise ``ValueError`` when ``name`` is taken, unless ``replace``.
    """
    key = new_key()
    entry = StoredKey(name=name, hash=hash_key(key), scopes=scopes, sources=sources or [])
    keys = read_keys_file(path)
    if any(k.name == name for k in keys) and not replace:
        raise ValueError(f"a key named {name!r} exists; revoke it first or pick another name")
    write_keys_file(path, [*(k for k in keys if k.name != name), entry])
    return key


def revoke_key(path: Path, name: str) -> bool:
    """Remove the key named ``name``; False when there was none."""
    keys = read_keys_file(path)
    kept = [k for k in keys if k.name != name]
    if len(kept) == len(keys):
        return False
    write_keys_file(path, kept)
    return True


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """Who a valid key belongs to and what it may do."""

    name: str
    scopes: frozenset[str]
    sources: tuple[str, ...] = ()


class KeyStore:
    """Finds the holder of a presented key; re-reads the keys file when it changes."""

    def __init__(self, settings: Settings, *, check_every_s: float = 1.0) -> None:
        self._configured = settings.api.keys
        self._path = keys_path(settings)
        self._check_every_s = check_every_s
        self._checked = 0.0
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, KeyHolder] = {}
        self._reload()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _reload(self) -> None:
        self._stamp = self._file_stamp()
        entries: list[ApiKeySettings] = [*self._configured, *read_keys_file(self._path)]
        self._by_hash = {
            e.hash: KeyHolder(e.name, frozenset(e.scopes), tuple(e.sources)) for e in entries
        }

    def holder(self, key: str) -> KeyHolder | None:
        """The holder of ``key``, or None when no such key is configured."""
        now = time.monotonic()
        if now - self._checked >= self._check_every_s:
            self._checked = now
            if self._file_stamp() != self._stamp:
                try:
                    self._reload()
                except (OSError, ValueError) as exc:
                    # A half-edited file must not lock everyone out: keep the last keys.
                    log.warning("keys file %s not reloaded: %s", self._path, exc)
        return self._by_hash.get(hash_key(key))

    def __len__(self) -> int:
        return len(self._by_hash)
