"""The fast drills as tests (bench/drill.py prints them as a table): a replica SIGKILLed
and a worker killed, each with jobs in flight; every accepted job completes exactly once
and the subscriber on the other replica sees every one end."""

from __future__ import annotations

from tests.drills.conftest import FleetFactory
from tests.drills.fleet import Row, drill

JOBS = 8


def explain(row: Row, log: str) -> str:
    return f"{row}\n{log}"


async def test_sigkill_of_a_replica_loses_and_repeats_nothing(fleet: FleetFactory) -> None:
    async with fleet(speed=8.0, workers=2) as f:

        async def sigkill_a() -> None:  # A took the submissions and runs some of them
            f.replicas[0].popen.kill()
            f.replicas[0].popen.wait(10)

        row = await drill(f, "SIGKILL one replica", JOBS, sigkill_a, deadline=30)
        assert row.in_flight > 0, explain(row, f.log_tail())
        assert (row.accepted, row.completed) == (JOBS, JOBS), explain(row, f.log_tail())
        assert row.clean, explain(row, f.log_tail())


async def test_killed_worker_s_jobs_complete_on_the_other(fleet: FleetFactory) -> None:
    async with fleet(speed=8.0, workers=2) as f:

        async def kill_worker() -> None:
            f.emulators[0].kill()

        row = await drill(f, "kill a worker", JOBS, kill_worker, deadline=30)
        assert row.in_flight > 0, explain(row, f.log_tail())
        assert (row.accepted, row.completed) == (JOBS, JOBS), explain(row, f.log_tail())
        assert row.clean, explain(row, f.log_tail())
