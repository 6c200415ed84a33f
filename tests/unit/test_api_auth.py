"""Access rules that need no server: scopes, key storage, JWT claims, the rate limit."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr, ValidationError

from api.auth import Authenticator, Caller
from api.keys import (
    KeyStore,
    create_key,
    hash_key,
    keys_path,
    new_key,
    read_keys_file,
    revoke_key,
)
from api.problems import Problem
from api.ratelimit import RateLimiter
from ioc.settings import ApiKeySettings, ApiSettings, Settings

CLIENT = "192.0.2.7"


def settings_with(tmp_path: Path, **api: object) -> Settings:
    return Settings(state_dir=tmp_path, api=ApiSettings.model_validate(api))


@pytest.mark.parametrize(
    ("scopes", "needed", "allowed"),
    [
        ({"view"}, "view", True),
        ({"view"}, "replay", False),
        ({"view"}, "publish", False),
        ({"publish:traffic"}, "publish", True),
        ({"publish:traffic"}, "publish:traffic", True),
        ({"publish:traffic"}, "publish:hospital", False),
        ({"publish:traffic"}, "view", False),
        ({"replay"}, "replay", True),
        ({"replay"}, "view", False),
        ({"admin"}, "view", True),
        ({"admin"}, "publish:hospital", True),
        ({"admin"}, "replay", True),
    ],
)
def test_scopes_admin_implies_all_publish_is_per_domain(
    scopes: set[str], needed: str, allowed: bool
) -> None:
    assert Caller("x", frozenset(scopes)).can(needed) is allowed


def test_keys_are_random_and_only_their_hash_is_stored(tmp_path: Path) -> None:
    assert new_key() != new_key()
    assert len(new_key()) == 47
    path = tmp_path / "keys.json"
    key = create_key(path, name="ops-1", scopes=["view"])
    text = path.read_text()
    assert key not in text
    assert hash_key(key) in text
    assert path.stat().st_mode & 0o777 == 0o600
    [stored] = read_keys_file(path)
    assert (stored.name, stored.scopes) == ("ops-1", ["view"])


def test_a_taken_name_is_refused_unless_replaced(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = create_key(path, name="ops", scopes=["view"])
    with pytest.raises(ValueError, match="exists"):
        create_key(path, name="ops", scopes=["admin"])
    second = create_key(path, name="ops", scopes=["admin"], replace=True)
    assert [k.hash for k in read_keys_file(path)] == [hash_key(second)]
    assert first != second
    assert revoke_key(path, "ops")
    assert not revoke_key(path, "ops")
    assert read_keys_file(path) == []


def test_key_store_sees_settings_keys_and_file_changes(tmp_path: Path) -> None:
    configured = new_key()
    settings = settings_with(
        tmp_path, keys=[{"name": "env", "hash": hash_key(configured), "scopes": ["replay"]}]
    )
    store = KeyStore(settings, check_every_s=0)
    holder = store.holder(configured)
    assert holder is not None
    assert (holder.name, holder.scopes) == ("env", frozenset({"replay"}))
    assert store.holder(new_key()) is None
    made = create_key(keys_path(settings), name="late", scopes=["view"])
    late = store.holder(made)
    assert late is not None
    assert late.name == "late"
    revoke_key(keys_path(settings), "late")
    assert store.holder(made) is None


def test_a_broken_keys_file_keeps_the_last_good_keys(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)
    key = create_key(keys_path(settings), name="ops", scopes=["view"])
    store = KeyStore(settings, check_every_s=0)
    keys_path(settings).write_text("{not json")
    holder = store.holder(key)
    assert holder is not None
    assert holder.name == "ops"


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "x", "hash": "plain-key", "scopes": ["view"]},
        {"name": "x", "hash": "sha256:" + "0" * 64, "scopes": ["root"]},
        {"name": "x", "hash": "sha256:" + "0" * 64, "scopes": []},
        {"name": "bad name", "hash": "sha256:" + "0" * 64, "scopes": ["view"]},
    ],
)
def test_configured_keys_must_be_hashes_with_known_scopes(entry: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ApiKeySettings.model_validate(entry)


def test_rate_limit_allows_a_burst_then_refills_at_the_rate() -> None:
    now = [100.0]
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # callers are independent
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0


def test_over_the_rate_is_a_429_problem_with_retry_after(tmp_path: Path) -> None:
    auth = Authenticator(settings_with(tmp_path, rate_per_s=0.5, rate_burst=1))
    caller = Caller("ops", frozenset({"view"}))
    auth.admit(caller)
    with pytest.raises(Problem) as refused:
        auth.admit(caller)
    assert refused.value.status == 429
    assert refused.value.headers["Retry-After"] == "2"


def token(secret: str, **claims: object) -> str:
    body = {"sub": "dispatch", "exp": int(time.time()) + 60, **claims}
    return jwt.encode(body, secret, algorithm="HS256")


def test_jwt_subject_and_scopes_become_the_caller(tmp_path: Path) -> None:
    auth = Authenticator(settings_with(tmp_path, jwt_key=SecretStr("s" * 32)))
    caller = auth.identify(token("s" * 32, scope="view publish:traffic"), client=CLIENT)
    assert (caller.name, caller.via) == ("dispatch", "jwt")
    assert caller.scopes == frozenset({"view", "publish:traffic"})
    listed = auth.identify(token("s" * 32, scopes=["replay"]), client=CLIENT)
    assert listed.scopes == frozenset({"replay"})


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: token("x" * 32, scope="view"), "Signature verification failed"),
        (lambda: token("s" * 32, scope="view", exp=int(time.time()) - 5), "expired"),
        (lambda: jwt.encode({"sub": "a"}, "s" * 32, algorithm="HS256"), "exp"),
        (lambda: "not-a-token", "not valid"),
    ],
)
def test_bad_tokens_are_401(tmp_path: Path, make: object, why: str) -> None:
    auth = Authenticator(settings_with(tmp_path, jwt_key=SecretStr("s" * 32)))
    assert callable(make)
    with pytest.raises(Problem) as refused:
        auth.identify(make(), client=CLIENT)
    assert refused.value.status == 401
    assert why in refused.value.detail


def test_without_a_jwt_key_only_keys_are_accepted(tmp_path: Path) -> None:
    auth = Authenticator(settings_with(tmp_path))
    with pytest.raises(Problem) as refused:
        auth.identify(token("s" * 32, scope="admin"), client=CLIENT)
    assert refused.value.detail == "the API key is not valid"


def refused_status(auth: Authenticator, credential: str, *, client: str = CLIENT) -> int:
    with pytest.raises(Problem) as refused:
        auth.identify(credential, client=client)
    return refused.value.status


def test_failed_authentications_are_limited_per_client_address(tmp_path: Path) -> None:
    auth = Authenticator(settings_with(tmp_path, auth_failure_burst=3, auth_failure_per_s=0.01))
    good = create_key(keys_path(settings_with(tmp_path)), name="ops", scopes=["view"])
    # Three guesses with different prefixes are refused as invalid, then the address is
    # held: even the right key is not checked from it, while other addresses go on.
    assert [refused_status(auth, new_key()) for _ in range(3)] == [401, 401, 401]
    with pytest.raises(Problem) as held:
        auth.identify(good, client=CLIENT)
    assert held.value.status == 429
    assert held.value.slug == "too-many-failed-authentications"
    assert int(held.value.headers["Retry-After"]) >= 1
    assert auth.identify(good, client="192.0.2.8").name == "ops"


def test_failed_authentications_are_limited_per_key_prefix(tmp_path: Path) -> None:
    auth = Authenticator(settings_with(tmp_path, auth_failure_burst=2, auth_failure_per_s=0.01))
    known = "ioc_AbCdEfGh"
    # Guesses at one prefix from many addresses meet the prefix's limit.
    assert refused_status(auth, known + "x" * 35, client="198.51.100.1") == 401
    assert refused_status(auth, known + "y" * 35, client="198.51.100.2") == 401
    assert refused_status(auth, known + "z" * 35, client="198.51.100.3") == 429
    assert refused_status(auth, "ioc_Other123" + "z" * 35, client="198.51.100.3") == 401


def test_only_failures_spend_the_failure_allowance(tmp_path: Path) -> None:
    auth = Authenticator(settings_with(tmp_path, auth_failure_burst=1, auth_failure_per_s=0.01))
    good = create_key(keys_path(settings_with(tmp_path)), name="ops", scopes=["view"])
    for _ in range(20):
        assert auth.identify(good, client=CLIENT).name == "ops"


def test_the_failure_allowance_comes_back_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=0.5, burst=1, clock=lambda: now[0])
    assert limiter.wait("a") == 0.0
    assert limiter.take("a") == 0.0
    assert limiter.wait("a") == pytest.approx(2.0)
    now[0] = 2.0
    assert limiter.wait("a") == 0.0


def test_the_limiter_forgets_callers_beyond_its_bound() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_s=1.0, burst=2, max_callers=100, clock=lambda: now[0])
    for n in range(1000):
        limiter.take(f"caller-{n}")
        assert len(limiter._buckets) <= 100
    # Room is made by forgetting idle callers first (their buckets are full again): a
    # caller still short of tokens is remembered, and so held to its limit.
    now[0] = 2.5
    limiter.take("busy")
    limiter.take("busy")
    now[0] = 3.0
    for n in range(50):
        limiter.take(f"late-{n}")
    assert len(limiter._buckets) == 51
    assert limiter.wait("busy") == pytest.approx(0.5)
