"""The lease under the PBX link: a PostgreSQL advisory lock on a connection of its
own, lost the moment its session ends; on SQLite the one process holds it."""

from __future__ import annotations

import asyncio
import time

from desk.leases import AdvisoryLease, ProcessLease, lease_for, lease_key
from tests.cluster.conftest import terminate_lock_session
from tests.conftest import Database

NAME = "cluster-test-lease"


async def test_of_two_processes_on_one_database_only_one_takes_the_lease(
    postgres: Database,
) -> None:
    one, two = lease_for(postgres.url, NAME), lease_for(postgres.url, NAME)
    assert isinstance(one, AdvisoryLease)
    try:
        assert await one.take()
        assert not await two.take()
        assert not await two.take()  # and again: it waits for nobody
    finally:
        await one.release()
        await two.release()


async def test_a_lease_let_go_is_taken_by_the_next_try_of_another_process(
    postgres: Database,
) -> None:
    one, two = lease_for(postgres.url, NAME), lease_for(postgres.url, NAME)
    try:
        assert await one.take()
        assert not await two.take()
        await one.release()
        assert await two.take()
        assert not await one.take()
    finally:
        await one.release()
        await two.release()


async def test_a_holder_whose_lock_session_is_killed_knows_at_once_and_another_takes_it(
    postgres: Database,
) -> None:
    one, two = lease_for(postgres.url, NAME), lease_for(postgres.url, NAME)
    try:
        assert await one.take()
        watching = asyncio.create_task(one.watch(every=5.0))
        await asyncio.sleep(0.1)
        assert not watching.done()
        killed = time.perf_counter()
        await terminate_lock_session(postgres, lease_key(NAME))
        async with asyncio.timeout(1.0):  # well before the next check, 5 s away
            await watching
        noticed = time.perf_counter() - killed
        assert noticed < 1.0
        assert await two.take()
        assert not await one.take()  # a new session of its own: the lock is the other's
    finally:
        await one.release()
        await two.release()


async def test_on_sqlite_the_one_process_holds_the_lease_until_it_lets_go(
    tmp_path: object,
) -> None:
    lease = lease_for(f"sqlite+aiosqlite:///{tmp_path}/desk.db", NAME)
    assert isinstance(lease, ProcessLease)
    assert await lease.take()
    watching = asyncio.create_task(lease.watch(every=0.01))
    await asyncio.sleep(0.05)
    assert not watching.done()
    await lease.release()
    async with asyncio.timeout(1.0):
        await watching
