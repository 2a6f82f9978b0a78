"""The Query root: each field names its resolver (resolvers/)."""

from __future__ import annotations

import strawberry

from comfygraph.resolvers import batches, catalog
from comfygraph.resolvers import jobs as job_resolvers
from comfygraph.resolvers import nodes as node_resolvers
from comfygraph.resolvers import sessions as session_resolvers
from comfygraph.resolvers import users as user_resolvers
from comfygraph.resolvers import webhooks as webhook_resolvers


@strawberry.type
class Query:
    node = strawberry.field(resolver=node_resolvers.node)
    nodes = strawberry.field(resolver=node_resolvers.nodes)
    jobs = strawberry.field(
        resolver=job_resolvers.jobs, description="The one feed across every output type."
    )
    video_jobs = strawberry.field(resolver=job_resolvers.video_jobs)
    image_jobs = strawberry.field(resolver=job_resolvers.image_jobs)
    text_jobs = strawberry.field(resolver=job_resolvers.text_jobs)
    audio_jobs = strawberry.field(resolver=job_resolvers.audio_jobs)
    job = strawberry.field(resolver=job_resolvers.job)
    job_by_comfy_id = strawberry.field(resolver=job_resolvers.job_by_comfy_id)
    workflows = strawberry.field(resolver=catalog.workflows)
    workers = strawberry.field(resolver=catalog.workers)
    session = strawberry.field(resolver=session_resolvers.session)
    sessions = strawberry.field(resolver=session_resolvers.sessions)
    me = strawberry.field(resolver=user_resolvers.me)
    webhook_endpoints = strawberry.field(resolver=webhook_resolvers.webhook_endpoints)
    webhook_deliveries = strawberry.field(resolver=webhook_resolvers.webhook_deliveries)
    batch = strawberry.field(
        resolver=batches.batch, description="The jobs one submitJob(count: N) created."
    )
