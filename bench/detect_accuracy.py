"""Person and vehicle detection: precision, recall and AP50 on real labelled images, and
speed per frame on one core.

Accuracy (IoU >= 0.5, greedy matching by confidence, AP with 101-point interpolation as
COCO/Ultralytics compute it) on:
  - coco128 (128 COCO train2017 images, YOLO labels): person; vehicles (bicycle, car,
    motorcycle, bus, truck matched class-agnostically: a truck found as a car counts); and
    each vehicle class on its own (strict class).
  - mot17-mini, the 1080p sequences (33 frames of 6 MOT17 street scenes): persons
    (MOT class 1). Classes 2, 7, 8 and 12 (person on vehicle, static person, distractor,
    reflection) are "ignore" regions: a detection on them is neither right nor wrong, as in
    the MOT17 detection protocol. A second row counts only persons at least 50 % visible
    (the others become ignore regions).

The detections come from ``citywatch detect --json --threshold LOW`` (as the issue asks;
``--direct`` runs the Detector in-process instead). AP uses every detection down to LOW;
precision and recall are given at the operating threshold (the detector's default unless
``--threshold``).

Speed: ``Detector.detect_frame`` on decoded frames (yuv420p, as the analytics pipeline gets
them), 1 inference thread, the process pinned to one core: 768x432 frames of
car-detection.mp4 and the 1080p mot17 frames. Split into prepare (scale + convert), infer
and decode (incl. NMS).

    .venv/bin/python -m bench.detect_accuracy [--model nanodet] [--direct]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import REPO, WindowMeter, emit, machine, summary_ms

DATA = Path(os.environ.get("CITYWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
COCO = DATA / "detection" / "coco128"
MOT = DATA / "detection" / "mot17-mini" / "train"
VIDEO_768 = DATA / "video" / "car-detection.mp4"
COCO_NAMES = {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle", 5: "bus", 7: "truck"}
VEHICLES = ("bicycle", "car", "motorcycle", "bus", "truck")
MOT_IGNORE = {2, 7, 8, 12}
LOW = 0.05
IOU = 0.5

Box = tuple[float, float, float, float]


@dataclass
class Sample:
    path: Path
    gt: list[tuple[str, Box]]
    ignore: list[tuple[str, Box]] = field(default_factory=list)


@dataclass
class Found:
    cls: str
    score: float
    box: Box


# data ------------------------------------------------------------------------------------
def image_size(path: Path) -> tuple[int, int]:
    import av

    with av.open(str(path)) as c:
        st = c.streams.video[0]
        return st.codec_context.width, st.codec_context.height


def load_coco128() -> list[Sample]:
    samples = []
    for img in sorted((COCO / "images").glob("*.jpg")):
        w, h = image_size(img)
        gt = []
        label = COCO / "labels" / (img.stem + ".txt")
        lines = label.read_text().split("\n") if label.exists() else []
        for line in lines:
            parts = line.split()
            if len(parts) != 5 or int(parts[0]) not in COCO_NAMES:
                continue
            cx, cy, bw, bh = (float(p) for p in parts[1:])
            box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
            gt.append((COCO_NAMES[int(parts[0])], box))
        samples.append(Sample(img, gt))
    return samples


def load_mot(min_visibility: float = 0.0, only_1080p: bool = True) -> list[Sample]:
    samples = []
    for seq in sorted(MOT.glob("MOT17-*")):
        info = (seq / "seqinfo.ini").read_text()
        if only_1080p and "imHeight=1080" not in info:
            continue
        rows: dict[int, list[list[float]]] = {}
        for line in (seq / "gt" / "gt.txt").read_text().splitlines():
            if line.strip():
                v = [float(x) for x in line.split(",")]
                rows.setdefault(int(v[0]), []).append(v)
        for img in sorted((seq / "img1").glob("*.jpg")):
            s = Sample(img, [])
            for v in rows.get(int(img.stem), []):
                _, _, x, y, w, h, flag, cls, vis = v[:9]
                box = (x, y, x + w, y + h)
                if int(cls) == 1 and flag > 0 and vis >= min_visibility:
                    s.gt.append(("person", box))
                elif int(cls) in MOT_IGNORE or int(cls) == 1:
                    s.ignore.append(("person", box))
            samples.append(s)
    return samples


# detection -------------------------------------------------------------------------------
def run_cli(paths: Sequence[Path], model: str, threshold: float) -> dict[Path, list[Found]]:
    """``citywatch detect --json`` over all images in one process."""
    cmd = [sys.executable, "-m", "citywatch.cli", "detect", "--json", "--model", model,
           "--threshold", str(threshold), *map(str, paths)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    if res.returncode != 0:
        sys.exit(f"citywatch detect failed ({res.returncode}): {res.stderr.strip()}")
    out: dict[Path, list[Found]] = {}
    for line in res.stdout.splitlines():
        item = json.loads(line)
        out[Path(item["source"])] = [
            Found(d["class"], d["confidence"], tuple(d["box"])) for d in item["detections"]
        ]
    return out


def run_direct(paths: Sequence[Path], detector: Any) -> dict[Path, list[Found]]:
    import av

    out = {}
    for p in paths:
        with av.open(str(p)) as c:
            frame = next(c.decode(video=0))
        out[p] = [Found(d.class_name, d.confidence, d.box) for d in detector.detect_frame(frame)]
    return out


# metrics ---------------------------------------------------------------------------------
def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def evaluate(
    samples: Sequence[Sample],
    found: dict[Path, list[Found]],
    classes: Iterable[str],
    op_threshold: float,
) -> dict[str, Any]:
    """Match detections of `classes` (as one group) to ground truth of `classes`."""
    group = set(classes)
    scored: list[tuple[float, bool]] = []  # (confidence, true positive) of counted dets
    n_gt = 0
    for s in samples:
        gt = np.array([b for c, b in s.gt if c in group], float).reshape(-1, 4)
        ign = np.array([b for c, b in s.ignore if c in group], float).reshape(-1, 4)
        dets = sorted((d for d in found.get(s.path, []) if d.cls in group), key=lambda d: -d.score)
        n_gt += len(gt)
        boxes = np.array([d.box for d in dets], float).reshape(-1, 4)
        ious, ign_ious = iou_matrix(boxes, gt), iou_matrix(boxes, ign)
        taken = np.zeros(len(gt), bool)
        for i, d in enumerate(dets):
            cand = np.where(~taken, ious[i], -1.0) if len(gt) else np.zeros(0)
            j = int(cand.argmax()) if len(cand) else -1
            if j >= 0 and cand[j] >= IOU:
                taken[j] = True
                scored.append((d.score, True))
            elif len(ign) and ign_ious[i].max() >= IOU:
                continue  # on an ignore region
            else:
                scored.append((d.score, False))
    scored.sort(key=lambda t: -t[0])
    tp = np.cumsum([t for _, t in scored]) if scored else np.zeros(0)
    fp = np.cumsum([not t for _, t in scored]) if scored else np.zeros(0)
    recall = tp / max(n_gt, 1)
    precision = tp / np.maximum(tp + fp, 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    ap = 0.0
    for r in np.linspace(0, 1, 101):
        k = int(np.searchsorted(recall, r, side="left"))
        ap += float(envelope[k]) if k < len(envelope) else 0.0
    ap /= 101
    at = [t for c, t in scored if c >= op_threshold]
    tp_op = sum(at)
    return {
        "gt": n_gt,
        "detections": len(at),
        "tp": tp_op,
        "precision": round(tp_op / len(at), 3) if at else None,
        "recall": round(tp_op / n_gt, 3) if n_gt else None,
        "ap50": round(ap, 3) if n_gt else None,
    }


# speed -----------------------------------------------------------------------------------
def decode_frames(path: Path, count: int, every: int = 1) -> list[Any]:
    import av

    frames = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % every == 0:
                frames.append(f)
            if len(frames) >= count:
                break
    return frames


def speed(detector: Any, frames: Sequence[Any], rounds: int) -> dict[str, Any]:
    for f in frames[:3]:
        detector.detect_frame(f)
    total, prep, infer, dec = [], [], [], []
    for _ in range(rounds):
        for f in frames:
            t0 = time.perf_counter()
            detector.detect_frame(f)
            total.append(time.perf_counter() - t0)
            t = detector.last_timing
            prep.append(t.prepare_ms / 1e3)
            infer.append(t.infer_ms / 1e3)
            dec.append(t.decode_ms / 1e3)
    return {
        "size": f"{frames[0].width}x{frames[0].height}",
        "total": summary_ms(total),
        "prepare": summary_ms(prep),
        "infer": summary_ms(infer),
        "decode": summary_ms(dec),
    }


# main ------------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="nanodet", help="built-in name or model spec path")
    p.add_argument("--threshold", type=float, default=None, help="operating threshold")
    p.add_argument("--direct", action="store_true", help="Detector in-process, not the CLI")
    p.add_argument("--rounds", type=int, default=3, help="speed: passes over the frames")
    p.add_argument("--cpu", type=int, default=0, help="speed: the core to pin to")
    p.add_argument("--no-speed", action="store_true")
    args = p.parse_args()
    if not COCO.is_dir() or not MOT.is_dir():
        sys.exit(f"shared data not found under {DATA} (set CITYWATCH_SHARED_DATA)")

    from citywatch.analytics.detector import DEFAULT_THRESHOLD, Detector, DetectorError
    from citywatch.analytics.models import load_spec

    op = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    spec = load_spec(args.model)
    try:
        detector = Detector(spec, threads=1, threshold=LOW)
    except DetectorError as exc:
        sys.exit(str(exc))
    result: dict[str, Any] = {
        "benchmark": "detect_accuracy",
        "machine": machine(),
        "model": {
            "name": spec.name,
            "path": str(spec.path),
            "sha256": spec.sha256,
            "layout": spec.layout,
            "input": f"{spec.width}x{spec.height}",
        },  # fmt: skip
        "operating_threshold": op,
        "low_threshold": LOW,
        "via": "Detector" if args.direct else "citywatch detect --json",
    }
    meter = WindowMeter()
    coco, mot, mot_vis = load_coco128(), load_mot(), load_mot(min_visibility=0.5)
    paths = [s.path for s in coco] + [s.path for s in mot]
    t0 = time.monotonic()
    found = run_direct(paths, detector) if args.direct else run_cli(paths, args.model, LOW)
    result["detect_wall_s"] = round(time.monotonic() - t0, 1)
    rows: list[tuple[str, str, dict[str, Any]]] = []
    rows.append(("coco128", "person", evaluate(coco, found, ["person"], op)))
    rows.append(("coco128", "vehicles", evaluate(coco, found, VEHICLES, op)))
    for c in VEHICLES:
        rows.append(("coco128", c, evaluate(coco, found, [c], op)))
    rows.append(("mot17 1080p", "person", evaluate(mot, found, ["person"], op)))
    rows.append(("mot17 1080p", "person vis>=0.5", evaluate(mot_vis, found, ["person"], op)))
    result["accuracy"] = [{"dataset": d, "class": c, **m} for d, c, m in rows]
    result["images"] = {"coco128": len(coco), "mot17_1080p": len(mot)}

    speeds = []
    if not args.no_speed:
        os.sched_setaffinity(0, {args.cpu})
        sets = [decode_frames(VIDEO_768, 30, every=10)] if VIDEO_768.exists() else []
        sets.append([f for s in mot for f in decode_frames(s.path, 1)])
        timed = Detector(spec, threads=1, threshold=op)  # decode cost at the operating point
        speeds = [speed(timed, frames, args.rounds) for frames in sets]
        result["speed_1core"] = speeds
    result["window"] = meter.stop().as_dict()

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    summary = [
        f"model {spec.name} ({spec.width}x{spec.height}, {spec.layout}); operating threshold "
        f"{op}; AP from confidence >= {LOW}; IoU {IOU}; via {result['via']}",
        f"{'dataset':<12} {'class':<16} {'GT':>5} {'det':>5} {'P':>6} {'R':>6} {'AP50':>6}",
    ]
    for d, c, m in rows:
        summary.append(
            f"{d:<12} {c:<16} {m['gt']:>5} {m['detections']:>5} {fmt(m['precision']):>6} "
            f"{fmt(m['recall']):>6} {fmt(m['ap50']):>6}"
        )
    for s in speeds:
        summary.append(
            f"speed {s['size']:>9}, 1 thread on 1 core: {s['total']['p50_ms']} ms p50 "
            f"({s['total']['mean_ms']} mean, {s['total']['p95_ms']} p95; prepare "
            f"{s['prepare']['p50_ms']}, infer {s['infer']['p50_ms']}, decode "
            f"{s['decode']['p50_ms']}), n={s['total']['n']}"
        )
    w = result["window"]
    summary.append(
        f"machine busy {w['machine_busy_share']:.0%} during the run, load {w['loadavg_end']}"
    )
    emit("detect_accuracy", result, summary)


if __name__ == "__main__":
    main()
