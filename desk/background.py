"""A background task with one owner: started once, cancelled and awaited on stop.

Every long-running part (the SLA watcher, the mail sender, the board feed, the
assigner, the call recorder's lanes) owns its loop through one of these (the
poked ones through :class:`PokedLoop`), so
shutdown never leaves a task running and a loop that dies says so in the log
at once instead of when the service stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any

log = logging.getLogger(__name__)
STUBBORN_TRIES = 10


class OwnedTask:
    __slots__ = ("_name", "_run", "_task")

    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._name, self._run = name, run
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop (again after a stop); a second start while it runs does nothing."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)
            self._task.add_done_callback(self._ended)

    async def stop(self, *, patience: float = 5.0) -> None:
        """Cancel the loop and wait for it to end.  A library can swallow a cancellation
        that lands mid-call (redis-py does, mid-command): a loop still running after
        ``patience`` seconds is cancelled again, every second, so a stop never hangs on
        one lost cancellation; after ``STUBBORN_TRIES`` more it is left, with an error."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=patience)
        tries = 0
        while not done and tries < STUBBORN_TRIES:
            tries += 1
            log.warning("background task %s ignored its cancellation; cancelling again", self._name)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1.0)
        if not done:
            log.error("background task %s would not stop; left running", self._name)
        elif not task.cancelled():
            task.exception()  # retrieved: a loop that died was logged when it died

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task is self._task and not task.cancelled() and task.exception() is not None:
            log.error("background task %s died", self._name, exc_info=task.exception())


class PokedLoop:
    """Rounds of work in one owned task: each round returns how long to sleep before
    the next, and :meth:`poke` (a commit that may have made work due) cuts the sleep
    short.  A round that raises (the database is away) is logged and the next one
    comes after ``retry`` seconds; the loop itself never dies of it."""

    __slots__ = ("_name", "_retry", "_round", "_task", "_wake", "rounds")

    def __init__(
        self, name: str, round_: Callable[[], Coroutine[Any, Any, float]], *, retry: float
    ) -> None:
        self._name, self._round, self._retry = name, round_, retry
        self._wake = asyncio.Event()
        self._task = OwnedTask(name, self._run)
        self.rounds = 0

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    @property
    def running(self) -> bool:
        return self._task.running

    def poke(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            # Cleared before the round looks: a poke during the round means another.
            self._wake.clear()
            self.rounds += 1
            try:
                delay = await self._round()
            except Exception:
                log.exception("%s: round failed; retrying in %s s", self._name, self._retry)
                delay = self._retry
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
