"""`desk serve` tunes the garbage collector once it is up (decision 0004)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from aiohttp import web

from web.cli import tune_the_collector


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector as it was, afterwards."""
    threshold = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def _full_collections_during_routing_bursts() -> int:
    """How many full collections 200 routing-sized bursts of short-lived objects cause."""
    gc.collect()
    before: int = gc.get_stats()[2]["collections"]
    for _ in range(200):
        # What routing one ticket among 2,000 agents builds and drops: a snapshot each.
        snapshots = [{"agent_id": n, "skills": {}} for n in range(2_000)]
        del snapshots
    after: int = gc.get_stats()[2]["collections"]
    return after - before


@pytest.mark.usefixtures("collector")
async def test_once_up_the_service_freezes_its_start_up_heap() -> None:
    await tune_the_collector(web.Application())
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[1:] == (10, 10)  # Python's own for the older generations


@pytest.mark.usefixtures("collector")
async def test_short_lived_work_among_thousands_of_agents_causes_no_full_collection() -> None:
    # A full collection walks every connected browser's objects: with 2,000 browsers
    # that stalled the pops' loop for 250-400 ms, every 1-2 s under load.
    await tune_the_collector(web.Application())
    assert _full_collections_during_routing_bursts() == 0
    gc.set_threshold(700, 10, 10)  # Python's default, for contrast: the bursts age
    assert _full_collections_during_routing_bursts() > 0
