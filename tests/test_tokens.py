"""Verified tokens are remembered until they expire, never after; a token signed
with another secret or tampered with is refused whether or not one was cached."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from comfygraph.studio.auth import AuthError, TokenVerifier, issue_token

SECRET = "token-secret-0123456789abcdefghij"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_cached_until_expiry_then_verified_again() -> None:
    clock = Clock()
    verifier = TokenVerifier(SECRET, clock=clock)
    user = uuid.uuid4()
    token = issue_token(SECRET, user, role="admin", ttl=60)
    first = verifier.verify(token)
    assert first.user_id == user and first.role == "admin"
    assert verifier.verify(token) is first  # remembered
    clock.now += 61
    assert verifier.verify(token) is not first  # lapsed: decoded (and checked) again


def test_an_expired_token_is_refused() -> None:
    expired = jwt.encode(
        {"sub": str(uuid.uuid4()), "exp": int(time.time()) - 10}, SECRET, algorithm="HS256"
    )
    with pytest.raises(AuthError, match="expired"):
        TokenVerifier(SECRET).verify(expired)


def test_bad_tokens_are_refused_and_not_cached() -> None:
    verifier = TokenVerifier(SECRET, maxsize=2)
    other = issue_token("another-secret-0123456789abcdefgh", uuid.uuid4())
    for bad in (other, other[:-2] + "xx", "not.a.jwt"):
        with pytest.raises(AuthError):
            verifier.verify(bad)
    assert not verifier._verified
    for _ in range(5):
        verifier.verify(issue_token(SECRET, uuid.uuid4()))
    assert len(verifier._verified) == 2
