"""The real app served on a free local port from a thread of its own, for clients
that block (schemathesis calls it with ``requests``); and what it logged as
unhandled, so a 500 in a test shows the server's traceback next to the request."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web

from desk.settings import Settings
from web.app import create_app

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


class _Unhandled(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@dataclass
class LiveServer:
    settings: Settings
    # Peers that must be up before the app's own parts (a PBX simulator), as in `desk demo`.
    before: list[CleanupContext] = field(default_factory=list)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _failure: BaseException | None = None
    _unhandled: _Unhandled = field(default_factory=_Unhandled)

    def start(self, *, timeout: float = 30.0) -> LiveServer:
        logging.getLogger("web.api.errors").addHandler(self._unhandled)
        self._thread = threading.Thread(target=self._run, name="live-desk", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the app did not start")
        if self._failure is not None:
            raise RuntimeError("the app did not start") from self._failure
        return self

    def stop(self, *, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        logging.getLogger("web.api.errors").removeHandler(self._unhandled)

    def unhandled_since(self, mark: int) -> list[str]:
        """Tracebacks of the errors the app turned into 500s after ``mark`` of them."""
        return self._unhandled.records[mark:]

    @property
    def unhandled_count(self) -> int:
        return len(self._unhandled.records)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        app = create_app(self.settings)
        for context in reversed(self.before):
            app.cleanup_ctx.insert(0, context)
        runner = web.AppRunner(app, access_log=None)
        try:
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            host, port = runner.addresses[0][:2]
            self.url = f"http://{host}:{port}"
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            await runner.cleanup()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
