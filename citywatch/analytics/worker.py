"""Analysis worker process: decodes its cameras' streams and runs their analyzers.

Process model: the server starts `DetectorConfig.workers` of these (spawned, not forked).
Each owns a share of the cameras, one thread per camera; PyAV decoding and ONNX Runtime
inference release the GIL, so the threads of one worker use several cores, and workers
scale further. Decoded frames never leave the worker: only small result messages and
chosen JPEG snapshots go back to the server over a queue. Recording runs in the server
process and never waits for analysis.

Analysis never falls behind real time: every frame is decoded (H.264 needs it), but a
frame is analysed only when it is due (`fps`) and still fresh; when the CPU is short,
stale frames are dropped and counted, and frame age stays bounded.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing as mp
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from citywatch.analytics.face_stage import FaceEngineLike, FaceOptions, FaceStage
from citywatch.analytics.messages import AnalyticsStatus, FrameResult, Message
from citywatch.analytics.pipeline import CameraAnalyzer, DetectorLike, PlateReaderLike
from citywatch.cameras.source import PacketSource, SourceError
from citywatch.config import AnalyticsConfig, StreamConfig

log = logging.getLogger(__name__)

MAX_FRAME_AGE_S = 1.0  # older frames are dropped, not analysed
STATUS_EVERY_S = 1.0


class CameraAnalysis:
    """One camera's analysis loop (a thread inside a worker)."""

    def __init__(
        self,
        camera_id: str,
        stream: StreamConfig,
        config: AnalyticsConfig,
        detector: DetectorLike,
        emit: Callable[[Message], None],
        retry_s: float = 5.0,
        plate_reader: PlateReaderLike | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.stream = stream
        self.config = config
        self.analyzer = CameraAnalyzer(camera_id, config, detector, plate_reader=plate_reader)
        self.emit = emit
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"analysis-{camera_id}", daemon=True)
        self.decoded = 0
        self.analysed = 0
        self.dropped = 0
        self.motion_skips = 0
        self.detector_runs = 0
        self._ages: deque[float] = deque(maxlen=64)
        self._detect_ms: deque[float] = deque(maxlen=64)
        self.faces: FaceStage | None = None  # set only while an authorisation allows it

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _status(
        self, state: str, error: str = "", window: tuple[int, int, float] = (0, 0, 1)
    ) -> None:
        decoded, analysed, span = window
        ages = sorted(self._ages)
        p95 = ages[int(0.95 * (len(ages) - 1))] * 1000 if ages else 0.0
        det = sum(self._detect_ms) / len(self._detect_ms) if self._detect_ms else 0.0
        self.emit(
            AnalyticsStatus(
                self.camera_id,
                state,
                error,
                decoded / span,
                analysed / span,
                self.dropped,
                p95,
                det,
                self.detector_runs,
                self.motion_skips,
            )  # fmt: skip
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except SourceError as exc:
                self._status("error", str(exc))
            except Exception as exc:
                log.exception("camera %s: analysis failed", self.camera_id)
                self._status("error", f"{type(exc).__name__}: {exc}")
            for msg in self.analyzer.finish(time.time()):
                self.emit(msg)
            self._stop.wait(self.retry_s)
        self._status("stopped")

    def _session(self) -> None:
        source = PacketSource(self.stream, 10.0, self._stop.is_set)
        try:
            video = source.open()
            ctx = video.codec_context
            ctx.thread_type = "AUTO"
            if self.config.keyframes_only:
                ctx.skip_frame = "NONKEY"
            self._status("running")
            tb = video.time_base
            interval = 1.0 / self.config.fps
            lag_min = math.inf  # wall - media time of the least-delayed frame
            due = -math.inf
            last_status = time.monotonic()
            window_decoded = window_analysed = 0
            for packet in source.packets():
                try:
                    frames = ctx.decode(packet)
                except Exception as exc:  # a corrupt packet: skip it, keep the stream
                    log.debug("camera %s: decode error: %s", self.camera_id, exc)
                    continue
                for frame in frames:
                    self.decoded += 1
                    window_decoded += 1
                    now = time.time()
                    pts = frame.pts if frame.pts is not None else frame.dts
                    if pts is None:
                        continue
                    media = float(pts * tb)
                    lag_min = min(lag_min, now - media)
                    ts = lag_min + media  # the frame's capture time on our clock
                    if ts < due:
                        continue
                    due = max(due + interval, ts - interval / 2)
                    if now - ts > MAX_FRAME_AGE_S:
                        self.dropped += 1
                        continue
                    self._analyse(frame, ts)
                    window_analysed += 1
                mono = time.monotonic()
                if mono - last_status >= STATUS_EVERY_S:
                    span = mono - last_status
                    self._status("running", "", (window_decoded, window_analysed, span))
                    window_decoded = window_analysed = 0
                    last_status = mono
        finally:
            source.close()

    def _analyse(self, frame: Any, ts: float) -> None:
        width = min(self.config.width, frame.width)
        height = int(frame.height * width / frame.width) // 2 * 2
        image = frame.reformat(width=width, height=height, format="bgr24").to_ndarray()
        full = None
        faces = self.faces
        if (self.analyzer.plate_reader is not None or faces is not None) and width < frame.width:
            full = frame.to_ndarray(format="bgr24")
        out = self.analyzer.process(image, ts, full)
        self.analysed += 1
        if out.detector_ran:
            self.detector_runs += 1
            self._detect_ms.append(out.detect_ms)
        else:
            self.motion_skips += 1
        for msg in out.messages:
            self.emit(msg)
        if faces is not None:
            for seen in faces.update(out.boxes, full if full is not None else image, ts):
                self.emit(seen)
        self.emit(FrameResult(self.camera_id, ts, out.boxes))
        self._ages.append(time.time() - ts)


def worker_main(
    worker_id: int,
    detector_model: str,
    threads: int,
    commands: Any,
    results: Any,
) -> None:
    """Entry point of a worker process. Commands: ("set", camera_id, stream dict, analytics
    dict), ("faces", camera_id, options dict or None), ("remove", camera_id), ("stop",)."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker{worker_id} %(message)s")
    from citywatch.analytics.detector import DetectorError, load_detector

    def emit(msg: Message) -> None:
        # If the server is behind, drop rather than stall the cameras.
        with contextlib.suppress(queue.Full):
            results.put(msg, timeout=1.0)

    detector: DetectorLike | None = None
    error = ""
    try:
        # A low floor: weak detections keep tracks alive; class thresholds apply later.
        detector = load_detector(detector_model, threads=threads, threshold=0.15)
    except DetectorError as exc:
        error = str(exc)
        log.error("analysis worker %d: %s", worker_id, error)
    cameras: dict[str, CameraAnalysis] = {}
    plate_reader: PlateReaderLike | None = None
    face_options: dict[str, FaceOptions] = {}
    face_engine: list[FaceEngineLike] = []  # loaded on first use

    def apply_faces(camera_id: str) -> None:
        analysis, opts = cameras.get(camera_id), face_options.get(camera_id)
        if analysis is None:
            return
        if opts is None:
            analysis.faces = None
            return
        if not face_engine:
            engine = _load_face_engine()
            if engine is None:
                emit(AnalyticsStatus(camera_id, "error", "face engine unavailable (see log)"))
                return
            face_engine.append(engine)
        analysis.faces = FaceStage(camera_id, face_engine[0], opts)

    while True:
        try:
            cmd = commands.get(timeout=1.0)
        except queue.Empty:
            continue
        if cmd[0] == "stop":
            break
        camera_id = cmd[1]
        if cmd[0] == "faces":
            if cmd[2] is None:
                face_options.pop(camera_id, None)
            else:
                face_options[camera_id] = FaceOptions.from_dict(cmd[2])
            apply_faces(camera_id)
            continue
        old = cameras.pop(camera_id, None)
        if old is not None:
            old.stop()
        if cmd[0] != "set":
            continue
        if detector is None:
            emit(AnalyticsStatus(camera_id, "error", f"detector unavailable: {error}"))
            continue
        config = AnalyticsConfig.model_validate(cmd[3])
        if config.plates and plate_reader is None:
            plate_reader = _load_plate_reader(threads)
            if plate_reader is None:
                emit(AnalyticsStatus(camera_id, "error", "plate reader unavailable (see log)"))
        analysis = CameraAnalysis(
            camera_id,
            StreamConfig.model_validate(cmd[2]),
            config,
            detector,
            emit,
            plate_reader=plate_reader,
        )
        cameras[camera_id] = analysis
        apply_faces(camera_id)
        analysis.start()
    for analysis in cameras.values():
        analysis.stop()


def _load_plate_reader(threads: int) -> PlateReaderLike | None:
    """The plate reader, loaded once per worker and only when a camera asks for plates."""
    from citywatch.analytics.plates.reader import PlateReader, PlateReaderError

    try:
        return PlateReader(threads=threads)
    except (PlateReaderError, OSError) as exc:
        log.error("plate reader unavailable: %s", exc)
        return None


def _load_face_engine() -> FaceEngineLike | None:
    """The face engine, loaded once per worker and only when a camera is authorised."""
    from citywatch.analytics.faces import FaceEngine, FaceEngineError

    try:
        engine: FaceEngineLike = FaceEngine()
        return engine
    except (FaceEngineError, OSError) as exc:
        log.error("face engine unavailable: %s", exc)
        return None


def spawn_context() -> Any:
    return mp.get_context("spawn")
