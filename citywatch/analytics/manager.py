"""Server side of analytics: starts the worker processes, gives each its cameras, and
hands what they report to a callback (the event service).

Cameras are spread over workers by a stable hash of their id. A worker that dies is
started again with its cameras.
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections.abc import Callable
from typing import Any

from citywatch.analytics.messages import AnalyticsStatus, Message
from citywatch.analytics.worker import spawn_context, worker_main
from citywatch.config import CameraConfig, DetectorConfig

log = logging.getLogger(__name__)


class AnalyticsManager:
    def __init__(self, config: DetectorConfig, on_message: Callable[[Message], None]) -> None:
        self.config = config
        self.on_message = on_message
        self._ctx = spawn_context()
        self._results: Any = self._ctx.Queue(maxsize=10_000)
        self._workers: list[Any] = []
        self._commands: list[Any] = []
        self._assigned: dict[str, tuple[int, tuple[Any, ...]]] = {}  # camera -> (worker, cmd)
        self._faces: dict[str, dict[str, Any]] = {}  # camera -> face options, if authorised
        self.status: dict[str, AnalyticsStatus] = {}
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        for i in range(self.config.workers):
            self._start_worker(i)
        self._reader = threading.Thread(target=self._read, name="analytics-results", daemon=True)
        self._reader.start()

    def _start_worker(self, i: int) -> None:
        commands = self._ctx.Queue()
        proc = self._ctx.Process(
            target=worker_main,
            args=(i, self.config.model, self.config.threads, commands, self._results),
            name=f"citywatch-analytics-{i}",
            daemon=True,
        )
        proc.start()
        if i < len(self._workers):
            self._workers[i], self._commands[i] = proc, commands
        else:
            self._workers.append(proc)
            self._commands.append(commands)

    def worker_of(self, camera_id: str) -> int:
        return zlib.crc32(camera_id.encode()) % max(1, len(self._workers))

    def apply(self, camera: CameraConfig | None, camera_id: str) -> None:
        """Start, change or stop the analysis of one camera."""
        with self._lock:
            if not self._workers:
                return
            w = self.worker_of(camera_id)
            if camera is None or not camera.enabled or not camera.analytics.enabled:
                if self._assigned.pop(camera_id, None) is not None:
                    self._commands[w].put(("remove", camera_id))
                self.status.pop(camera_id, None)
                return
            stream = camera.sub_stream or camera.main_stream
            cmd = (
                "set",
                camera_id,
                stream.model_dump(mode="json"),
                camera.analytics.model_dump(mode="json"),
            )
            if self._assigned.get(camera_id, (None, None))[1] == cmd:
                return
            self._assigned[camera_id] = (w, cmd)
            self.status[camera_id] = AnalyticsStatus(camera_id, "starting")
            self._commands[w].put(cmd)
            if camera_id in self._faces:
                self._commands[w].put(("faces", camera_id, self._faces[camera_id]))

    def set_faces(self, camera_id: str, options: dict[str, Any] | None) -> None:
        """Switch face analysis of one camera on (options) or off (None), without
        restarting its analysis. Only the server's authorisation check calls this."""
        with self._lock:
            if options is None and self._faces.pop(camera_id, None) is None:
                return
            if options is not None:
                if self._faces.get(camera_id) == options:
                    return
                self._faces[camera_id] = options
            if self._workers:
                self._commands[self.worker_of(camera_id)].put(("faces", camera_id, options))

    def faces_on(self) -> set[str]:
        with self._lock:
            return set(self._faces)

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._results.get(timeout=0.5)
            except queue.Empty:
                self._check_workers()
                continue
            if isinstance(msg, AnalyticsStatus):
                self.status[msg.camera_id] = msg
            try:
                self.on_message(msg)
            except Exception:
                log.exception("analytics: handling %s failed", type(msg).__name__)

    def _check_workers(self) -> None:
        for i, proc in enumerate(list(self._workers)):
            if proc.is_alive() or self._stop.is_set():
                continue
            log.error("analytics worker %d died (exit %s); restarting it", i, proc.exitcode)
            with self._lock:
                self._start_worker(i)
                for camera_id, (w, cmd) in self._assigned.items():
                    if w == i:
                        self._commands[i].put(cmd)
                        if camera_id in self._faces:
                            self._commands[i].put(("faces", camera_id, self._faces[camera_id]))

    def stop(self) -> None:
        self._stop.set()
        for commands in self._commands:
            commands.put(("stop",))
        for proc in self._workers:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
        if self._reader is not None:
            self._reader.join(5)
        self._workers.clear()
        self._commands.clear()
