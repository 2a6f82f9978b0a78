"""`comfygraph persist FILE...`: read, check and register documents for the allow-list."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from graphql import GraphQLError, parse

from comfygraph.db.persisted import register_queries


class PersistError(Exception):
    """A file that cannot be registered; the message names it."""


def read_documents(files: list[Path]) -> list[tuple[str, Path, str]]:
    """(sha256, file, text) per file; the text is kept exactly, as clients hash it."""
    documents = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PersistError(f"cannot read {path}: {exc}") from None
        try:
            parse(text)
        except GraphQLError as exc:
            raise PersistError(f"{path} is not a GraphQL document: {exc.message}") from None
        documents.append((hashlib.sha256(text.encode()).hexdigest(), path, text))
    return documents


async def register(conn: Any, documents: list[tuple[str, Path, str]]) -> int:
    return await register_queries(conn, {digest: text for digest, _, text in documents})
