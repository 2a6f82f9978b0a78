"""publishWorkflow / deprecateWorkflow (admins): templates managed at runtime
(studio/workflows.py stores, installs and broadcasts them).

userErrors: FORBIDDEN (not an admin); INVALID_TEMPLATE, at ["template", ...] the path of
the problem inside the template; UNKNOWN_WORKFLOW (deprecating a name nobody knows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry

from comfygraph.resolvers.catalog import workflow_view
from comfygraph.schema.errors import FORBIDDEN, unauthenticated, user_error
from comfygraph.schema.scalars import JSON
from comfygraph.schema.workflows import WorkflowPayload
from comfygraph.studio import workflows
from comfygraph.studio.workflows import Problem

if TYPE_CHECKING:
    from comfygraph.comfy.templates import WorkflowTemplate
    from comfygraph.resolvers.context import Context


def _forbidden(ctx: Context, field: str) -> WorkflowPayload | None:
    if ctx.viewer.anonymous:
        raise unauthenticated()
    if ctx.viewer.is_admin:
        return None
    return WorkflowPayload(
        workflow=None, user_errors=[user_error(FORBIDDEN, "admins only", [field])]
    )


def _payload(result: WorkflowTemplate | Problem) -> WorkflowPayload:
    if isinstance(result, Problem):
        error = user_error(result.code, result.message, list(result.path))
        return WorkflowPayload(workflow=None, user_errors=[error])
    return WorkflowPayload(workflow=workflow_view(result), user_errors=[])


async def publish_workflow(info: strawberry.Info[Context, None], template: JSON) -> WorkflowPayload:
    ctx = info.context
    refused = _forbidden(ctx, "template")
    if refused is not None:
        return refused
    services = ctx.services
    result = await workflows.publish_workflow(
        ctx.pool, services.templates, services.publish, template, ctx.viewer.user_id
    )
    return _payload(result)


async def deprecate_workflow(info: strawberry.Info[Context, None], name: str) -> WorkflowPayload:
    ctx = info.context
    refused = _forbidden(ctx, "name")
    if refused is not None:
        return refused
    services = ctx.services
    result = await workflows.deprecate_workflow(
        ctx.pool, services.templates, services.publish, name, ctx.viewer.user_id
    )
    return _payload(result)
