"""Requests to the process holding the PBX link, from the others, through Redis.

While a process holds the link (cti/link_holder.py) it listens on a request
channel of its own and names that channel under ``HOLDER_KEY``, a key that
expires ``ADVERTISED_FOR`` seconds after its last refresh.  A process without the
link publishes its request there and waits for the answer on its own reply
channel.  No key, or nobody listening on the channel it names (PUBLISH says how
many heard), means no process holds the link now: the asker says so at once
instead of waiting.  A holder that does not answer in time counts the same.

Keys live in the Redis database of ``redis_url`` (one per deployment); channel
names carry a random part, as pub/sub channels are shared by every database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from cti.link import PbxActionFailed
from desk.background import OwnedTask

log = logging.getLogger(__name__)
HOLDER_KEY = "calldesk:pbx-link:holder"
CHANNEL_PREFIX = "calldesk:pbx-link:"
ADVERTISE_EVERY = 1.0
ADVERTISED_FOR = 3  # seconds: a holder that stopped refreshing is forgotten this soon
# Deletes the holder key only if it still names this process's channel: a holder
# letting go must not erase the one that took over.
_WITHDRAW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

Answer = Callable[[dict[str, Any]], Awaitable[Any]]


class PbxUnavailable(Exception):
    """No process holds the PBX link now, or it cannot be reached; the message says which."""


class LinkRelay:
    """Both ends: ``ask`` (any process) and, while ``serve(True)``, answering."""

    def __init__(self, *, redis: Redis, answer: Answer) -> None:
        self._redis, self._answer = redis, answer
        token = secrets.token_hex(8)
        self._request_channel = f"{CHANNEL_PREFIX}requests:{token}"
        self._reply_channel = f"{CHANNEL_PREFIX}replies:{token}"
        self._withdraw = redis.register_script(_WITHDRAW)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._replies: PubSub | None = None
        self._requests: PubSub | None = None
        self._reading = OwnedTask("pbx-link-replies", self._read_replies)
        self._answering = OwnedTask("pbx-link-requests", self._read_requests)
        self._advertising = OwnedTask("pbx-link-advert", self._advertise)
        self._answers: set[asyncio.Task[None]] = set()
        self.answered = 0

    async def start(self) -> None:
        self._replies = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._replies.subscribe(self._reply_channel)
        self._reading.start()

    async def stop(self) -> None:
        await self.serve(False)
        await self._reading.stop()
        if self._replies is not None:
            await self._replies.aclose()  # type: ignore[no-untyped-call]  # no hints in redis-py
            self._replies = None
        for waiting in self._waiting.values():
            waiting.cancel()
        await self._redis.aclose()

    # -- the holder's end ------------------------------------------------------------

    async def serve(self, holding: bool) -> None:
        """Answer requests (and say so under ``HOLDER_KEY``) while this process holds the link."""
        if holding:
            self._requests = self._redis.pubsub(ignore_subscribe_messages=True)
            await self._requests.subscribe(self._request_channel)
            self._answering.start()
            self._advertising.start()
            return
        await self._advertising.stop()
        try:
            await self._withdraw(keys=[HOLDER_KEY], args=[self._request_channel])
        except RedisError as exc:  # the key expires by itself in a moment
            log.warning("could not withdraw the PBX link advert: %s", exc)
        await self._answering.stop()
        if self._requests is not None:
            await self._requests.aclose()  # type: ignore[no-untyped-call]  # no hints in redis-py
            self._requests = None
        answers, self._answers = self._answers, set()
        for task in answers:
            task.cancel()
        await asyncio.gather(*answers, return_exceptions=True)

    async def _advertise(self) -> None:
        failing = False
        while True:
            try:
                await self._redis.set(HOLDER_KEY, self._request_channel, ex=ADVERTISED_FOR)
                failing = False
            except RedisError as exc:
                if not failing:
                    log.warning("cannot advertise the PBX link in Redis: %s", exc)
                failing = True
            await asyncio.sleep(ADVERTISE_EVERY)

    async def _read_requests(self) -> None:
        assert self._requests is not None
        async for message in _messages(self._requests, "requests"):
            task = asyncio.create_task(self._answer_one(message), name="pbx-link-answer")
            self._answers.add(task)
            task.add_done_callback(self._answers.discard)

    async def _answer_one(self, message: dict[str, Any]) -> None:
        request, reply_to = message.get("request"), message.get("reply_to")
        if not isinstance(request, dict) or not isinstance(reply_to, str):
            log.warning("a PBX link request without request or reply_to was dropped")
            return
        reply: dict[str, Any] = {"id": message.get("id")}
        try:
            reply |= {"ok": True, "result": await self._answer(request)}
        except PbxActionFailed as exc:
            reply |= {"ok": False, "error": "refused", "message": str(exc)}
        except PbxUnavailable as exc:
            reply |= {"ok": False, "error": "unavailable", "message": str(exc)}
        except Exception as exc:  # the asker must hear something, and the log says what
            log.exception("answering a forwarded PBX link request failed")
            reply |= {"ok": False, "error": "unavailable", "message": f"the holder failed: {exc}"}
        try:
            await self._redis.publish(reply_to, json.dumps(reply))
            self.answered += 1
        except RedisError as exc:
            log.warning("could not answer a forwarded PBX link request: %s", exc)

    # -- everyone's end --------------------------------------------------------------

    async def ask(self, request: dict[str, Any], *, wait: float) -> Any:
        """The holder's answer to ``request``; PbxUnavailable when no holder answers within
        ``wait`` seconds, PbxActionFailed when the PBX refused."""
        request_id = secrets.token_hex(8)
        answered: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answered
        message = {"id": request_id, "reply_to": self._reply_channel, "request": request}
        try:
            channel = await self._redis.get(HOLDER_KEY)
            heard = 0
            if channel is not None:
                heard = await self._redis.publish(channel, json.dumps(message))
            if not heard:
                raise PbxUnavailable(
                    "no process holds the PBX link now; another takes it over within seconds"
                )
            async with asyncio.timeout(wait):
                reply = await answered
        except RedisError as exc:
            raise PbxUnavailable(f"the PBX link is out of reach: Redis: {exc}") from None
        except TimeoutError:
            raise PbxUnavailable(
                f"the process holding the PBX link did not answer within {wait:g}s"
            ) from None
        finally:
            self._waiting.pop(request_id, None)
        if reply.get("ok"):
            return reply.get("result")
        said = str(reply.get("message") or "no reason given")
        if reply.get("error") == "refused":
            raise PbxActionFailed(said)
        raise PbxUnavailable(said)

    async def _read_replies(self) -> None:
        assert self._replies is not None
        async for reply in _messages(self._replies, "replies"):
            waiting = self._waiting.get(str(reply.get("id")))
            if waiting is not None and not waiting.done():
                waiting.set_result(reply)


async def _messages(pubsub: PubSub, what: str) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects published on a subscription; others are logged and skipped.
    A lost Redis connection is retried every second (redis-py subscribes again)."""
    while True:
        try:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        except RedisError as exc:
            log.warning("PBX link %s: Redis: %s", what, exc)
            await asyncio.sleep(1.0)
            continue
        if message is None or message.get("type") != "message":
            continue
        try:
            body = json.loads(message["data"])
        except (TypeError, ValueError):
            body = None
        if isinstance(body, dict):
            yield body
        else:
            log.warning("PBX link %s: a message that is not a JSON object was dropped", what)
