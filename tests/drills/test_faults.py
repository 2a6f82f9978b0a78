"""The fast drills as tests (bench/drill.py prints them as a table): a replica SIGKILLed
and a worker killed, each with jobs in flight; every accepted job completes exactly once
and the subscriber on the other replica sees every one end. One fleet serves both tests
(starting one costs most of a test); each puts back what it killed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.drills.conftest import FleetFactory
from tests.drills.fleet import Fleet, Row, drill

JOBS = 8


@pytest.fixture(scope="module")
async def fleet_of_two(fleet_factory: FleetFactory) -> AsyncIterator[Fleet]:
    # Leases of 3 s: a SIGKILLed replica's jobs are taken over sooner (default here 5 s).
    async with fleet_factory(speed=8.0, workers=2, env={"LEASE_SECONDS": "3"}) as f:
        yield f


def explain(row: Row, fleet: Fleet) -> str:
    return f"{row}\n{fleet.log_tail()}"


async def test_sigkill_of_a_replica_loses_and_repeats_nothing(fleet_of_two: Fleet) -> None:
    f = fleet_of_two

    async def sigkill_a() -> None:  # A took the submissions and runs some of them
        f.replicas[0].popen.kill()
        f.replicas[0].popen.wait(10)

    try:
        row = await drill(f, "SIGKILL one replica", JOBS, sigkill_a, deadline=30)
    finally:
        if f.replicas[0].popen.poll() is not None:
            f.replicas[0] = await f.replica(2)
    assert row.in_flight > 0, explain(row, f)
    assert (row.accepted, row.completed) == (JOBS, JOBS), explain(row, f)
    assert row.clean, explain(row, f)


async def test_killed_worker_s_jobs_complete_on_the_other(fleet_of_two: Fleet) -> None:
    f = fleet_of_two

    async def kill_worker() -> None:
        f.emulators[0].kill()

    try:
        row = await drill(f, "kill a worker", JOBS, kill_worker, deadline=30)
    finally:
        if f.emulators[0].popen and f.emulators[0].popen.poll() is not None:
            f.emulators[0].start()
            await f.emulators[0].listening()
    assert row.in_flight > 0, explain(row, f)
    assert (row.accepted, row.completed) == (JOBS, JOBS), explain(row, f)
    assert row.clean, explain(row, f)
