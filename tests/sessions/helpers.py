"""GraphQL documents of the session pipeline and a bounded wait on a session's state.

sessionProgress (the subscription) belongs to another module; until it streams, tests
follow a session by polling its query under a deadline, sampling every state seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.graphql.client import GraphQLClient

SEED_ORDER = [
    "CREATED", "GENERATING_IMAGES", "REVIEWING_IMAGES", "GENERATING_VIDEOS",
    "REVIEWING_VIDEOS", "COMPOSING", "COMPLETED",
]  # fmt: skip
ASSET = """id type status url storagePath fileSizeBytes mimeType resolution durationSeconds fps
  generationCost generationTimeSeconds viewType seed sourceImage { id } userSelected
  selectionOrder metadata job { ... on GenerationJob { id status costUsd workflowName } }"""
SESSION = f"""id status currentStage progressPercentage retryCount errorMessage totalCost
  estimatedCost completedAt assets {{ {ASSET} }}"""
PAYLOAD = f"session {{ {SESSION} }} userErrors {{ field message code }}"

CREATE = f"mutation($input: CreateSessionInput!) {{ createSession(input: $input) {{ {PAYLOAD} }} }}"
GENERATE_IMAGES = f"mutation($id: ID!) {{ generateSessionImages(sessionId: $id) {{ {PAYLOAD} }} }}"
GENERATE_CLIPS = f"mutation($id: ID!) {{ generateSessionClips(sessionId: $id) {{ {PAYLOAD} }} }}"
COMPOSE = f"mutation($id: ID!) {{ composeSessionVideo(sessionId: $id) {{ {PAYLOAD} }} }}"
CANCEL = f"mutation($id: ID!) {{ cancelSession(sessionId: $id) {{ {PAYLOAD} }} }}"
SELECT = (
    f"mutation($id: ID!, $assets: [ID!]!) {{ selectAssets(sessionId: $id, assetIds: $assets) "
    f"{{ {PAYLOAD} }} }}"
)
DELETE = (
    "mutation($id: ID!) { deleteSession(sessionId: $id) { deletedId userErrors { field code } } }"
)
GET = f"query($id: ID!) {{ session(id: $id) {{ {SESSION} }} }}"


def mutate(client: GraphQLClient, document: str, **variables: Any) -> dict[str, Any]:
    """The payload of a one-field mutation."""
    data = client.data(document, variables)
    payload: dict[str, Any] = next(iter(data.values()))
    return payload


def ok(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["userErrors"] == [], payload["userErrors"]
    session: dict[str, Any] = payload["session"]
    return session


def errors(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def create(client: GraphQLClient, **fields: Any) -> dict[str, Any]:
    return ok(mutate(client, CREATE, input={"userProductPrompt": "a pink tennis shoe", **fields}))


@dataclass
class Watch:
    """Every state of one session seen while waiting, in order."""

    client: GraphQLClient
    session_id: str
    statuses: list[str] = field(default_factory=list)
    progress: list[int] = field(default_factory=list)

    def read(self) -> dict[str, Any]:
        session: dict[str, Any] = self.client.data(GET, {"id": self.session_id})["session"]
        if not self.statuses or self.statuses[-1] != session["status"]:
            self.statuses.append(session["status"])
        self.progress.append(session["progressPercentage"])
        return session

    def until(
        self, done: Callable[[dict[str, Any]], bool], *, within: float = 30.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            session = self.read()
            if done(session):
                return session
            if time.monotonic() > deadline:
                raise AssertionError(f"deadline passed; last state {session['status']}: {session}")
            time.sleep(0.02)  # a bounded poll (sessionProgress is another module's)

    def status(self, *wanted: str, within: float = 30.0) -> dict[str, Any]:
        return self.until(lambda s: s["status"] in wanted, within=within)


def of_type(session: dict[str, Any], asset_type: str) -> list[dict[str, Any]]:
    return [a for a in session["assets"] if a["type"] == asset_type]


def is_subsequence(seen: Iterable[str], order: list[str]) -> bool:
    position = 0
    for status in seen:
        if status not in order[position:]:
            return False
        position = order.index(status, position)
    return True
