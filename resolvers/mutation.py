"""The Mutation root: each field names its resolver (resolvers/)."""

from __future__ import annotations

import strawberry

from comfygraph.resolvers import (
    batches,
    job_mutations,
    retention,
    session_mutations,
    submit,
    track,
    uploads,
    users,
    webhooks,
    workers,
    workflows,
)


@strawberry.type
class Mutation:
    submit_job = strawberry.mutation(resolver=submit.submit_job)
    cancel_job = strawberry.mutation(resolver=job_mutations.cancel_job)
    retry_job = strawberry.mutation(
        resolver=submit.retry_job, description="A new job with the same workflow and parameters."
    )
    delete_job = strawberry.mutation(
        resolver=job_mutations.delete_job,
        description="Soft delete: the job leaves every feed; its row stays.",
    )
    set_job_public = strawberry.mutation(resolver=job_mutations.set_job_public)
    upload_file = strawberry.mutation(
        resolver=uploads.upload_file,
        description="Store an input file; pass the returned url as an IMAGE, AUDIO or VIDEO "
        "parameter.",
    )

    create_session = strawberry.mutation(resolver=session_mutations.create_session)
    generate_session_images = strawberry.mutation(
        resolver=session_mutations.generate_session_images
    )
    select_assets = strawberry.mutation(
        resolver=session_mutations.select_assets,
        description="Approve these assets for the mood board, in this order; the session's "
        "other assets of that stage are rejected.",
    )
    generate_session_clips = strawberry.mutation(resolver=session_mutations.generate_session_clips)
    compose_session_video = strawberry.mutation(resolver=session_mutations.compose_session_video)
    cancel_session = strawberry.mutation(resolver=session_mutations.cancel_session)
    delete_session = strawberry.mutation(resolver=session_mutations.delete_session)

    login = strawberry.mutation(resolver=users.login)

    track_comfy_job = strawberry.mutation(
        resolver=track.track_comfy_job,
        description="Follow a prompt queued directly on a configured worker as a job (queued, "
        "running or finished); the same prompt again answers the same job.",
    )
    publish_workflow = strawberry.mutation(resolver=workflows.publish_workflow)
    deprecate_workflow = strawberry.mutation(resolver=workflows.deprecate_workflow)
    create_webhook_endpoint = strawberry.mutation(resolver=webhooks.create_webhook_endpoint)
    delete_webhook_endpoint = strawberry.mutation(resolver=webhooks.delete_webhook_endpoint)
    rotate_webhook_secret = strawberry.mutation(resolver=webhooks.rotate_webhook_secret)
    redeliver_webhook = strawberry.mutation(resolver=webhooks.redeliver_webhook)
    drain_worker = strawberry.mutation(
        resolver=workers.drain_worker,
        description="Admins: the worker takes no new jobs, finishes its own, then is DRAINED.",
    )
    undrain_worker = strawberry.mutation(resolver=workers.undrain_worker)
    cancel_batch = strawberry.mutation(
        resolver=batches.cancel_batch, description="Cancel every job of a batch not yet ended."
    )
    pin_job = strawberry.mutation(resolver=retention.pin_job)
    unpin_job = strawberry.mutation(resolver=retention.unpin_job)
    set_storage_quota = strawberry.mutation(resolver=retention.set_storage_quota_of)
