"""Exactly one process of a deployment holds the PBX link; another takes over.

Every ``desk serve`` process runs a :class:`LinkHolder`.  The one that holds
the lease (desk/leases.py) runs its :class:`PbxLink`, which connects, logs in
and resyncs; the others are standbys that try to take the lease every
``retry`` seconds.  A holder that loses the lease stops its link at once, so
two links never follow the PBX for longer than the holder takes to notice (its
lock session ended: at once; went quiet: ``check`` seconds).  A link taken over
can pop nothing twice: each pop is claimed in the database (cti/recorder.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from cti.link import PbxLink
from desk.background import OwnedTask
from desk.leases import Lease

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0
CHECK_SECONDS = 1.0
# A process whose lock session just failed waits this long before trying again,
# so a standby that has been waiting all along takes over, not the process
# whose database connection (or network) may be the trouble.
STEP_BACK_SECONDS = 3.0

HoldingChanged = Callable[[bool], Awaitable[None]]


class LinkHolder:
    def __init__(
        self,
        *,
        link: PbxLink,
        lease: Lease,
        retry: float = RETRY_SECONDS,
        check: float = CHECK_SECONDS,
        step_back: float = STEP_BACK_SECONDS,
    ) -> None:
        self.link, self._lease = link, lease
        self._retry, self._check, self._step_back = retry, check, step_back
        self._task = OwnedTask("pbx-link-lease", self._run)
        self._listeners: list[HoldingChanged] = []
        self.holding = False
        self._told = False  # the listeners last heard "holding"
        self.takeovers = 0  # times this process took the link (the first time included)

    def on_change(self, listener: HoldingChanged) -> None:
        """``listener(True)`` once the link runs here; ``listener(False)`` once it stopped."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """One try at once (a process alone holds the link when start-up ends), then
        the lease loop: a standby keeps trying, a holder keeps watching."""
        if await self._lease.take():
            await self._hold()
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        await self._let_go()
        await self._lease.release()

    async def _run(self) -> None:
        while True:
            if self.holding:
                await self._lease.watch(every=self._check)
                log.warning("the PBX link lease is lost: stopping the link")
                await self._let_go()
                await asyncio.sleep(self._step_back)
            elif await self._lease.take():
                await self._hold()
            else:
                await asyncio.sleep(self._retry)

    async def _hold(self) -> None:
        try:
            await self.link.start()
        except Exception:
            log.exception("the PBX link did not start; giving the lease back")
            await self.link.stop()
            await self._lease.release()
            await asyncio.sleep(self._step_back)
            return
        self.holding = True
        self.takeovers += 1
        log.info("this process holds the PBX link")
        self._told = True
        await self._tell(True)

    async def _let_go(self) -> None:
        # Forwarded requests are refused from here on, before the link stops.
        self.holding = False
        # Also when start-up was cancelled half-way: a link partly started stops too.
        await self.link.stop()
        if self._told:
            self._told = False
            await self._tell(False)

    async def _tell(self, holding: bool) -> None:
        for listener in self._listeners:
            try:
                await listener(holding)
            except Exception:
                log.exception("a PBX link holding listener failed")
