"""A compiled object selection: the columns it reads, the loads that fetch what its
nested fields need (one statement per load over all the rows being answered, as the
interpreted path's DataLoaders batch them), and a builder turning a row into JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from comfygraph.resolvers.compiled.fields import Env, Getter, Row

Builder = Callable[[Row, Env], dict[str, Any]]
Load = Callable[[list[Row], Env], Awaitable[None]]


def builder(getters: list[tuple[str, Getter]]) -> Builder:
    def build(row: Row, env: Env) -> dict[str, Any]:
        return {key: get(row, env) for key, get in getters}

    return build


@dataclass
class Shape:
    build: Builder
    columns: set[str] = field(default_factory=set)
    loads: list[Load] = field(default_factory=list)

    async def load(self, rows: list[Row], env: Env) -> None:
        """Run the nested fields' loads for these rows (all of them, once)."""
        if rows:
            for load in self.loads:
                await load(rows, env)


def typename(name: str) -> Getter:
    return lambda row, env: name
