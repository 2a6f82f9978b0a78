"""Descriptions of the schema's types, fields, arguments and enum values that their
definitions do not carry, in one place, applied once when the schema is built
(`describe`). A definition's own description always wins; a test walks the schema and
fails on anything left undescribed.

Generic parts are described by rule: Relay connections and edges, `first`/`after`,
payloads' `userErrors`, Node ids, and every field an interface already describes.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
)

_JOB = "the id of a job (VideoJob, ImageJob, TextJob or AudioJob)"
_SESSION_ID = "The id of the session (Session.id)."

TYPES = {
    "WorkflowPayload": "publishWorkflow or deprecateWorkflow: the workflow, or why not "
    "(FORBIDDEN: admins only; INVALID_TEMPLATE at the path of the problem; UNKNOWN_WORKFLOW).",
    "StorageQuotaPayload": "The user after their quota changed, or why not.",
    "WorkerPayload": "The worker after the change, or why not.",
    "CancelBatchPayload": "The batch after the cancel, or why not.",
    "WebhookEndpoint": "A URL that receives signed (Standard Webhooks) events.",
    "WebhookEndpointPayload": "The endpoint created or changed, or why not.",
    "CreateWebhookEndpointInput": "Where to send events, and which.",
    "WebhookDeliveryPayload": "The delivery queued again, or why not.",
    "Query": "Everything a client reads. Jobs and sessions are filtered by what the viewer "
    "may see: their own, public jobs, everything for an admin.",
    "Mutation": "Everything a client changes. Expected failures come back as `userErrors` "
    "with a stable code; a wrong id is NOT_FOUND whether the object is missing or hidden.",
    "Node": "Anything with a global id (Relay): fetch it again with `node(id:)`.",
    "User": "A person who signs in.",
    "Role": "What a user may do.",
    "Session": "An ad-video session: a product prompt turned into images, clips from the "
    "chosen images, and a composed final video, with its costs.",
    "Asset": "A file a session produced or uses: an image, a clip, the final video, music.",
    "CostLine": "A session's spending on one category (images, clips, composition) and provider.",
    "JobOutput": "One stored file that a job produced.",
    "OutputType": "What a job generates; each lives in its own table and GraphQL type.",
    "OutputKind": "What kind of file a job output is.",
    "JobStatus": "Where a job is in its life. COMPLETED, FAILED, CANCELLED and EXPIRED are final.",
    "SessionStatus": "Where a session is in its pipeline. COMPLETED, FAILED and CANCELLED "
    "are final.",
    "AssetType": "What an asset is.",
    "AssetStatus": "Where an asset is: being made, made, or chosen or turned down by the user.",
    "ProductCategory": "The kind of product an ad is for; it steers the prompts.",
    "VideoJob": "A job whose result is a video (lip-sync, image-to-video, a session's clips).",
    "ImageJob": "A job whose result is one or more images.",
    "TextJob": "A job whose result is text (captions, descriptions), maybe with files.",
    "AudioJob": "A job whose result is audio.",
    "PageInfo": "Where a page is in its list (Relay): pass endCursor as `after` for the next.",
    "Workflow": "A workflow template this server can run on its ComfyUI workers.",
    "WorkflowParameter": "One parameter of a workflow: submitJob's `parameters` must satisfy it.",
    "ParameterType": "The type of a workflow parameter, as `parameters` must give it.",
    "Worker": "A ComfyUI worker as this replica sees it.",
    "SubmitJobPayload": "The result of submitJob or retryJob: the new job, or why there is none.",
    "JobPayload": "The result of a mutation on one job: the job afterwards, or why not.",
    "DeletePayload": "The result of a delete: the id that is gone, or why not.",
    "UploadPayload": "The stored file: pass `url` as an IMAGE, AUDIO or VIDEO parameter.",
    "SessionPayload": "The result of a session mutation: the session afterwards, or why not.",
    "AuthPayload": "A signed-in user and their bearer token, or why not.",
    "UserError": "An expected failure of a mutation: which input, what went wrong, a code.",
    "SubmitJobInput": "What to run: a workflow and its parameters.",
    "CreateSessionInput": "What the ad is about and how it should look.",
    "Subscription": "Live streams over a websocket at /graphql (graphql-transport-ws or "
    "graphql-ws); each starts with the current state.",
    "JobProgress": "One progress event of a running job.",
    "NodeProgress": "Progress inside the ComfyUI node that is running.",
}

FIELDS = {
    "JobFilter.batchId": "Only the jobs of this batch (SubmitJobPayload.batchId).",
    "Worker.status": "HEALTHY, UNHEALTHY, DRAINING (finishing its jobs) or DRAINED.",
    "WorkerCapabilities.nodeCount": "How many node class types it has.",
    "WorkerCapabilities.modelCount": "How many model files its loaders offer.",
    "WorkerCapabilities.nodes": "Its node class types.",
    "WorkerCapabilities.models": "The model files its loaders offer.",
    "Batch.jobs": "The batch's jobs, in the order they were created.",
    "Batch.total": "How many jobs it has.",
    "Batch.pending": "How many are PENDING.",
    "Batch.processing": "How many are PROCESSING.",
    "Batch.completed": "How many are COMPLETED.",
    "Batch.failed": "How many FAILED.",
    "Batch.cancelled": "How many were CANCELLED.",
    "Mutation.undrainWorker": "Admins: the worker takes new jobs again.",
    "SubmitJobPayload.batchId": "The batch's id when count > 1 (Query.batch, JobFilter.batchId).",
    "WorkerPayload.worker": "The worker, when it succeeded.",
    "CancelBatchPayload.batch": "The batch, when it succeeded.",
    "CancelBatchPayload.cancelledCount": "How many jobs this cancelled.",
    "Query.webhookEndpoints": "The viewer's webhook endpoints (an admin's include global ones).",
    "Query.webhookDeliveries": "The newest deliveries to one of the viewer's endpoints.",
    "Session.musicUrl": "The uploaded audio file the final video is scored with.",
    "WebhookEndpoint.url": "Where deliveries are POSTed (https).",
    "WebhookEndpoint.createdAt": "When it was created.",
    "WebhookEndpoint.disabledReason": "Why nothing more is sent, when disabled.",
    "WebhookDelivery.event": "The event type, e.g. job.completed.",
    "WebhookDelivery.attemptCount": "How many times it was sent.",
    "WebhookDelivery.lastStatusCode": "The HTTP status of the last attempt.",
    "WebhookDelivery.lastError": "Why the last attempt failed, when it did.",
    "WebhookDelivery.createdAt": "When the event happened.",
    "WebhookDelivery.nextAttemptAt": "When it is tried again, while pending.",
    "WebhookDelivery.deliveredAt": "When a receiver answered 2xx.",
    "WebhookDelivery.attempts": "Every attempt, oldest first.",
    "WebhookAttempt.attemptedAt": "When it was sent.",
    "WebhookAttempt.statusCode": "The receiver's HTTP status (none when it did not answer).",
    "WebhookAttempt.latencyMs": "From sending to the answer.",
    "WebhookAttempt.error": "Why it failed, when it did.",
    "Mutation.createWebhookEndpoint": "Receive signed events at a URL; the answer holds "
    "its signing secret.",
    "Mutation.deleteWebhookEndpoint": "Stop sending to an endpoint.",
    "Mutation.rotateWebhookSecret": "A new signing secret; the old one also signs for 24 hours.",
    "Mutation.redeliverWebhook": "Send a delivery again, with the same webhook-id.",
    "TrackComfyJobInput.promptId": "The prompt_id the worker's POST /prompt answered.",
    "TrackComfyJobInput.parameters": "The parameters the prompt was built with.",
    "TrackComfyJobInput.public": "Show the job in the public feed.",
    "TrackComfyJobInput.sessionId": "The session the job belongs to, if any.",
    "CreateWebhookEndpointInput.url": "Where to POST deliveries (https).",
    "CreateWebhookEndpointInput.events": "Which events: job.completed, job.failed, "
    "job.cancelled, job.progress, session.completed, session.failed.",
    "WebhookEndpointPayload.endpoint": "The endpoint, when it succeeded.",
    "WebhookDeliveryPayload.delivery": "The delivery, when it succeeded.",
    "Query.node": "Any object by its global id; null if it does not exist or is hidden.",
    "Query.nodes": "Several objects by id, in the same order (null for each unknown one).",
    "Query.videoJobs": "The video jobs of the feed.",
    "Query.imageJobs": "The image jobs of the feed.",
    "Query.textJobs": "The text jobs of the feed.",
    "Query.audioJobs": "The audio jobs of the feed.",
    "Query.job": "One job by id; null if it does not exist or the viewer may not see it.",
    "Query.jobByComfyId": "The job ComfyUI knows by this prompt_id.",
    "Query.workflows": "The workflows that submitJob accepts, with their parameters.",
    "Query.workers": "The ComfyUI workers and their health (admins only).",
    "Query.session": "One session by id; null if it does not exist or is not the viewer's.",
    "Query.sessions": "The viewer's sessions, newest first.",
    "Query.me": "The signed-in user; null when anonymous.",
    "GenerationJob.outputType": "Which output table the job lives in.",
    "GenerationJob.status": "Where the job is in its life.",
    "GenerationJob.public": "Whether everyone sees it in the public feed.",
    "GenerationJob.createdAt": "When it was submitted.",
    "GenerationJob.startedAt": "When a worker started it.",
    "GenerationJob.completedAt": "When it reached a final status.",
    "GenerationJob.processingTimeSeconds": "Seconds from start to finish.",
    "GenerationJob.errorMessage": "Why it failed (FAILED only).",
    "GenerationJob.owner": "Who submitted it.",
    "GenerationJob.session": "The ad-video session it belongs to, if any.",
    "VideoJob.inputImageUrls": "Images the job was given.",
    "VideoJob.inputAudioUrls": "Audio the job was given.",
    "VideoJob.inputVideoUrls": "Videos the job was given.",
    "VideoJob.outputVideoUrls": "The videos it produced.",
    "VideoJob.width": "Width of the video in pixels.",
    "VideoJob.height": "Height of the video in pixels.",
    "VideoJob.fps": "Frames per second.",
    "VideoJob.durationSeconds": "Length of the video.",
    "ImageJob.inputImageUrls": "Images the job was given.",
    "ImageJob.prompt": "The text prompt, when the workflow takes one.",
    "ImageJob.outputImageUrls": "The images it produced.",
    "ImageJob.width": "Width in pixels.",
    "ImageJob.height": "Height in pixels.",
    "TextJob.inputImageUrls": "Images the job was given.",
    "TextJob.prompt": "The text prompt, when the workflow takes one.",
    "TextJob.outputText": "The text it produced.",
    "AudioJob.inputAudioUrls": "Audio the job was given.",
    "AudioJob.outputAudioUrls": "The audio files it produced.",
    "AudioJob.durationSeconds": "Length of the audio.",
    "AudioJob.sampleRate": "Samples per second.",
    "JobOutput.kind": "What kind of file it is.",
    "JobOutput.url": "Where to download it.",
    "JobOutput.filename": "Its file name.",
    "JobOutput.mimeType": "Its media type, e.g. image/png.",
    "JobOutput.width": "Width in pixels (images, videos).",
    "JobOutput.height": "Height in pixels (images, videos).",
    "JobOutput.durationSeconds": "Length (audio, video).",
    "JobOutput.sizeBytes": "Size of the file.",
    "User.email": "Login email, lower case.",
    "User.fullName": "Display name.",
    "User.role": "USER or ADMIN.",
    "User.createdAt": "When the account was made.",
    "Session.status": "Where the session is in its pipeline.",
    "Session.currentStage": "The stage being worked on: images, clips or composition.",
    "Session.productCategory": "The kind of product.",
    "Session.userProductPrompt": "The product, as the user described it.",
    "Session.userVideoPrompt": "The scene the clips should show.",
    "Session.consistencySeed": "The seed every image uses, so the series looks alike.",
    "Session.styleKeywords": "Style words added to every prompt.",
    "Session.productName": "Shown on the final video.",
    "Session.callToAction": "Shown at the end of the final video.",
    "Session.textColor": "Colour of the overlaid text (#RRGGBB).",
    "Session.textFont": "Font of the overlaid text.",
    "Session.backgroundMusicEnabled": "Whether the final video gets music.",
    "Session.musicGenre": "Which music, when enabled.",
    "Session.numImagesRequested": "How many product images to generate.",
    "Session.clipDurationSeconds": "Length of each clip.",
    "Session.totalCost": "What the session has cost so far, in USD.",
    "Session.estimatedCost": "What the whole session should cost in USD, estimated at "
    "creation over every stage (images, clips, composition) from recent runs of each "
    "workflow; null when nothing gives an estimate.",
    "Session.errorMessage": "Why it failed (FAILED only).",
    "Session.retryCount": "How often a failed stage was started again.",
    "Session.createdAt": "When it was created.",
    "Session.updatedAt": "When it last changed.",
    "Session.completedAt": "When it reached a final status.",
    "Session.metadata": "Extra details, e.g. how the estimate was made.",
    "Session.owner": "Whose session it is.",
    "Session.assets": "Its assets, oldest first, optionally of one type or status.",
    "Session.finalVideo": "The composed ad, once there is one.",
    "Session.jobs": "The generation jobs the session ran, newest first.",
    "Session.costBreakdown": "Spending per category and provider.",
    "Asset.type": "What the asset is.",
    "Asset.source": "Where it came from (generated, uploaded).",
    "Asset.status": "Where the asset is.",
    "Asset.url": "Where to download it.",
    "Asset.storagePath": "Its key in storage.",
    "Asset.fileSizeBytes": "Size of the file.",
    "Asset.mimeType": "Its media type.",
    "Asset.resolution": "Width x height, e.g. 1024x1024.",
    "Asset.durationSeconds": "Length (clips, videos, music).",
    "Asset.fps": "Frames per second (clips, videos).",
    "Asset.generationCost": "What making it cost, in USD.",
    "Asset.generationTimeSeconds": "How long making it took.",
    "Asset.modelVersion": "The model that made it.",
    "Asset.viewType": "Which view of the product an image shows (front, side...).",
    "Asset.seed": "The seed it was generated with.",
    "Asset.guidanceScale": "The guidance (CFG) scale it was generated with.",
    "Asset.scenePrompt": "The scene a clip shows.",
    "Asset.cameraMovement": "The camera move of a clip.",
    "Asset.motionIntensity": "How fast a clip's camera moves.",
    "Asset.generationPrompt": "The full prompt it was generated from.",
    "Asset.negativePrompt": "What the generation avoided.",
    "Asset.userSelected": "Whether the user chose it for the mood board.",
    "Asset.selectionOrder": "Its place on the mood board.",
    "Asset.createdAt": "When it appeared.",
    "Asset.metadata": "Extra details.",
    "Asset.session": "The session it belongs to.",
    "CostLine.category": "images, clips or composition.",
    "CostLine.provider": "Who was paid (a worker).",
    "CostLine.apiCalls": "How many generations.",
    "CostLine.totalCost": "Their cost, in USD.",
    "CostLine.avgLatencyMs": "Average time of one, in milliseconds.",
    "PageInfo.hasNextPage": "Whether more items follow.",
    "PageInfo.endCursor": "The last item's cursor: pass it as `after` for the next page.",
    "PageInfo.hasPreviousPage": "Whether items come before (true when `after` was given).",
    "PageInfo.startCursor": "The first item's cursor.",
    "JobFilter.scope": "Whose jobs (default: MINE signed in, PUBLIC anonymous).",
    "JobFilter.outputTypes": "Only these output types.",
    "JobFilter.workflowNames": "Only these workflows.",
    "JobFilter.statuses": "Only these statuses.",
    "JobFilter.sessionId": "Only the jobs of this session.",
    "JobFilter.createdAfter": "Only jobs created after this instant.",
    "JobFilter.createdBefore": "Only jobs created before this instant.",
    "Workflow.name": "What submitJob's workflowName takes.",
    "Workflow.outputType": "What its jobs produce.",
    "Workflow.description": "What it does.",
    "Workflow.parameters": "What `parameters` takes.",
    "Workflow.version": "Its current version: 0 for a template file on the server, 1, 2, ... "
    "for versions published since (publishWorkflow); each job runs the version it was "
    "submitted with.",
    "WorkflowPayload.workflow": "The workflow as stored (publish: its new version).",
    "Mutation.publishWorkflow": "Admins: store a workflow template as the next version of its "
    "name (added, or replacing the current one) on every replica within a second; a "
    "deprecated name is in use again.",
    "Mutation.deprecateWorkflow": "Admins: new submissions (and retries) of this workflow are "
    "refused and Query.workflows no longer lists it; its jobs stay. Publishing it again "
    "lifts this.",
    "WorkflowParameter.name": "The key in `parameters`.",
    "WorkflowParameter.type": "What value it takes.",
    "WorkflowParameter.required": "Whether it must be given.",
    "WorkflowParameter.default": "The value used when it is left out.",
    "WorkflowParameter.description": "What it does.",
    "WorkflowParameter.min": "INT, FLOAT, SEED: the smallest value. STRING: the shortest "
    "length in characters. List files: the fewest items.",
    "WorkflowParameter.max": "INT, FLOAT, SEED: the largest value. STRING: the longest "
    "length in characters. List files: the most items.",
    "WorkflowParameter.choices": "The only values allowed, when it is a choice.",
    "Worker.url": "Its base URL.",
    "Worker.healthy": "Whether it answered its last health checks.",
    "Worker.draining": "Whether it takes no new jobs.",
    "Worker.queueRemaining": "Prompts in its ComfyUI queue.",
    "Worker.runningJobs": "Jobs this replica has on it.",
    "Worker.lastSeenAt": "When it last answered.",
    "Worker.device": "Its GPU (or the emulator).",
    "Worker.vramTotalBytes": "Its video memory.",
    "Worker.vramFreeBytes": "Its free video memory.",
    "Mutation.submitJob": "Validate the parameters against the workflow and queue a job; "
    "nothing is queued when any parameter is wrong.",
    "Mutation.cancelJob": "Cancel a pending or running job (stopped on its worker).",
    "Mutation.setJobPublic": "Show a job in the public feed, or hide it.",
    "Mutation.createSession": "Start an ad-video session (nothing runs until "
    "generateSessionImages).",
    "Mutation.generateSessionImages": "Generate the session's product images.",
    "Mutation.generateSessionClips": "Generate a clip from each selected image.",
    "Mutation.composeSessionVideo": "Compose the selected clips into the final video.",
    "Mutation.cancelSession": "Stop the session and its running jobs.",
    "Mutation.deleteSession": "Delete the session; it leaves every list.",
    "Mutation.login": "Sign in: a bearer token to send as `Authorization: Bearer <token>`.",
    "SubmitJobPayload.job": "The new job (null when there are userErrors).",
    "JobPayload.job": "The job afterwards (null when there are userErrors).",
    "DeletePayload.deletedId": "The id that is gone.",
    "UploadPayload.url": "The stored file's URL.",
    "UploadPayload.name": "The file's name.",
    "UploadPayload.contentType": "Its media type, from its content.",
    "UploadPayload.sizeBytes": "Its size.",
    "SessionPayload.session": "The session afterwards (null when there are userErrors).",
    "AuthPayload.token": "Send it as `Authorization: Bearer <token>`.",
    "AuthPayload.user": "Who signed in.",
    "UserError.message": "What went wrong, for people.",
    "SubmitJobInput.workflowName": "A name from Query.workflows.",
    "SubmitJobInput.public": "Show the job in the public feed.",
    "SubmitJobInput.sessionId": "Count the job under this session.",
    "SubmitJobInput.priority": "Higher runs first; equal priorities run oldest first.",
    "CreateSessionInput.userProductPrompt": "The product, e.g. 'pink tennis shoes'.",
    "CreateSessionInput.userVideoPrompt": "The scene the clips should show.",
    "CreateSessionInput.productCategory": "The kind of product.",
    "CreateSessionInput.numImagesRequested": "How many product images (default 6).",
    "CreateSessionInput.clipDurationSeconds": "Length of each clip (default 3).",
    "CreateSessionInput.consistencySeed": "One seed for every image (default: random).",
    "CreateSessionInput.styleKeywords": "Style words added to every prompt.",
    "CreateSessionInput.productName": "Shown on the final video.",
    "CreateSessionInput.callToAction": "Shown at the end of the final video.",
    "CreateSessionInput.textColor": "Colour of the text (#RRGGBB).",
    "CreateSessionInput.textFont": "Font of the text (a choice of compose-ad's text_font).",
    "CreateSessionInput.backgroundMusicEnabled": "Add music to the final video.",
    "CreateSessionInput.musicGenre": "Which music.",
    "JobProgress.job": "The job as it is now.",
    "JobProgress.status": "The job's status.",
    "JobProgress.progress": "Progress of the whole workflow, 0..100; never decreases.",
    "JobProgress.nodeProgress": "Steps of the node running now, when it reports them.",
    "JobProgress.queuePosition": "While PENDING: jobs ahead of this one.",
    "JobProgress.etaSeconds": "Seconds left, estimated from past runs of the workflow.",
    "NodeProgress.node": "The ComfyUI node id.",
    "NodeProgress.classType": "The node's class, e.g. KSampler.",
    "NodeProgress.value": "Steps done.",
    "NodeProgress.max": "Steps in all.",
    "GenerationJob.expiresAt": "When its stored files are deleted and it becomes EXPIRED "
    "(RETENTION_DAYS, or its workflow's own retention, after it ended); null when it is "
    "kept (pinned, no retention, not finished) or already EXPIRED. A job of a session "
    "still running is kept past it until the session ends.",
    "GenerationJob.expiredAt": "When it expired: its files were deleted (EXPIRED only).",
    "GenerationJob.pinned": "Kept whatever the retention (pinJob / unpinJob).",
    "User.storageUsedBytes": "Bytes the user's outputs and uploads take (only the user and "
    "admins see it).",
    "User.storageQuotaBytes": "Bytes the user may store (STORAGE_QUOTA_BYTES, or an admin's "
    "setStorageQuota); null: unlimited, or not the viewer's to see.",
    "StorageQuotaPayload.user": "The user afterwards (null when there are userErrors).",
    "Mutation.pinJob": "Keep a job whatever the retention: it never expires while pinned.",
    "Mutation.unpinJob": "Let a pinned job expire again with the retention.",
    "Mutation.setStorageQuota": "Admins: set one user's storage quota in bytes.",
}

ARGUMENTS = {
    "Mutation.pinJob(id)": "The job's id.",
    "Mutation.unpinJob(id)": "The job's id.",
    "Mutation.setStorageQuota(userId)": "The user's id (User.id).",
    "Mutation.setStorageQuota(bytes)": "The quota in bytes; null: STORAGE_QUOTA_BYTES again.",
    "Query.batch(id)": "The batch's id.",
    "Mutation.drainWorker(url)": "The worker's URL, as in Query.workers.",
    "Mutation.publishWorkflow(template)": "The template, as a template file holds it (name, "
    "outputType, graph, parameters, outputs ...).",
    "Mutation.deprecateWorkflow(name)": "The workflow's name.",
    "Mutation.undrainWorker(url)": "The worker's URL, as in Query.workers.",
    "Mutation.cancelBatch(id)": "The batch's id.",
    "Query.webhookDeliveries(endpointId)": "The endpoint's id.",
    "Mutation.trackComfyJob(input)": "The worker, the prompt id and what it was built from.",
    "Mutation.createWebhookEndpoint(input)": "The URL and events.",
    "Mutation.deleteWebhookEndpoint(id)": "The endpoint's id.",
    "Mutation.rotateWebhookSecret(id)": "The endpoint's id.",
    "Mutation.redeliverWebhook(id)": "The delivery's id.",
    "Query.node(id)": "A global id.",
    "Query.nodes(ids)": "Global ids.",
    "Query.job(id)": "The job's id.",
    "Query.jobByComfyId(comfyJobId)": "ComfyUI's prompt_id.",
    "Query.workflows(outputType)": "Only the workflows that produce this.",
    "Query.session(id)": "The session's id.",
    "Query.sessions(statuses)": "Only sessions in these statuses.",
    "Query.sessions(active)": "true: only sessions not in a final status.",
    "Session.assets(type)": "Only assets of this type.",
    "Session.assets(status)": "Only assets in this status.",
    "Mutation.submitJob(input)": "The workflow and its parameters.",
    "Mutation.cancelJob(id)": f"{_JOB[0].upper()}{_JOB[1:]}.",
    "Mutation.retryJob(id)": f"{_JOB[0].upper()}{_JOB[1:]}.",
    "Mutation.deleteJob(id)": f"{_JOB[0].upper()}{_JOB[1:]}.",
    "Mutation.setJobPublic(id)": f"{_JOB[0].upper()}{_JOB[1:]}.",
    "Mutation.setJobPublic(public)": "true: in the public feed; false: only the owner sees it.",
    "Mutation.uploadFile(file)": "The file (a multipart request, the GraphQL multipart "
    "request spec).",
    "Mutation.createSession(input)": "What the ad is about.",
    "Mutation.selectAssets(assetIds)": "Asset ids of one stage's latest run, in mood-board order.",
    "Mutation.login(email)": "The account's email (any case).",
    "Mutation.login(password)": "Its password.",
    "Subscription.jobProgress(id)": f"{_JOB[0].upper()}{_JOB[1:]}.",
    "Subscription.jobUpdates(filter)": "Only jobs that match (as Query.jobs' filter).",
    "Subscription.sessionProgress(id)": _SESSION_ID,
}

ENUM_VALUES = {
    "WorkerStatus": {
        "HEALTHY": "Answering its health checks and taking jobs.",
        "UNHEALTHY": "Not answering (or answering wrongly): it gets no jobs.",
        "DRAINING": "Takes no new jobs; some still run on it.",
        "DRAINED": "Takes no new jobs and runs none: safe to stop.",
    },
    "OutputType": {"VIDEO": "A video.", "IMAGE": "Images.", "TEXT": "Text.", "AUDIO": "Audio."},
    "JobStatus": {
        "PENDING": "Queued, waiting for a worker.",
        "PROCESSING": "Running on a worker.",
        "COMPLETED": "Done; its outputs are stored.",
        "FAILED": "It did not finish; see errorMessage.",
        "CANCELLED": "Stopped by its owner.",
        "EXPIRED": "Past its retention: its stored files are deleted; the row and its costs "
        "stay (expiredAt).",
    },
    "Role": {"USER": "Sees their own jobs and public ones.", "ADMIN": "Sees everything."},
    "SessionStatus": {
        "CREATED": "Made, nothing generated yet.",
        "PROMPTING": "Writing the prompts.",
        "GENERATING_IMAGES": "Making the product images.",
        "REVIEWING_IMAGES": "Waiting for the user to select images.",
        "GENERATING_VIDEOS": "Making clips from the selected images.",
        "REVIEWING_VIDEOS": "Waiting for the user to select clips.",
        "COMPOSING": "Composing the final video.",
        "COMPLETED": "The final video is ready.",
        "FAILED": "A stage failed; see errorMessage.",
        "CANCELLED": "Stopped by its owner.",
    },
    "ProductCategory": {
        "FOOTWEAR": "Shoes.",
        "ACCESSORIES": "Bags, jewellery, watches.",
        "ELECTRONICS": "Devices.",
        "BEAUTY": "Cosmetics.",
        "APPAREL": "Clothes.",
        "HOME": "Furniture, decoration.",
        "OTHER": "Anything else.",
    },
    "AssetType": {
        "IMAGE": "A product image.",
        "VIDEO_CLIP": "A clip made from an image.",
        "FINAL_VIDEO": "The composed ad.",
        "AUDIO": "Music.",
    },
    "AssetStatus": {
        "GENERATING": "Being made.",
        "COMPLETED": "Made, not yet reviewed.",
        "FAILED": "Could not be made.",
        "APPROVED": "Selected by the user.",
        "REJECTED": "Not selected.",
    },
    "OutputKind": {
        "IMAGE": "An image.",
        "VIDEO": "A video.",
        "AUDIO": "Audio.",
        "TEXT": "A text file.",
        "FILE": "Any other file.",
    },
    "ParameterType": {
        "STRING": "Text; min/max bound its length in characters.",
        "INT": "A whole number within min..max.",
        "FLOAT": "A number within min..max.",
        "BOOLEAN": "true or false.",
        "SEED": "A whole number 0..2147483647; left out, a random one is chosen and recorded.",
        "IMAGE": "The URL of an uploaded or generated image.",
        "AUDIO": "The URL of an uploaded or generated audio file.",
        "VIDEO": "The URL of an uploaded or generated video.",
    },
    "Scope": {
        "MINE": "The viewer's own jobs.",
        "PUBLIC": "Jobs their owners made public.",
        "ALL": "Everything the viewer may see (every job for an admin).",
    },
}

_GENERIC_ARGS = {
    "first": "How many items this page holds at most (default 20).",
    "after": "A cursor (PageInfo.endCursor): the page starts after it.",
    "filter": "Only the jobs that match every condition given.",
    "sessionId": _SESSION_ID,
}


def describe(schema: GraphQLSchema) -> None:
    """Fill in every missing description (in place)."""
    # Interfaces first: their implementations inherit their field descriptions.
    ordered = sorted(
        schema.type_map.items(), key=lambda i: not isinstance(i[1], GraphQLInterfaceType)
    )
    for name, kind in ordered:
        if name.startswith("__"):
            continue
        if not kind.description:
            kind.description = TYPES.get(name) or _generic_type(name)
        if isinstance(kind, GraphQLEnumType):
            for value_name, value in kind.values.items():
                if not value.description:
                    value.description = ENUM_VALUES.get(name, {}).get(value_name)
        if isinstance(kind, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            _describe_fields(name, kind)


def _describe_fields(name: str, kind: Any) -> None:
    interfaces = getattr(kind, "interfaces", ())
    for field_name, field in kind.fields.items():
        if not field.description:
            inherited = (i.fields.get(field_name) for i in interfaces)
            field.description = (
                FIELDS.get(f"{name}.{field_name}")
                or next((f.description for f in inherited if f and f.description), None)
                or _generic_field(name, field_name)
            )
        for arg_name, arg in getattr(field, "args", {}).items():
            if not arg.description:
                arg.description = ARGUMENTS.get(
                    f"{name}.{field_name}({arg_name})"
                ) or _GENERIC_ARGS.get(arg_name)


def _generic_type(name: str) -> str | None:
    if name.endswith("Connection"):
        return f"One page of {name.removesuffix('Connection')} items (a Relay connection)."
    if name.endswith("Edge"):
        return f"One {name.removesuffix('Edge')} of a page, with its cursor."
    return None


def _generic_field(type_name: str, field: str) -> str | None:
    if field == "id":
        return "Its global id (opaque): pass it to `node(id:)` or the mutations."
    if field == "userErrors":
        return "Expected failures (bad input, not found, wrong state); empty on success."
    if type_name.endswith("Connection"):
        return {"edges": "The items of this page, each with its cursor.",
                "pageInfo": "Where this page is; endCursor leads to the next.",
                "totalCount": "How many items the whole list holds."}.get(field)  # fmt: skip
    if type_name.endswith("Edge"):
        return {"cursor": "This item's position: pass it as `after` for the items after it.",
                "node": "The item."}.get(field)  # fmt: skip
    return None
