"""Rate limits: a token bucket per key, decided by a pure function, kept in memory or Redis.

The bucket is kept as one number, the time it will be full again (the "theoretical
arrival time" of GCRA): ``count`` requests may come at once, then one every
``seconds / count``.  ``decide`` turns (that time, now, limit) into an answer and
the next time; a store only keeps the number per key.  With Redis every process
shares the buckets (an optimistic transaction: WATCH, decide, MULTI/SET), so a
client cannot multiply its allowance by the number of processes.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from desk.settings import RateLimit

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    # The bucket's "full again" time after this request (unchanged when refused).
    full_at: float
    # Refused: seconds until one request is allowed again (0 when allowed).
    retry_after: float

    @property
    def retry_after_seconds(self) -> int:
        """Retry-After as HTTP wants it: whole seconds, at least 1."""
        return max(1, math.ceil(self.retry_after))


def decide(full_at: float | None, now: float, limit: RateLimit) -> Decision:
    """One request at ``now`` against a bucket that is full again at ``full_at``."""
    interval = limit.seconds / limit.count
    start = max(full_at if full_at is not None else now, now)
    after = start + interval
    # Allowed while the bucket would hold at most ``count`` requests' worth.
    allowed_from = after - limit.seconds
    if now < allowed_from:
        return Decision(allowed=False, full_at=start, retry_after=allowed_from - now)
    return Decision(allowed=True, full_at=after, retry_after=0.0)


class RateStore(Protocol):
    async def take(self, key: str, limit: RateLimit, now: float) -> Decision:
        """Count one request: the decision, and the bucket updated if allowed."""

    async def peek(self, key: str, limit: RateLimit, now: float) -> Decision:
        """Whether one request would be allowed, counting nothing."""

    async def close(self) -> None: ...


class MemoryRateStore:
    """Buckets of this process only (no Redis configured)."""

    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._full_at: dict[str, float] = {}
        self._max_keys = max_keys

    async def take(self, key: str, limit: RateLimit, now: float) -> Decision:
        decision = decide(self._full_at.get(key), now, limit)
        if decision.allowed:
            self._full_at[key] = decision.full_at
            if len(self._full_at) > self._max_keys:
                self._forget_full(now)
        return decision

    async def peek(self, key: str, limit: RateLimit, now: float) -> Decision:
        return decide(self._full_at.get(key), now, limit)

    def _forget_full(self, now: float) -> None:
        # A bucket that is full again is the same as no bucket.
        self._full_at = {key: at for key, at in self._full_at.items() if at > now}
        while len(self._full_at) > self._max_keys:  # all busy: drop the oldest
            del self._full_at[next(iter(self._full_at))]

    async def close(self) -> None:
        self._full_at.clear()


class RedisRateStore:
    """Buckets shared by every process through Redis; each key expires once full."""

    # Each round of a race has a winner, so N writers at once need at most N rounds;
    # only a flood on one key runs out, and a flood may be refused.
    ATTEMPTS = 64

    def __init__(self, redis: Redis, *, prefix: str = "calldesk:rate:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._complained_at = 0.0

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "calldesk:rate:") -> RedisRateStore:
        return cls(
            Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0), prefix=prefix
        )

    async def take(self, key: str, limit: RateLimit, now: float) -> Decision:
        name = self._prefix + key
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for _ in range(self.ATTEMPTS):
                    try:
                        await pipe.watch(name)
                        raw = await pipe.get(name)
                        decision = decide(float(raw) if raw is not None else None, now, limit)
                        if not decision.allowed:
                            await pipe.reset()  # type: ignore[no-untyped-call]
                            return decision
                        pipe.multi()  # type: ignore[no-untyped-call]
                        ttl = max(1, math.ceil((decision.full_at - now) * 1000))
                        pipe.set(name, repr(decision.full_at), px=ttl)
                        await pipe.execute()
                        return decision
                    except WatchError:
                        continue  # another process took from this bucket meanwhile
        except (RedisError, OSError):
            # Fail open: the database's account lockout still guards sign-ins, and
            # a Redis outage should not take the public pages down with it.
            self._complain()
            return Decision(allowed=True, full_at=now, retry_after=0.0)
        # Lost every race: this key is being hammered from several processes at once.
        return Decision(allowed=False, full_at=now, retry_after=limit.seconds / limit.count)

    async def peek(self, key: str, limit: RateLimit, now: float) -> Decision:
        try:
            raw = await self._redis.get(self._prefix + key)
        except (RedisError, OSError):
            self._complain()
            return Decision(allowed=True, full_at=now, retry_after=0.0)
        return decide(float(raw) if raw is not None else None, now, limit)

    def _complain(self) -> None:
        moment = time.monotonic()
        if moment - self._complained_at >= 60:
            self._complained_at = moment
            log.warning("rate limits: Redis is unreachable; requests pass unlimited", exc_info=True)

    async def close(self) -> None:
        await self._redis.aclose()
