"""Many writers at once queue up for the database instead of failing."""

from __future__ import annotations

import asyncio

from tests.web.conftest import PASSWORD, Desk


async def test_twenty_simultaneous_sign_ins_all_succeed(desk: Desk) -> None:
    async def sign_in(who: str) -> int:
        response = await desk.client.post(
            "/api/v1/auth/login", json={"username": who, "password": PASSWORD}
        )
        return response.status

    statuses = await asyncio.gather(*(sign_in(w) for w in ["alice", "bob", "sam", "admin"] * 5))
    assert statuses == [200] * 20


async def test_simultaneous_customer_writes_all_succeed(desk: Desk) -> None:
    async def create(n: int) -> int:
        response = await desk.client.post(
            "/api/v1/customers", json={"name": f"Parallel {n}"}, headers=desk.auth("alice")
        )
        return response.status

    statuses = await asyncio.gather(*(create(n) for n in range(20)))
    assert statuses == [201] * 20
