"""jobUpdates: every filter field, scopes and visibility, with real jobs on the emulator."""

from __future__ import annotations

from typing import Any

import asyncpg

from comfygraph.db.sessions import create_session
from tests.graphql.client import gid
from tests.realtime.client import JOB_UPDATES, LEGACY_WS, Client, Operation
from tests.realtime.conftest import User
from tests.realtime.harness import Running, submit, until

ORDER = ["PENDING", "PROCESSING", "COMPLETED"]
FILTERS: dict[str, dict[str, Any] | None] = {
    "default": None,  # MINE for a signed-in viewer
    "mine": {"scope": "MINE"},
    "all": {"scope": "ALL"},
    "image": {"outputTypes": ["IMAGE"]},
    "video": {"outputTypes": ["VIDEO", "AUDIO"]},
    "workflow": {"workflowNames": ["product-image"]},
    "other_workflow": {"workflowNames": ["img2img"]},
    "completed": {"statuses": ["COMPLETED"]},
    "after": {"createdAfter": "2000-01-01T00:00:00Z"},
    "before": {"createdBefore": "2000-01-01T00:00:00Z"},
}


async def collect(op: Operation, jobs: set[str]) -> dict[str, list[str]]:
    """Statuses per job until each of `jobs` was seen COMPLETED."""
    seen: dict[str, list[str]] = {}
    while not all("COMPLETED" in seen.get(job, []) for job in jobs):
        job = await op.data(within=30)
        seen.setdefault(job["id"], []).append(job["status"])
    return seen


async def streams_listening(server: Running, count: int) -> None:
    async def ready() -> bool:
        realtime, bus_subscribers, _ = await server.stats()
        return realtime.streams >= count and bus_subscribers >= count

    await until(ready)


async def test_each_filter_field_and_scope_sees_exactly_its_jobs(
    server: Running, users: dict[str, User], pool: asyncpg.Pool
) -> None:
    alice, bob = users["alice"], users["bob"]
    async with pool.acquire() as conn:
        session = await create_session(conn, user_id=alice.id, user_product_prompt="lamp")
    in_session = {"sessionId": gid("Session", session["id"])}
    async with (
        await Client.connect(server.ws_url, token=alice.token) as a,
        await Client.connect(server.ws_url, LEGACY_WS, bob.token) as b,
    ):
        before = (await server.stats())[0].streams
        ops = {name: await a.subscribe(JOB_UPDATES, {"filter": f}) for name, f in FILTERS.items()}
        ops["session"] = await a.subscribe(JOB_UPDATES, {"filter": in_session})
        ops["bob_public"] = await b.subscribe(JOB_UPDATES, {"filter": {"scope": "PUBLIC"}})
        ops["bob_all"] = await b.subscribe(JOB_UPDATES, {"filter": {"scope": "ALL"}})
        ops["bob_mine"] = await b.subscribe(JOB_UPDATES, {"filter": {"scope": "MINE"}})
        await streams_listening(server, before + len(ops))

        private = await submit(server.url, alice.token)
        public = await submit(server.url, alice.token, public=True, session=in_session["sessionId"])
        both = {private, public}

        for name in ("default", "mine", "all", "image", "workflow", "after"):
            seen = await collect(ops[name], both)
            assert set(seen) == both, name
            for statuses in seen.values():  # created, then each change, in order
                assert statuses[0] in ("PENDING", "PROCESSING") and statuses[-1] == "COMPLETED"
                assert statuses == sorted(statuses, key=ORDER.index), (name, statuses)
        assert set(await collect(ops["session"], {public})) == {public}
        completed = await collect(ops["completed"], both)
        assert completed == {private: ["COMPLETED"], public: ["COMPLETED"]}
        for name in ("bob_public", "bob_all"):  # another viewer: only the public job
            assert set(await collect(ops[name], {public})) == {public}, name
        for name in ("video", "other_workflow", "before", "bob_mine"):
            await ops[name].quiet(0.5)
        await ops["session"].quiet(0.1)
        await ops["bob_all"].quiet(0.1)
