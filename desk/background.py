"""A background task with one owner: started once, cancelled and awaited on stop.

Every long-running part (the SLA watcher, the mail sender, the board feed, the
assigner, the call recorder's lanes) owns its loop through one of these, so
shutdown never leaves a task running and a loop that dies says so in the log
at once instead of when the service stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
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
