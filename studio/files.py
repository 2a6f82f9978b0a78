"""Who may fetch a stored file, and the expiring URLs that say so.

Rows keep a file's canonical URL (`{base}/files/{key}`); clients only ever see it signed:

    {base}/files/{key}?exp=1767225600&g=j.image.<job hex>&u=<viewer hex>&sig=<HMAC>

The HMAC (a key derived from JWT_SECRET) covers the key, the expiry, the grant `g` (the
job, session or upload owner through which the viewer saw the file) and the viewer `u`
(`-` for anonymous). `/files` checks the signature and the expiry, then checks the grant
again against the database: a job deleted or made private since stops answering (404)
for those who saw it only because it was public. Expiries are rounded up to a quarter
of the TTL so that one file keeps one URL for a while (browsers cache it).

A job's file inputs go through `allowed_inputs`: the submitter's own uploads, or files
of jobs the submitter may see; anything else is refused before the job exists.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg

from comfygraph.db.files import job_visibility, session_visibility, user_role
from comfygraph.db.visibility import Viewer, can_see_job, can_see_session
from comfygraph.storage import Storage, StorageError, safe_key

OUR_PARAMS = frozenset({"exp", "g", "u", "sig"})
_ANON = "-"


@dataclass(frozen=True)
class Grant:
    """Through what a viewer may see a file: a job (`j.<type>.<id>`), a session
    (`s.<id>`) or the owner of an upload (`o.<id>`)."""

    kind: str
    id: uuid.UUID
    public: bool = False  # a public job's file: a longer-lived URL

    @classmethod
    def job(cls, job_id: uuid.UUID, *, public: bool = False) -> Grant:
        return cls("j", job_id, public)

    @classmethod
    def session(cls, session_id: uuid.UUID) -> Grant:
        return cls("s", session_id)

    @classmethod
    def owner(cls, user_id: uuid.UUID) -> Grant:
        return cls("o", user_id)

    def encode(self) -> str:
        return f"{self.kind}.{self.id.hex}"

    @classmethod
    def decode(cls, text: str) -> Grant | None:
        kind, _, ident = text.partition(".")
        if kind not in ("j", "s", "o"):
            return None
        try:
            return cls(kind, uuid.UUID(hex=ident))
        except ValueError:
            return None


@dataclass(frozen=True)
class SignedRequest:
    key: str
    grant: Grant
    viewer_id: uuid.UUID | None


class FileSigner:
    """Signs canonical file URLs for one viewer and checks signed ones."""

    def __init__(
        self, storage: Storage, secret: str, *, ttl_seconds: int, public_ttl_seconds: int
    ) -> None:
        self.storage = storage
        self._key = hmac.new(secret.encode(), b"comfygraph files v1", hashlib.sha256).digest()
        self.ttl = ttl_seconds
        self.public_ttl = public_ttl_seconds

    def _mac(self, key: str, exp: int, grant: str, viewer: str) -> str:
        message = f"{key}\n{exp}\n{grant}\n{viewer}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")

    def _expiry(self, ttl: int, now: float | None = None) -> int:
        step = max(ttl // 4, 1)
        at = int(now if now is not None else time.time()) + ttl
        return (at // step + 1) * step

    def sign(self, url: str, grant: Grant, viewer: Viewer, *, now: float | None = None) -> str:
        """`url` signed for `viewer`; a URL that is not one of ours comes back unchanged."""
        key = self.storage.key_for_url(url)
        if key is None:
            return url
        exp = self._expiry(self.public_ttl if grant.public else self.ttl, now)
        who = viewer.user_id.hex if viewer.user_id else _ANON
        extra = [(k, v) for k, v in parse_qsl(urlsplit(url).query) if k not in OUR_PARAMS]
        params = [*extra, ("exp", str(exp)), ("g", grant.encode()), ("u", who)]
        params.append(("sig", self._mac(key, exp, grant.encode(), who)))
        return f"{self.storage.url_for(key)}?{urlencode(params)}"

    def sign_all(self, value: Any, grant: Grant, viewer: Viewer) -> Any:
        """Every URL of ours inside a JSON value (a job's parameters) signed."""
        if isinstance(value, str):
            return self.sign(value, grant, viewer) if "/files/" in value else value
        if isinstance(value, list):
            return [self.sign_all(v, grant, viewer) for v in value]
        if isinstance(value, dict):
            return {k: self.sign_all(v, grant, viewer) for k, v in value.items()}
        return value

    def verify(
        self, path: str, query: Mapping[str, str], *, now: float | None = None
    ) -> SignedRequest | None:
        """The request a valid, unexpired signature allows; None otherwise."""
        try:
            key = safe_key(path)
            exp = int(query.get("exp", ""))
        except (StorageError, ValueError):
            return None
        grant_text, who, sig = query.get("g", ""), query.get("u", ""), query.get("sig", "")
        if key != path or exp < (now if now is not None else time.time()):
            return None
        if not hmac.compare_digest(sig.encode(), self._mac(key, exp, grant_text, who).encode()):
            return None
        grant = Grant.decode(grant_text)
        if grant is None:
            return None
        try:
            viewer_id = None if who == _ANON else uuid.UUID(hex=who)
        except ValueError:
            return None
        return SignedRequest(key, grant, viewer_id)


async def current_viewer(conn: asyncpg.Connection, user_id: uuid.UUID | None) -> Viewer | None:
    """The viewer a URL was signed for, as they are now (None: the user is gone)."""
    if user_id is None:
        return Viewer()
    role = await user_role(conn, user_id)
    return None if role is None else Viewer(user_id, is_admin=role == "admin")


async def still_visible(conn: asyncpg.Connection, request: SignedRequest) -> bool:
    """Whether the viewer may still see the file through the grant it was signed with."""
    viewer = await current_viewer(conn, request.viewer_id)
    if viewer is None:
        return False
    grant = request.grant
    if grant.kind == "j":
        job = await job_visibility(conn, grant.id)
        return job is not None and can_see_job(viewer, job)
    if grant.kind == "s":
        session = await session_visibility(conn, grant.id)
        return session is not None and can_see_session(viewer, session)
    # An upload: its owner (whose id is in the key, uploads/{owner}/...) or an admin.
    owner = _upload_owner(request.key)
    return owner == grant.id and (viewer.is_admin or viewer.user_id == owner)


def _upload_owner(key: str) -> uuid.UUID | None:
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != "uploads":
        return None
    try:
        return uuid.UUID(parts[1])
    except ValueError:
        return None


def _job_of_key(key: str) -> uuid.UUID | None:
    """The job a key belongs to: workflows/{workflow}/{job}/{name} or previews/{job}.ext."""
    parts = key.split("/")
    text = None
    if len(parts) >= 4 and parts[0] == "workflows":
        text = parts[2]
    elif len(parts) == 2 and parts[0] == "previews":
        text = parts[1].split(".", 1)[0]
    try:
        return None if text is None else uuid.UUID(text)
    except ValueError:
        return None


async def may_use(conn: asyncpg.Connection, storage: Storage, viewer: Viewer, key: str) -> bool:
    """Whether `viewer` may give this stored file to a job: their own upload, or a file of
    a job they may see; and the object must exist."""
    owner = _upload_owner(key)
    if owner is not None:
        allowed = owner == viewer.user_id
    else:
        job_id = _job_of_key(key)
        job = None if job_id is None else await job_visibility(conn, job_id)
        allowed = job is not None and can_see_job(viewer, job)
    return allowed and await storage.head(key) is not None


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def canonical(storage: Storage, value: Any) -> Any:
    """Signed URLs of ours inside parameters back to their canonical form (rows keep
    that; a client may resubmit the URLs it was shown)."""
    if isinstance(value, str):
        key = storage.key_for_url(value)
        return value if key is None else storage.url_for(key)
    if isinstance(value, list):
        return [canonical(storage, v) for v in value]
    if isinstance(value, dict):
        return {k: canonical(storage, v) for k, v in value.items()}
    return value


async def allowed_inputs(
    pool: asyncpg.Pool, storage: Storage, viewer: Viewer, parameters: Any
) -> frozenset[str]:
    """The canonical file URLs among `parameters` that `viewer` may use as inputs."""
    if not isinstance(parameters, dict):
        return frozenset()
    keys = {
        key
        for value in parameters.values()
        for text in _strings(value)
        if (key := storage.key_for_url(text)) is not None
    }
    if not keys:
        return frozenset()
    allowed = set()
    async with pool.acquire() as conn:
        for key in sorted(keys)[:64]:  # a template has a handful of file parameters
            if await may_use(conn, storage, viewer, key):
                allowed.add(storage.url_for(key))
    return frozenset(allowed)
