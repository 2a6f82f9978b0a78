"""Automatic persisted queries (Apollo's protocol): a client sends
`extensions.persistedQuery = {version: 1, sha256Hash}` without the query; the server
answers PERSISTED_QUERY_NOT_FOUND if it does not know the hash, and the client sends
the query with its hash once, which registers it. Kept in memory per replica (a miss
costs one retry), bounded.

Only the text is remembered: a registered document is parsed and validated like any
other (by the same cached parse/validation), so the hash never bypasses a rule."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from comfygraph.schema.errors import ApiError

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
PERSISTED_QUERY_INVALID = "PERSISTED_QUERY_INVALID"


class PersistedQueries:
    def __init__(self, maxsize: int = 2000) -> None:
        self.maxsize = maxsize
        self.queries: OrderedDict[str, str] = OrderedDict()

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
