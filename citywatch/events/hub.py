"""In-process publish/subscribe for the command centre: alerts, events and live tracks.

Publishers (the event service thread) call `publish`; subscribers (WebSocket handlers)
register a callback, usually one that hands the message to their event loop. A slow
subscriber is the subscriber's problem: callbacks must not block.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Callback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class _Sub:
    callback: Callback
    types: frozenset[str] | None
    cameras: frozenset[str] | None


class EventHub:
    def __init__(self) -> None:
        self._subs: dict[int, _Sub] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def subscribe(
        self,
        callback: Callback,
        types: set[str] | None = None,
        cameras: frozenset[str] | set[str] | None = None,
    ) -> int:
        """`types`: message types wanted (None: all); `cameras`: None for every camera."""
        sid = next(self._ids)
        with self._lock:
            self._subs[sid] = _Sub(
                callback,
                frozenset(types) if types is not None else None,
                frozenset(cameras) if cameras is not None else None,
            )
        return sid

    def unsubscribe(self, sid: int) -> None:
        with self._lock:
            self._subs.pop(sid, None)

    def publish(self, message: dict[str, Any]) -> None:
        kind, camera = message.get("type"), message.get("camera_id")
        with self._lock:
            subs = list(self._subs.values())
        for sub in subs:
            if sub.types is not None and kind not in sub.types:
                continue
            if sub.cameras is not None and camera not in sub.cameras:
                continue
            try:
                sub.callback(message)
            except Exception:
                log.exception("hub subscriber failed")
