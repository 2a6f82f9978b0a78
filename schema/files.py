"""URL fields of stored files: clients get them signed for the viewer (studio/files.py),
never the canonical URL a row keeps. The context decides the grant from the object
the field belongs to (resolvers/context.py `Context.signed`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension


class SignedUrls(FieldExtension):
    def resolve(
        self, next_: Callable[..., Any], source: Any, info: strawberry.Info, **kwargs: Any
    ) -> Any:
        value = next_(source, info, **kwargs)
        sign = getattr(info.context, "signed", None)
        return value if sign is None else sign(source, value)

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: strawberry.Info,
        **kwargs: Any,
    ) -> Any:
        value = await next_(source, info, **kwargs)
        sign = getattr(info.context, "signed", None)
        return value if sign is None else sign(source, value)


def signed(description: str | None = None) -> Any:
    """A dataclass field whose value (a URL, a list of them, or JSON holding some) is
    signed on the way out."""
    return strawberry.field(description=description, extensions=[SignedUrls()])
