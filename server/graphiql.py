"""GraphiQL with the project's name and a tour: strawberry's page, re-titled, with default
tabs (the workflows, a submit, the feed with fragments, a live jobProgress), the
Authorization header prefilled when a token is configured (`--demo`), and its assets
from a local folder when GRAPHIQL_ASSETS_DIR is set (offline machines, strict CSPs).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import strawberry

ASSETS_PATH = "/graphiql-assets"
CDN = "https://unpkg.com"
TITLE = "comfygraph GraphiQL"

TOUR = [
    (
        "1 workflows",
        "# What this server runs: each workflow and the parameters submitJob takes.\n"
        "query Workflows { workflows { name outputType description\n"
        "    parameters { name type required default min max choices } } }\n",
    ),
    (
        "2 submit",
        "# Queue a job. Run it, copy job.id for the jobProgress tab.\n"
        'mutation SubmitJob { submitJob(input: {workflowName: "product-image",\n'
        '                             parameters: {prompt: "pink tennis shoes"}}) {\n'
        "    job { id status queuePosition } userErrors { field code message } } }\n",
    ),
    (
        "3 feed",
        "# The feed holds the Job union: common fields through GenerationJob,\n"
        "# a type's own fields through its fragment.\n"
        "query Feed { jobs(first: 10) { edges { node {\n"
        "    ... on GenerationJob { id workflowName status progress outputs { kind url } }\n"
        "    ... on ImageJob { outputImageUrls } } } } }\n",
    ),
    (
        "4 jobProgress",
        "# Live over the websocket: paste a job id from the submit tab.\n"
        'subscription JobProgress { jobProgress(id: "<job id>") {\n'
        "    status progress node etaSeconds queuePosition } }\n",
    ),
]


@cache
def _stock_page() -> str:
    return (Path(strawberry.__file__).parent / "static" / "graphiql.html").read_text()


def graphiql_page(*, token: str | None, local_assets: bool) -> str:
    page = _stock_page().replace("<title>Strawberry GraphiQL</title>", f"<title>{TITLE}</title>")
    if local_assets:
        page = page.replace(f'"{CDN}/', f'"{ASSETS_PATH}/')
    tabs = [{"query": query} for _, query in TOUR]
    headers = json.dumps({"Authorization": f"Bearer {token}"}, indent=2) if token else None
    if headers:
        for tab in tabs:
            tab["headers"] = headers
    # The tour replaces strawberry's welcome text; GraphiQL 3 opens `defaultTabs`.
    page = page.replace(
        "parameters.q || EXAMPLE_QUERY,", f"parameters.q || {json.dumps(TOUR[0][1])},"
    )
    initial = f"parameters.headers || {json.dumps(headers)}"
    page = page.replace("React.useState(parameters.headers);", f"React.useState({initial});")
    page = page.replace(
        "          fetcher: fetcher,\n",
        f"          fetcher: fetcher,\n          defaultTabs: {json.dumps(tabs)},\n",
    )
    return page
