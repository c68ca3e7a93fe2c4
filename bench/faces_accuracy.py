"""Face verification accuracy and speed on LFW-a (../shared/data/faces/lfw-a), with the
detector and the threshold rule side by side.

1. Every image of the 1,800 pairs (3 folds x 300 same + 300 different people; 2,320
   images) goes through the library (``FaceEngine.detect`` then ``FaceEngine.faces``, each
   timed in CPU seconds of this process): the face nearest the image centre is the subject
   (LFW-a is aligned); where the detector finds none there, the median box of the faces it
   found is used instead (the usual LFW practice), and the miss is counted.
2. Accuracy, 10-fold protocol as published, here on 3 folds: for each fold the threshold
   that maximises accuracy on the other 2 folds is applied to it; mean and standard
   deviation. Beside it: the engine's default threshold (fixed) and dlib's own rule (L2
   distance of the raw descriptors < 0.6).
3. True-accept rate at 0.1 % false accepts: on the official pairs (900 impostor pairs, so
   0.1 % means none), and on all pairs of the 2,320 images (same name: genuine; different
   names: impostor), which resolves 0.1 % and 0.01 %.
4. Small faces (surveillance): the second image of each fold-1 pair scaled down so that its
   face is N px high (``--small``), detected with ``min_size`` = 0.8 N and compared to the
   first at full size: detection rate and accuracy at the default threshold.
5. Speed: detection per image (LFW 250x250; a 1920x1080 and a 640x480 photo at min_size
   40; a small person crop at min_size 24), embedding per face (landmarks, alignment,
   quality, descriptor), faces per second per core.
6. The CLI: ``citywatch faces compare A B --json`` on ``--cli-pairs`` pairs gives the same
   similarity (to 1e-5) and decision as the library.

    .venv/bin/python -m bench.faces_accuracy [--detectors hog,blazeface] [--small 32,48]
                                             [--cli-pairs 20] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.common import REPO, WindowMeter, emit, machine, percentile
from citywatch.analytics.faces import (
    DEFAULT_THRESHOLD,
    STRICT_THRESHOLD,
    FaceBox,
    FaceEngine,
    load_image,
    similarity,
)

DATA = Path(os.environ.get("CITYWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
LFW = DATA / "faces" / "lfw-a"
EXAMPLES = DATA / "faces" / "face_recognition_examples"
LFW_MIN_SIZE = 80  # LFW-a faces are about 100-130 px high in 250x250 images

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Pair:
    a: str  # image key "Name/Name_0001"
    b: str
    same: bool
    fold: int


@dataclass
class Result:
    embedding: npt.NDArray[np.float32]
    norm: float
    detected: bool
    detect_cpu_s: float
    embed_cpu_s: float
    n_faces: int
    quality: float
    height: float  # box height of the face used


def read_pairs(path: Path) -> list[Pair]:
    lines = path.read_text().splitlines()
    folds, per = (int(v) for v in lines[0].split())
    pairs: list[Pair] = []
    for n, line in enumerate(lines[1:]):
        p = line.split()
        fold = n // (2 * per)
        if len(p) == 3:
            pairs.append(
                Pair(f"{p[0]}/{p[0]}_{int(p[1]):04d}", f"{p[0]}/{p[0]}_{int(p[2]):04d}", True, fold)
            )
        elif len(p) == 4:
            pairs.append(
                Pair(
                    f"{p[0]}/{p[0]}_{int(p[1]):04d}", f"{p[2]}/{p[2]}_{int(p[3]):04d}", False, fold
                )
            )
    if len(pairs) != folds * 2 * per:
        raise SystemExit(f"{path}: expected {folds * 2 * per} pairs, read {len(pairs)}")
    return pairs


def image_path(key: str) -> Path:
    return LFW / "lfw" / f"{key}.jpg"


def subject(boxes: list[FaceBox], shape: tuple[int, ...]) -> FaceBox | None:
    """The face nearest the centre of an aligned LFW image, if its centre is within 20 % of
    the image size of it."""
    h, w = shape[:2]
    best, dist = None, 0.2 * max(h, w)
    for b in boxes:
        d = float(np.hypot((b.x1 + b.x2) / 2 - w / 2, (b.y1 + b.y2) / 2 - h / 2))
        if d <= dist:
            best, dist = b, d
    return best


def run_images(engine: FaceEngine, keys: list[str], label: str) -> dict[str, Result]:
    """Detect + embed every image; returns per-image results (misses use a fallback box)."""
    found: dict[str, tuple[Image, FaceBox | None, float, int]] = {}
    t_start = time.monotonic()
    for n, key in enumerate(keys):
        image = load_image(image_path(key))
        c0 = time.process_time()
        boxes = engine.detect(image, LFW_MIN_SIZE)
        det = time.process_time() - c0
        found[key] = (image, subject(boxes, image.shape), det, len(boxes))
        if n % 500 == 499:
            print(
                f"  {label}: detected {n + 1}/{len(keys)} ({time.monotonic() - t_start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    hits = [b for _, b, _, _ in found.values() if b is not None]
    med = np.median([[b.x1, b.y1, b.x2, b.y2] for b in hits], axis=0) if hits else None
    fallback = (
        FaceBox(float(med[0]), float(med[1]), float(med[2]), float(med[3]), score=0.0)
        if med is not None
        else None
    )
    results: dict[str, Result] = {}
    for n, (key, (image, box, det, count)) in enumerate(found.items()):
        use = box or fallback
        if use is None:
            raise SystemExit(f"{label}: no face found in any image")
        c0 = time.process_time()
        face = engine.faces(image, [use])[0]
        emb = time.process_time() - c0
        results[key] = Result(
            face.embedding,
            face.descriptor_norm,
            box is not None,
            det,
            emb,
            count,
            face.quality.score,
            face.box.height,
        )
        if n % 500 == 499:
            print(
                f"  {label}: embedded {n + 1}/{len(keys)} ({time.monotonic() - t_start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return results


# metrics -----------------------------------------------------------------------------------
def best_threshold(sims: npt.NDArray[np.float64], same: npt.NDArray[np.bool_]) -> float:
    """The threshold (midpoint between neighbouring scores) with the highest accuracy."""
    order = np.argsort(sims)
    s, y = sims[order], same[order]
    # accept sims >= t: correct = genuine at/above + impostors below
    genuine_above = np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    impostors_below = np.concatenate([[0], np.cumsum(~y)])
    correct = genuine_above + impostors_below
    k = int(np.argmax(correct))
    if k == 0:
        return float(s[0]) - 1e-6
    if k == len(s):
        return float(s[-1]) + 1e-6
    return float((s[k - 1] + s[k]) / 2)


def accuracy(sims: npt.NDArray[np.float64], same: npt.NDArray[np.bool_], thr: float) -> float:
    return float(((sims >= thr) == same).mean())


def tar_at_far(
    genuine: npt.NDArray[np.float64], impostor: npt.NDArray[np.float64], far: float
) -> tuple[float, float, int]:
    """(TAR, threshold, impostors accepted) at the strictest threshold that accepts at most
    ``far`` of the impostors."""
    allowed = int(np.floor(far * impostor.size))
    imp = np.sort(impostor)[::-1]
    thr = float(imp[allowed]) + 1e-9 if allowed < imp.size else -1.0
    return float((genuine >= thr).mean()), thr, int((impostor >= thr).sum())


def verification(pairs: list[Pair], res: dict[str, Result], default: float) -> dict[str, Any]:
    sims = np.array([similarity(res[p.a].embedding, res[p.b].embedding) for p in pairs])
    l2 = np.array(
        [
            float(
                np.linalg.norm(
                    res[p.a].embedding * res[p.a].norm - res[p.b].embedding * res[p.b].norm
                )
            )
            for p in pairs
        ]
    )
    same = np.array([p.same for p in pairs])
    fold = np.array([p.fold for p in pairs])
    folds = sorted(set(fold.tolist()))
    per_fold = []
    for k in folds:
        train, test = fold != k, fold == k
        thr = best_threshold(sims[train], same[train])
        per_fold.append(
            {
                "fold": k + 1,
                "threshold": round(thr, 4),
                "accuracy": accuracy(sims[test], same[test], thr),
                "accuracy_default_threshold": accuracy(sims[test], same[test], default),
                "accuracy_dlib_l2_0.6": float(((l2[test] < 0.6) == same[test]).mean()),
            }
        )

    def mean_sd(key: str) -> dict[str, float]:
        v = [f[key] for f in per_fold]
        return {
            "mean": round(statistics.fmean(v), 4),
            "sd": round(statistics.stdev(v), 4) if len(v) > 1 else 0.0,
        }

    both_detected = np.array([res[p.a].detected and res[p.b].detected for p in pairs])
    tar, thr, fa = tar_at_far(sims[same], sims[~same], 0.001)
    return {
        "pairs": len(pairs),
        "pairs_with_a_missed_face": int((~both_detected).sum()),
        "per_fold": per_fold,
        "accuracy_3fold": mean_sd("accuracy"),
        "accuracy_default_threshold": mean_sd("accuracy_default_threshold"),
        "accuracy_dlib_l2_0.6": mean_sd("accuracy_dlib_l2_0.6"),
        "fold_thresholds": [f["threshold"] for f in per_fold],
        "accuracy_detected_pairs_only_default_threshold": accuracy(
            sims[both_detected], same[both_detected], default
        ),
        "tar_at_far_0.1pct_official": {
            "tar": tar,
            "threshold": round(thr, 4),
            "impostors": int((~same).sum()),
            "accepted": fa,
        },
        "genuine_similarity_p5_p50": [
            round(float(np.percentile(sims[same], q)), 4) for q in (5, 50)
        ],
        "impostor_similarity_p50_p95_max": [
            round(float(np.percentile(sims[~same], q)), 4) for q in (50, 95, 100)
        ],
    }


def all_pairs_tar(res: dict[str, Result]) -> dict[str, Any]:
    keys = sorted(res)
    names = np.array([k.split("/")[0] for k in keys])
    emb = np.stack([res[k].embedding for k in keys]).astype(np.float32)
    sims = emb @ emb.T
    iu = np.triu_indices(len(keys), 1)
    s = sims[iu]
    same = names[iu[0]] == names[iu[1]]
    out: dict[str, Any] = {
        "images": len(keys),
        "genuine": int(same.sum()),
        "impostor": int((~same).sum()),
    }
    for far in (0.001, 0.0001):
        tar, thr, fa = tar_at_far(s[same].astype(np.float64), s[~same].astype(np.float64), far)
        out[f"far_{far}"] = {"tar": round(tar, 4), "threshold": round(thr, 4), "accepted": fa}
    for name, thr in (
        ("default_threshold", DEFAULT_THRESHOLD),
        ("strict_threshold", STRICT_THRESHOLD),
    ):
        out[name] = {
            "threshold": thr,
            "tar": round(float((s[same] >= thr).mean()), 4),
            "far": round(float((s[~same] >= thr).mean()), 6),
        }
    return out


# small faces -------------------------------------------------------------------------------
def small_faces(
    engine: FaceEngine, pairs: list[Pair], res: dict[str, Result], sizes: list[int]
) -> dict[str, Any]:
    import dlib

    fold1 = [p for p in pairs if p.fold == 0]
    out: dict[str, Any] = {}
    for size in sizes:
        sims, same, detected, det_cpu, emb_cpu = [], [], 0, [], []
        for p in fold1:
            image = load_image(image_path(p.b))
            scale = size / res[p.b].height
            rows, cols = round(image.shape[0] * scale), round(image.shape[1] * scale)
            small = np.ascontiguousarray(
                dlib.resize_image(np.ascontiguousarray(image[:, :, ::-1]), rows, cols)[:, :, ::-1]
            )
            c0 = time.process_time()
            boxes = engine.detect(small, max(8, int(0.8 * size)))
            c1 = time.process_time()
            box = subject(boxes, small.shape)
            if box is None:
                continue
            face = engine.faces(small, [box])[0]
            emb_cpu.append(time.process_time() - c1)
            det_cpu.append(c1 - c0)
            detected += 1
            sims.append(similarity(res[p.a].embedding, face.embedding))
            same.append(p.same)
        s, y = np.array(sims), np.array(same)
        out[f"{size}px"] = {
            "pairs": len(fold1),
            "detected": detected,
            "accuracy_default_threshold": round(accuracy(s, y, DEFAULT_THRESHOLD), 4)
            if len(s)
            else None,
            "accuracy_best_threshold": round(accuracy(s, y, best_threshold(s, y)), 4)
            if len(s)
            else None,
            "tar_default": round(float((s[y] >= DEFAULT_THRESHOLD).mean()), 4) if y.any() else None,
            "far_default": round(float((s[~y] >= DEFAULT_THRESHOLD).mean()), 4)
            if (~y).any()
            else None,
            "detect_ms_p50": round(1000 * float(np.median(det_cpu)), 1) if det_cpu else None,
        }
    return out


# speed -------------------------------------------------------------------------------------
def speed(engine: FaceEngine, res: dict[str, Result]) -> dict[str, Any]:
    det = [r.detect_cpu_s for r in res.values()]
    emb = [r.embed_cpu_s for r in res.values()]
    out: dict[str, Any] = {
        "lfw_250x250_detect_ms_p50": round(1000 * percentile(det, 50), 1),
        "lfw_250x250_detect_ms_p95": round(1000 * percentile(det, 95), 1),
        "embed_ms_p50": round(1000 * percentile(emb, 50), 1),
        "embed_ms_p95": round(1000 * percentile(emb, 95), 1),
        "faces_per_s_per_core_embed_only": round(1 / statistics.fmean(emb), 2),
        "faces_per_s_per_core_lfw_detect_and_embed": round(
            1 / (statistics.fmean(det) + statistics.fmean(emb)), 2
        ),
    }
    frames = {
        "1920x1080 photo, min_size 40": (EXAMPLES / "obama-1080p.jpg", 40, None),
        "854x480 photo, min_size 40": (EXAMPLES / "obama-480p.jpg", 40, None),
        "person crop 110x200 (face about 40 px), min_size 24": (
            EXAMPLES / "obama-720p.jpg",
            24,
            40,
        ),
    }
    for label, (path, min_size, face_px) in frames.items():
        if not path.is_file():
            continue
        image = load_image(path)
        if face_px is not None:
            image = person_crop(engine, image, face_px)
        times, counts = [], []
        for _ in range(5):
            c0 = time.process_time()
            counts.append(len(engine.detect(image, min_size)))
            times.append(time.process_time() - c0)
        out[label] = {
            "size": f"{image.shape[1]}x{image.shape[0]}",
            "detect_ms_p50": round(1000 * statistics.median(times), 1),
            "faces": counts[0],
        }
    return out


def person_crop(engine: FaceEngine, image: Image, face_px: int) -> Image:
    """An upper-body crop around the biggest face, scaled so the face is ``face_px`` high."""
    import dlib

    box = max(engine.detect(image, 80), key=lambda b: b.height)
    cx, h = (box.x1 + box.x2) / 2, box.height
    x1, x2 = int(max(0, cx - 1.4 * h)), int(min(image.shape[1], cx + 1.4 * h))
    y1, y2 = int(max(0, box.y1 - 0.6 * h)), int(min(image.shape[0], box.y1 + 4.5 * h))
    crop = np.ascontiguousarray(image[y1:y2, x1:x2, ::-1])
    s = face_px / h
    small = dlib.resize_image(crop, round(crop.shape[0] * s), round(crop.shape[1] * s))
    out: Image = np.ascontiguousarray(small[:, :, ::-1])
    return out


# CLI ---------------------------------------------------------------------------------------
def cli_check(pairs: list[Pair], n: int) -> dict[str, Any]:
    if n <= 0:
        return {}
    pick = pairs[:: max(1, len(pairs) // n)][:n]
    engine = FaceEngine(min_size=LFW_MIN_SIZE)
    exe = REPO / ".venv" / "bin" / "citywatch"
    cmd0 = [str(exe)] if exe.exists() else [sys.executable, "-m", "citywatch.cli"]
    agree = same_decision = compared = 0
    worst = 0.0
    wall = []
    for p in pick:
        a, b = image_path(p.a), image_path(p.b)
        t0 = time.monotonic()
        run = subprocess.run(
            [*cmd0, "faces", "compare", str(a), str(b), "--json", "--min-size", str(LFW_MIN_SIZE)],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        wall.append(time.monotonic() - t0)
        if run.returncode not in (0, 1):
            raise SystemExit(f"citywatch faces compare failed: {run.stderr}")
        out = json.loads(run.stdout)
        fa, fb = engine.faces(load_image(a)), engine.faces(load_image(b))
        lib = max((similarity(x.embedding, y.embedding) for x in fa for y in fb), default=None)
        cli = out["best"]["similarity"] if out["best"] else None
        if lib is None or cli is None:
            agree += int(lib is None and cli is None)
            continue
        compared += 1
        diff = abs(lib - cli)
        worst = max(worst, diff)
        agree += int(diff < 1e-5)
        same_decision += int((lib >= engine.threshold) == out["same_person"])
    return {
        "pairs": len(pick),
        "compared": compared,
        "similarity_agrees_1e-5": agree,
        "same_decision": same_decision,
        "max_abs_diff": worst,
        "cli_wall_s_p50": round(statistics.median(wall), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--detectors", default="hog,blazeface")
    ap.add_argument("--small", default="32,48", help="face heights for the small-face test")
    ap.add_argument("--cli-pairs", type=int, default=20)
    ap.add_argument("--limit", type=int, default=0, help="only the first N pairs of each fold")
    args = ap.parse_args()
    if not (LFW / "pairs.txt").is_file():
        raise SystemExit(f"LFW-a not found at {LFW} (set CITYWATCH_SHARED_DATA)")
    pairs = read_pairs(LFW / "pairs.txt")
    if args.limit:
        count: dict[int, int] = defaultdict(int)
        kept = []
        for p in pairs:
            key = p.fold * 2 + int(p.same)
            if count[key] < args.limit // 2:
                kept.append(p)
                count[key] += 1
        pairs = kept
    keys = sorted({k for p in pairs for k in (p.a, p.b)})
    result: dict[str, Any] = {
        "machine": machine(),
        "images": len(keys),
        "pairs": len(pairs),
        "default_threshold": DEFAULT_THRESHOLD,
        "detectors": {},
    }
    summary = [
        f"LFW-a: {len(pairs)} pairs, {len(keys)} images; machine load "
        f"{result['machine']['loadavg']}"
    ]
    sizes = [int(s) for s in args.small.split(",") if s]
    for name in args.detectors.split(","):
        engine = FaceEngine(detector=name)
        meter = WindowMeter()
        c0 = time.process_time()
        res = run_images(engine, keys, name)
        window = meter.stop().as_dict(time.process_time() - c0)
        entry: dict[str, Any] = {
            "detected_subject": sum(r.detected for r in res.values()),
            "images_with_extra_faces": sum(r.n_faces > 1 for r in res.values()),
            "verification": verification(pairs, res, DEFAULT_THRESHOLD),
            "all_pairs": all_pairs_tar(res),
            "speed": speed(engine, res),
            "window": window,
        }
        if sizes:
            entry["small_faces"] = small_faces(engine, pairs, res, sizes)
        result["detectors"][name] = entry
        v = entry["verification"]
        summary.append(
            f"{name}: subject found in {entry['detected_subject']}/{len(keys)}; accuracy "
            f"{v['accuracy_3fold']['mean']:.4f} +- {v['accuracy_3fold']['sd']:.4f} (fold "
            f"thresholds {v['fold_thresholds']}), default {DEFAULT_THRESHOLD}: "
            f"{v['accuracy_default_threshold']['mean']:.4f}, dlib L2<0.6: "
            f"{v['accuracy_dlib_l2_0.6']['mean']:.4f}; TAR@FAR0.1% official "
            f"{v['tar_at_far_0.1pct_official']['tar']:.4f}, all pairs "
            f"{entry['all_pairs']['far_0.001']['tar']:.4f} (1e-4: "
            f"{entry['all_pairs']['far_0.0001']['tar']:.4f}); detect p50 "
            f"{entry['speed']['lfw_250x250_detect_ms_p50']} ms, embed p50 "
            f"{entry['speed']['embed_ms_p50']} ms"
        )
        if sizes:
            summary.append(f"  small faces: {json.dumps(entry['small_faces'])}")
        summary.append(f"  speed: {json.dumps(entry['speed'])}")
        print("\n".join(summary[-3:]), file=sys.stderr, flush=True)
        del engine
    result["cli"] = cli_check(pairs, args.cli_pairs)
    summary.append(f"CLI vs library: {json.dumps(result['cli'])}")
    emit("faces_accuracy", result, summary)


if __name__ == "__main__":
    main()
