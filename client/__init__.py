"""A typed Python client of the comfygraph API for server-side users (scripts, other
services): `Client` speaks GraphQL over HTTP (httpx) and graphql-transport-ws
(websockets). It imports nothing of the server, so it works against any deployment.

    async with Client("http://127.0.0.1:8000", token=TOKEN) as api:
        job = await api.submit("product-image", {"prompt": "pink tennis shoes"})
        async for event in api.progress(job.id):
            print(event.status, event.progress)
        done = await api.wait(job.id)
"""

from comfygraph.client.api import Client, Job, JobOutput, Progress
from comfygraph.client.errors import ApiError, UserErrors

__all__ = ["ApiError", "Client", "Job", "JobOutput", "Progress", "UserErrors"]
