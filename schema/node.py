"""The Relay Node interface and opaque global ids: urlsafe base64 of "TypeName:uuid".

Decoding is strict (canonical base64, a known type name, a canonical uuid), so a
malformed id is always INVALID_ID and never reaches the database.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid

import strawberry

from comfygraph.schema.errors import INVALID_ID, ApiError

NODE_TYPES = frozenset({"VideoJob", "ImageJob", "TextJob", "AudioJob", "Session", "Asset", "User"})
# Ids of objects that are not Nodes (node(id) does not fetch them) but share the encoding.
OTHER_ID_TYPES = frozenset({"WebhookEndpoint", "WebhookDelivery"})
_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,80}")


@strawberry.interface
class Node:
    id: strawberry.ID


def to_global_id(type_name: str, value: uuid.UUID) -> strawberry.ID:
    raw = f"{type_name}:{value}".encode()
    return strawberry.ID(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())


def from_global_id(value: str, *, expect: frozenset[str] = NODE_TYPES) -> tuple[str, uuid.UUID]:
    """(type name, uuid) of a global id whose type is one of `expect`; else INVALID_ID."""
    decoded = _decode(value)
    if decoded is None:
        raise ApiError(INVALID_ID, "malformed id", id=value[:100])
    type_name, uid = decoded
    if type_name not in expect:
        wanted = " or ".join(f"{_article(t)} {t}" for t in sorted(expect))
        raise ApiError(INVALID_ID, f"expected the id of {wanted}", id=value[:100])
    return type_name, uid


def _article(word: str) -> str:
    # By sound: an AudioJob, an ImageJob, an Asset; a User, a Session.
    return "an" if word[:1].upper() in "AEIO" else "a"


def _decode(value: str) -> tuple[str, uuid.UUID] | None:
    if not isinstance(value, str) or not _SHAPE.fullmatch(value):
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    type_name, sep, rest = raw.partition(":")
    if not sep or type_name not in NODE_TYPES | OTHER_ID_TYPES:
        return None
    try:
        uid = uuid.UUID(rest)
    except ValueError:
        return None
    if str(uid) != rest or to_global_id(type_name, uid) != value:
        return None  # only the canonical spelling of an id is accepted
    return type_name, uid
