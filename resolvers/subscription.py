"""The Subscription root (graphql-transport-ws and graphql-ws)."""

from __future__ import annotations

import strawberry

from comfygraph.resolvers import subscriptions


@strawberry.type
class Subscription:
    job_progress = strawberry.subscription(
        resolver=subscriptions.job_progress,
        description="First event: the job's current state. Completes after the event that "
        "carries a terminal status.",
    )
    job_updates = strawberry.subscription(
        resolver=subscriptions.job_updates,
        description="Jobs visible to the viewer and matching the filter, each time one is "
        "created or changes status.",
    )
    session_progress = strawberry.subscription(
        resolver=subscriptions.session_progress,
        description="First event: the session's current state; then a Session on every status "
        "or progress change and an Asset whenever one appears or changes.",
    )
