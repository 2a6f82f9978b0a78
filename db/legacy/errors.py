"""The one error the legacy import raises on purpose."""

from __future__ import annotations

from comfygraph.db.errors import DataError


class LegacyImportError(DataError):
    """Bad input, an unusable source or target, or a failed count check: one line."""
