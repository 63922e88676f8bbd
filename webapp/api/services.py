"""Personal API tokens: make one (its secret is returned once), find the user a presented
token belongs to, revoke one. Views and the authentication class call these."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from webapp.api.models import ApiToken

#: Every token starts with this, so a leaked one is easy to recognise (and to grep for).
TOKEN_MARK = "stl_"
PREFIX_LENGTH = 8
#: What ``create_token`` makes: the mark, then URL-safe base64.
KEY_SHAPE = re.compile(rf"{TOKEN_MARK}[A-Za-z0-9_-]{{{PREFIX_LENGTH},100}}")
MAX_NAME_LENGTH = 100
# ``last_used`` is written at most this often per token: a script polling every second
# must not turn each read into a write (SQLite lets one writer in at a time).
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_token(user: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user`` and its secret, which is never stored and never shown
    again; ``ValueError`` for an empty or overlong name."""
    name = name.strip()
    if not name:
        raise ValueError("Give the token a name, e.g. the script or machine that uses it.")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"A token's name has at most {MAX_NAME_LENGTH} characters.")
    body = secrets.token_urlsafe(32)
    key = TOKEN_MARK + body
    token = ApiToken.objects.create(
        user=user, name=name, prefix=body[:PREFIX_LENGTH], key_hash=hash_key(key)
    )
    return token, key


def tokens_for_user(user: AbstractBaseUser) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("revoked", "-created")


def revoke_token(user: AbstractBaseUser, token_id: int) -> bool:
    """Revoke one of ``user``'s tokens; True when this call revoked it (another user's
    token, or one already revoked, is left alone)."""
    won = ApiToken.objects.filter(pk=token_id, user=user, revoked__isnull=True).update(
        revoked=timezone.now()
    )
    return bool(won)


def token_for_key(key: str) -> ApiToken | None:
    """The active token ``key`` is, with its user; None for anything else.

    The prefix finds the candidate rows; the hashes are compared in constant time, so
    the answer's timing says nothing about how much of a guess was right.
    """
    if not KEY_SHAPE.fullmatch(key):
        return None
    prefix = key[len(TOKEN_MARK) : len(TOKEN_MARK) + PREFIX_LENGTH]
    presented = hash_key(key)
    found = None
    for token in ApiToken.objects.filter(prefix=prefix).select_related("user"):
        if hmac.compare_digest(token.key_hash, presented):
            found = token
    if found is None or not found.is_active:
        return None
    return found


def touch(token: ApiToken) -> None:
    """Record that the token was used (at most once per ``LAST_USED_PRECISION``)."""
    now = timezone.now()
    if token.last_used is not None and now - token.last_used < LAST_USED_PRECISION:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used=now)
    token.last_used = now
