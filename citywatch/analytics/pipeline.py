"""One camera's analysis of one frame: motion -> detection -> tracking -> zones -> snapshots.

`CameraAnalyzer.process` is a pure step over a decoded frame (BGR array) and its time; it
holds the per-camera state (background, tracks, zone memberships) and knows nothing about
processes, queues or databases, so a test, a worker process or a cluster node runs it alike.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from citywatch.analytics.messages import (
    Message,
    PlateResult,
    Snapshot,
    TrackedBox,
    TrackEnded,
    TrackStarted,
    ZoneHit,
)
from citywatch.analytics.motion import MotionConfig, MotionDetector, merge_regions
from citywatch.analytics.plates.fusion import PlateFusion, ReadSchedule, TrackPlate
from citywatch.analytics.plates.passages import PassageResult, PlatePassages
from citywatch.analytics.plates.reader import PlateRead
from citywatch.analytics.tracker import VEHICLES, Track, Tracker, TrackerConfig, iou_matrix
from citywatch.analytics.types import Box, Detection
from citywatch.analytics.zones import Line, Zone, ZoneEngine
from citywatch.config import AnalyticsConfig
from citywatch.imaging import encode_jpeg_array, sharpness

U8 = npt.NDArray[np.uint8]


class DetectorLike(Protocol):
    def detect(self, image_bgr: U8) -> list[Detection]: ...


class PlateReaderLike(Protocol):
    def read(self, image_bgr: U8, vehicle_box: Box | None = None) -> list[PlateRead]: ...


@dataclass
class _Best:
    score: float = 0.0
    sent_at: float = -1e9


@dataclass
class FrameOutput:
    boxes: list[TrackedBox]
    messages: list[Message] = field(default_factory=list)
    detector_ran: bool = False
    detect_ms: float = 0.0


def zones_from(cfg: AnalyticsConfig) -> tuple[list[Zone], list[Line]]:
    zones = [
        Zone(
            z.name,
            tuple(z.polygon),
            z.dwell_s,
            frozenset(z.classes) if z.classes is not None else None,
        )
        for z in cfg.zones
    ]
    lines = [
        Line(ln.name, ln.a, ln.b, frozenset(ln.classes) if ln.classes is not None else None)
        for ln in cfg.lines
    ]
    return zones, lines


class CameraAnalyzer:
    # Detection on crops around motion finds small, far objects that a full-frame pass at
    # the detector's input size would shrink away; past this much motion, one full pass.
    FULL_FRAME_MOTION = 0.25
    MIN_CROP = 320  # px: crops smaller than this are grown (context helps the detector)
    MAX_CROPS = 1  # two crops cost two detector passes: more than one full pass
    REFRESH_S = 2.0  # with tracks alive but no motion, still look this often
    SNAPSHOT_EVERY_S = 1.0
    SNAPSHOT_GAIN = 1.15

    def __init__(
        self,
        camera_id: str,
        config: AnalyticsConfig,
        detector: DetectorLike,
        tracker_config: TrackerConfig | None = None,
        plate_reader: PlateReaderLike | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.plate_reader = plate_reader if config.plates else None
        self._plates: dict[int, TrackPlate] = {}
        self._plate_ts: dict[int, float] = {}
        self.config = config
        self.detector = detector
        self.motion = MotionDetector(MotionConfig(mask=[list(p) for p in config.motion_mask]))
        self.tracker_config = tracker_config or TrackerConfig()
        self.tracker: Tracker | None = None
        zones, lines = zones_from(config)
        self.zones = ZoneEngine(zones, lines)
        # A dedicated LPR camera: plates on the whole frame, grouped into passages.
        self._passages: PlatePassages | None = None
        # frame JPEG per read, dropped with the read (weak keys)
        self._lpr_views: weakref.WeakKeyDictionary[PlateRead, bytes] = weakref.WeakKeyDictionary()
        if self.plate_reader is not None and config.plate_mode == "lpr":
            self._passages = PlatePassages(config.plate_countries, lines=lines)
        self._best: dict[int, _Best] = {}
        self._last_detect = -1e9
        self.size: tuple[int, int] = (0, 0)

    # -- detection ------------------------------------------------------------------------
    def _regions(self, image: U8, ts: float) -> list[Box] | None:
        """Where to run the detector: None for the full frame, [] for nowhere."""
        if not self.config.motion_gating:
            return None
        motion = self.motion.detect(image)
        tracks_alive = self.tracker is not None and bool(self.tracker.tracks)
        if not motion.any:
            if tracks_alive and ts - self._last_detect >= self.REFRESH_S:
                return None
            return []
        if (
            motion.fraction > self.FULL_FRAME_MOTION
            or tracks_alive
            and (ts - self._last_detect >= self.REFRESH_S)
        ):
            return None
        h, w = image.shape[:2]
        crops = []
        for x1, y1, x2, y2 in merge_regions(motion.regions, 24, w, h):
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            half = max(x2 - x1, y2 - y1, self.MIN_CROP) / 2
            crops.append(
                (max(0.0, cx - half), max(0.0, cy - half), min(w, cx + half), min(h, cy + half))
            )
        crops = merge_regions(crops, 0, w, h)
        # Each crop is a detector pass: past MAX_CROPS, or most of the picture, one full
        # pass costs less.
        if (
            len(crops) > self.MAX_CROPS
            or sum((c[2] - c[0]) * (c[3] - c[1]) for c in crops) > 0.6 * w * h
        ):
            return None
        return crops

    def _detect(self, image: U8, regions: list[Box] | None) -> list[Detection]:
        if regions is None:
            found = self.detector.detect(image)
        else:
            found = []
            for x1, y1, x2, y2 in regions:
                crop = image[int(y1) : int(y2), int(x1) : int(x2)]
                for d in self.detector.detect(crop):
                    bx1, by1, bx2, by2 = d.box
                    found.append(
                        Detection(
                            d.class_name,
                            d.class_id,
                            d.confidence,
                            (bx1 + int(x1), by1 + int(y1), bx2 + int(x1), by2 + int(y1)),
                        )  # fmt: skip
                    )
            found = _nms(found, 0.5)
        return self._filter(found, image.shape[0])

    def _filter(self, found: Sequence[Detection], height: int) -> list[Detection]:
        cfg = self.config
        out = []
        for d in found:
            t = cfg.thresholds.get(d.class_name)
            h = (d.box[3] - d.box[1]) / height
            # Weak detections are kept (down to the tracker's low threshold) so tracks
            # survive occlusion; the class threshold decides what starts a track.
            if t is None or d.confidence < min(t, self.tracker_config.low_threshold):
                continue
            if not cfg.min_height <= h <= cfg.max_height:
                continue
            out.append(d)
        return out

    # -- one frame -----------------------------------------------------------------------
    def process(self, image: U8, ts: float, full: U8 | None = None) -> FrameOutput:
        """One analysed frame. `full`: the same frame at full resolution, for plate reading
        (plates need every pixel); the analysis image is used when it is not given."""
        h, w = image.shape[:2]
        if self.tracker is None or self.size != (w, h):
            self.size = (w, h)
            self.tracker = Tracker(self.tracker_config, diagonal=float(np.hypot(w, h)))
        if self._passages is not None:
            return self._lpr_frame(self._passages, image, ts, full)
        regions = self._regions(image, ts)
        out = FrameOutput(boxes=[])
        if regions is not None and not regions:
            return out  # nothing moves: spare the detector, keep the tracks as they are
        t0 = time.perf_counter()
        dets = self._detect(image, regions)
        out.detect_ms = (time.perf_counter() - t0) * 1000
        out.detector_ran = True
        self._last_detect = ts
        update = self.tracker.update(self._gate_new(dets), ts)
        for t in update.started:
            out.messages.append(
                TrackStarted(
                    self.camera_id,
                    t.id,
                    t.class_name,
                    t.first_ts,
                    self._norm(t.box),
                    t.max_confidence,
                    t.revived,
                )  # fmt: skip
            )
        for t in update.active:
            fx, fy = t.feet
            for ev in self.zones.update(t.id, t.class_name, (fx / w, fy / h), ts):
                out.messages.append(ZoneHit(self.camera_id, ev))
            out.boxes.append(
                TrackedBox(t.id, t.class_name, t.confidence, self._norm(t.box), t.stationary)
            )
            snap = self._snapshot(image, t, update.active, ts)
            if snap is not None:
                out.messages.append(snap)
            if self.plate_reader is not None and t.class_name in VEHICLES:
                self._read_plate(t, full if full is not None else image, w, ts)
        for t in update.ended:
            out.messages.extend(self._ended(t, ts))
        return out

    def _gate_new(self, dets: list[Detection]) -> list[Detection]:
        """Detections below their class threshold may continue a track but not start one:
        the tracker's high threshold is per class here."""
        cfg = self.config
        out = []
        for d in dets:
            t = cfg.thresholds[d.class_name]
            if d.confidence >= t:
                # confident for this class: make sure the tracker treats it as "high"
                conf = max(d.confidence, self.tracker_config.high_threshold)
                out.append(Detection(d.class_name, d.class_id, conf, d.box))
            else:
                conf = min(d.confidence, self.tracker_config.high_threshold - 1e-3)
                out.append(Detection(d.class_name, d.class_id, conf, d.box))
        return out

    def finish(self, ts: float) -> list[Message]:
        """The stream stopped: end every track."""
        out: list[Message] = []
        if self._passages is not None:
            out += [self._passage_message(p) for p in self._passages.finish()]
        if self.tracker is None:
            return out
        for t in self.tracker.finish():
            out.extend(self._ended(t, ts))
        return out

    # Plate reading costs a detector pass and OCR: a few tries per vehicle, spaced out,
    # more when it comes closer, none once the fused read is sure (see ReadSchedule).
    PLATE_SCHEDULE = ReadSchedule()

    def _read_plate(self, t: Track, frame: U8, analysis_width: int, ts: float) -> None:
        assert self.plate_reader is not None
        pt = self._plates.get(t.id)
        if pt is None:
            pt = self._plates[t.id] = TrackPlate(PlateFusion(self.config.plate_countries))
        area = (t.box[2] - t.box[0]) * (t.box[3] - t.box[1])
        if not pt.due(area, ts, self.PLATE_SCHEDULE):
            return
        k = frame.shape[1] / analysis_width
        box = (t.box[0] * k, t.box[1] * k, t.box[2] * k, t.box[3] * k)
        reads = self.plate_reader.read(frame, box)
        pt.tried(area, ts, reads[0] if reads else None)
        if reads:
            self._plate_ts[t.id] = ts

    # A dedicated LPR camera: with plates in view but nothing moving, still look this often
    # (a car waiting at a barrier stays one passage; a plate gone is noticed).
    LPR_REFRESH_S = 1.0

    def _lpr_frame(
        self, passages: PlatePassages, image: U8, ts: float, full: U8 | None
    ) -> FrameOutput:
        """One frame of a dedicated LPR camera: plates on the whole (full-resolution) frame
        when something moves, no vehicle detection; a passage's fused read when it ends."""
        assert self.plate_reader is not None
        out = FrameOutput(boxes=[])
        still = self.config.motion_gating and not self.motion.detect(image).any
        if still and (not passages.open or ts - self._last_detect < self.LPR_REFRESH_S):
            return out
        frame = full if full is not None else image
        t0 = time.perf_counter()
        reads = self.plate_reader.read(frame)
        out.detect_ms = (time.perf_counter() - t0) * 1000
        out.detector_ran = True
        self._last_detect = ts
        if reads:  # the picture of the passage, kept with the read that ends up best
            view = encode_jpeg_array(image, max_width=960)
            for r in reads:
                self._lpr_views[r] = view
        h, w = frame.shape[:2]
        out.messages += [self._passage_message(p) for p in passages.update(reads, ts, (w, h))]
        return out

    def _passage_message(self, p: PassageResult) -> PlateResult:
        fused = p.plate
        return PlateResult(
            self.camera_id, p.passage_id, p.ts, fused.text, fused.normalised, fused.format,
            fused.country, fused.confidence, fused.reads, fused.agreeing,
            fused.best.crop_jpeg(), p.direction, self._lpr_views.get(fused.best, b""),
        )  # fmt: skip

    def _plate_result(self, t: Track) -> PlateResult | None:
        pt = self._plates.pop(t.id, None)
        fused = pt.fusion.result() if pt is not None else None
        if fused is None:
            return None
        return PlateResult(
            self.camera_id, t.id, self._plate_ts.pop(t.id, t.last_ts), fused.text,
            fused.normalised, fused.format, fused.country, fused.confidence, fused.reads,
            fused.agreeing, fused.best.crop_jpeg(), self.zones.last_crossing(t.id),
        )  # fmt: skip

    def _ended(self, t: Track, ts: float) -> list[Message]:
        w, h = self.size
        msgs: list[Message] = []
        plate = self._plate_result(t)
        if plate is not None:
            msgs.append(plate)
        msgs += [ZoneHit(self.camera_id, ev) for ev in self.zones.end(t.id, ts)]
        self._best.pop(t.id, None)
        msgs.append(
            TrackEnded(
                self.camera_id,
                t.id,
                t.class_name,
                t.first_ts,
                t.last_ts,
                t.max_confidence,
                t.stationary,
                [(pt, x / w, y / h) for pt, x, y in t.path],
            )  # fmt: skip
        )
        return msgs

    def _norm(self, box: Box) -> Box:
        w, h = self.size
        return (box[0] / w, box[1] / h, box[2] / w, box[3] / h)

    def _snapshot(self, image: U8, t: Track, others: list[Track], ts: float) -> Snapshot | None:
        """Keep the best picture of each track: large, confident, sharp, not occluded."""
        w, h = self.size
        x1, y1, x2, y2 = (int(max(0, v)) for v in t.box)
        x2, y2 = min(x2, w), min(y2, h)
        if x2 - x1 < 8 or y2 - y1 < 8:
            return None
        best = self._best.setdefault(t.id, _Best())
        if ts - best.sent_at < self.SNAPSHOT_EVERY_S:
            return None
        crop = image[y1:y2, x1:x2]
        grey = crop.astype(np.float32).mean(axis=2)
        area = (x2 - x1) * (y2 - y1) / (w * h)
        overlap = max(
            (_overlap(t.box, o.box) for o in others if o.id != t.id), default=0.0
        )  # share of this box covered by another
        edge = 0.7 if x1 <= 1 or y1 <= 1 or x2 >= w - 1 or y2 >= h - 1 else 1.0  # cut off
        score = (
            min(area, 0.25) ** 0.5
            * t.confidence
            * min(1.0, sharpness(grey) / 150.0 + 0.2)
            * (1.0 - overlap)
            * edge
        )
        if score <= best.score * self.SNAPSHOT_GAIN:
            return None
        best.score, best.sent_at = score, ts
        pad_x, pad_y = (x2 - x1) // 8, (y2 - y1) // 8
        wide = image[max(0, y1 - pad_y) : y2 + pad_y, max(0, x1 - pad_x) : x2 + pad_x]
        return Snapshot(
            self.camera_id, t.id, ts, self._norm(t.box), score,
            encode_jpeg_array(wide, 480), encode_jpeg_array(image, 960),
        )  # fmt: skip


def _overlap(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = max(1e-9, (a[2] - a[0]) * (a[3] - a[1]))
    return ix * iy / area


def _nms(dets: list[Detection], iou: float) -> list[Detection]:
    """Greedy per-class suppression of duplicates found in overlapping crops."""
    keep: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.confidence):
        same = [k for k in keep if k.class_name == d.class_name]
        if not same or iou_matrix([d.box], [k.box for k in same]).max() < iou:
            keep.append(d)
    return keep
