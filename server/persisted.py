"""Automatic persisted queries (Apollo's protocol): a client sends
`extensions.persistedQuery = {version: 1, sha256Hash}` without the query; the server
answers PERSISTED_QUERY_NOT_FOUND if it does not know the hash, and the client sends
the query with its hash once, which registers it. Kept in memory per replica (a miss
costs one retry), bounded.

Only the text is remembered: a registered document is parsed and validated like any
other (by the same cached parse/validation), so the hash never bypasses a rule.

With `only` (PERSISTED_QUERIES_ONLY) nothing registers itself: a hash or a text runs
only if `comfygraph persist` stored it (table persisted_queries; found ones are then
remembered here), anything else is PERSISTED_QUERY_NOT_ALLOWED. The same rules hold on
websockets (server/realtime/protocols.py) and SSE (server/realtime/sse.py)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from comfygraph.db.persisted import persisted_query
from comfygraph.schema.errors import ApiError

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
PERSISTED_QUERY_INVALID = "PERSISTED_QUERY_INVALID"
PERSISTED_QUERY_NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"


class PersistedQueries:
    def __init__(self, maxsize: int = 2000, *, only: bool = False) -> None:
        self.maxsize = maxsize
        self.only = only
        self.queries: OrderedDict[str, str] = OrderedDict()

    async def resolve_allowed(
        self, pool: Any, query: str | None, extensions: dict[str, Any] | None
    ) -> str | None:
        """resolve(), and in `only` mode: the document must be on the allow-list."""
        if not self.only:
            return self.resolve(query, extensions)
        persisted = (extensions or {}).get("persistedQuery")
        if query is None and persisted is None:
            return None
        if query is not None:
            if persisted is not None:
                self._digest(persisted)  # a malformed extension is still refused as such
            digest = hashlib.sha256(query.encode()).hexdigest()
            if persisted is not None and self._digest(persisted) != digest:
                raise ApiError(
                    PERSISTED_QUERY_HASH_MISMATCH, "provided sha256Hash does not match the query"
                )
        else:
            digest = self._digest(persisted)
        found = self.queries.get(digest)
        if found is None:
            found = await persisted_query(pool, digest)
            if found is None:
                if query is None:
                    raise ApiError(PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
                raise ApiError(
                    PERSISTED_QUERY_NOT_ALLOWED,
                    "only documents registered with `comfygraph persist` run here",
                )
            self._remember(digest, found)
        return found

    def _digest(self, persisted: Any) -> str:
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(digest, str) or persisted.get("version", 1) != 1:
            raise ApiError(
                PERSISTED_QUERY_INVALID, "persistedQuery needs version 1 and a sha256Hash"
            )
        return digest.lower()

    def _remember(self, digest: str, query: str) -> None:
        self.queries[digest] = query
        self.queries.move_to_end(digest)
        if len(self.queries) > self.maxsize:
            self.queries.popitem(last=False)

    def resolve(self, query: str | None, extensions: dict[str, Any] | None) -> str | None:
        """The query to run (None: the request names none); ApiError for a hash this
        server does not know, one that is not the query's, or a malformed extension."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(digest, str) or persisted.get("version", 1) != 1:
            raise ApiError(
                PERSISTED_QUERY_INVALID, "persistedQuery needs version 1 and a sha256Hash"
            )
        digest = digest.lower()
        if query is None:
            found = self.queries.get(digest)
            if found is None:
                raise ApiError(PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
            self.queries.move_to_end(digest)
            return found
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            raise ApiError(
                PERSISTED_QUERY_HASH_MISMATCH, "provided sha256Hash does not match the query"
            )
        self.queries[digest] = query
        self.queries.move_to_end(digest)
        if len(self.queries) > self.maxsize:
            self.queries.popitem(last=False)
        return query
