"""Feeding a WebSocket from another thread, with a bounded backlog."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from fastapi import WebSocket, WebSocketDisconnect

T = TypeVar("T")


class ThreadFeed(Generic[T]):
    """Items put from any thread (`put`) are sent in order by `serve`; a client that falls
    `max_backlog` items behind is closed (code 4408) rather than buffered for."""

    def __init__(self, max_backlog: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[T | None] = asyncio.Queue()
        self._max = max_backlog

    def put(self, item: T) -> None:
        too_slow = self._queue.qsize() > self._max
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None if too_slow else item)

    async def serve(self, websocket: WebSocket, send: Callable[[T], Awaitable[None]]) -> None:
        """Send until the client goes away or falls too far behind."""

        async def pump() -> None:
            while True:
                item = await self._queue.get()
                if item is None:
                    await websocket.close(code=4408, reason="client too slow")
                    return
                await send(item)

        async def watch_close() -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        tasks = [asyncio.create_task(pump()), asyncio.create_task(watch_close())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await t
