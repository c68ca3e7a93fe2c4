"""Licence-plate recognition accuracy and speed on real labelled images, with Tesseract as the
baseline in the same run, and reads per vehicle track on a video (single frame vs fusion).

1. openalpr-us (222 US car photos, one labelled plate each): end to end (``PlateReader.read``
   on the whole photo). A plate counts as found when a reported box overlaps the label with
   IoU >= 0.3, read exactly when that box's read equals the label, and "<= 1 wrong" at edit
   distance <= 1. Plates are compared as labelled ("exact") and after mapping O->0 and I->1
   on both sides ("normalised"; a few labels use O for 0). Baselines on the same crops:
   Tesseract (Debian tesseract-ocr, --psm 7, A-Z0-9 whitelist) on our detector's crops (end
   to end) and, OCR only, rapidocr vs Tesseract on the labelled boxes.
2. uc3m-lp (395 Spanish photos, YOLO boxes; 491 plate crops): detection recall/precision
   at IoU 0.5, and OCR on the visible characters only (2 of the 7 characters of every plate
   are anonymised in the dataset: a read is right when it matches the label with each
   anonymised position taken as any one character or none). End to end (our box matched to
   a label) and OCR only on the dataset's crops (rapidocr vs Tesseract).
3. car-detection.mp4: NanoDet vehicles + the CityWatch tracker, plates read inside each
   vehicle box every ``--every`` frames; per track: reads on a single frame (the frame where
   the vehicle box is largest, what a one-shot reader does) vs the fused read over all
   frames. The clip has no plate labels: counts only.

    .venv/bin/python -m bench.plates_accuracy [--limit N] [--no-video] [--no-tesseract]
    .venv/bin/python -m bench.plates_accuracy --cli    # openalpr via `citywatch plates read --json`
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.common import REPO
from citywatch.analytics.plates import PlateRead, PlateReader, fuse, load_image
from citywatch.analytics.plates.reader import clean_ocr_text

DATA = Path(os.environ.get("CITYWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
OPENALPR = DATA / "plates" / "openalpr-us"
UC3M = DATA / "plates" / "uc3m-lp"
VIDEO = DATA / "video" / "car-detection.mp4"

Box = tuple[float, float, float, float]
Image = npt.NDArray[np.uint8]


# helpers -----------------------------------------------------------------------------------
def iou(a: Box, b: Box) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def o0(text: str) -> str:
    return text.upper().replace("O", "0").replace("I", "1")


def pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.1f} %)" if d else "0/0"


def crop(image: Image, box: Box, mx: float = 0.04, my: float = 0.08) -> Image:
    x1, y1, x2, y2 = box
    ax, ay = (x2 - x1) * mx, (y2 - y1) * my
    h, w = image.shape[:2]
    a, b = max(0, int(x1 - ax)), max(0, int(y1 - ay))
    c, d = min(w, int(x2 + ax + 1)), min(h, int(y2 + ay + 1))
    return np.ascontiguousarray(image[b:d, a:c])


class Tesseract:
    """The baseline: Debian's tesseract on a crop (--psm 7, one line, A-Z0-9 only)."""

    def __init__(self) -> None:
        self.exe = shutil.which("tesseract")

    def recognise(self, crop_bgr: Image) -> tuple[str, float]:
        if self.exe is None or crop_bgr.shape[0] < 2 or crop_bgr.shape[1] < 2:
            return "", 0.0
        grey = crop_bgr.mean(axis=2).astype(np.uint8)
        h, w = grey.shape
        if h < 60:  # tesseract wants text about 30 px high
            f = max(1, round(60 / h))
            grey = np.repeat(np.repeat(grey, f, axis=0), f, axis=1)
            h, w = grey.shape
        pgm = f"P5 {w} {h} 255\n".encode() + grey.tobytes()
        out = subprocess.run(
            [self.exe, "stdin", "stdout", "--psm", "7", "-c",
             "tessedit_char_whitelist=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"],
            input=pgm, capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        return out.stdout.decode(errors="replace").strip(), 1.0


@dataclass
class Tally:
    n: int = 0
    found: int = 0
    exact: int = 0
    one_off: int = 0
    exact_n: int = 0
    one_off_n: int = 0

    def add(self, truth: str, read: str | None, found: bool) -> None:
        self.n += 1
        self.found += found
        if read is None:
            return
        self.exact += read == truth
        self.one_off += edit_distance(read, truth) <= 1
        self.exact_n += o0(read) == o0(truth)
        self.one_off_n += edit_distance(o0(read), o0(truth)) <= 1

    def rows(self, label: str) -> list[str]:
        return [
            f"  {label}: found {pct(self.found, self.n)}; exact {pct(self.exact, self.n)}, "
            f"<=1 wrong {pct(self.one_off, self.n)}; normalised (O->0, I->1) exact "
            f"{pct(self.exact_n, self.n)}, <=1 wrong {pct(self.one_off_n, self.n)}"
        ]


def ms_stats(values: list[float]) -> str:
    if not values:
        return "-"
    a = np.asarray(values)
    return (
        f"mean {a.mean():.0f} ms, median {np.median(a):.0f} ms, p95 {np.percentile(a, 95):.0f} ms"
    )


# 1. openalpr-us ----------------------------------------------------------------------------
def openalpr_labels(limit: int | None) -> list[tuple[Path, Box, str]]:
    items = []
    for txt in sorted(OPENALPR.glob("*.txt")):
        parts = txt.read_text().split()
        if len(parts) != 6:
            continue
        name, x, y, w, h, plate = parts
        bx, by, bw, bh = (float(v) for v in (x, y, w, h))
        items.append((OPENALPR / name, (bx, by, bx + bw, by + bh), plate.upper()))
    return items[:limit] if limit else items


def cli_reads(paths: list[Path]) -> dict[str, tuple[list[dict[str, Any]], float]]:
    """`citywatch plates read --json` on the images: per path, the plates and its ms."""
    exe = Path(sys.executable).parent / "citywatch"
    out: dict[str, tuple[list[dict[str, Any]], float]] = {}
    chunk = 50
    for i in range(0, len(paths), chunk):
        proc = subprocess.run(
            [str(exe), "plates", "read", "--json", "--country", "US",
             *[str(p) for p in paths[i : i + chunk]]],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        for line in proc.stdout.splitlines():
            item = json.loads(line)
            out[item["source"]] = (item["plates"], float(item["ms"]))
    return out


def bench_openalpr(
    reader: PlateReader, tess: Tesseract | None, limit: int | None, use_cli: bool
) -> dict[str, Any]:
    items = openalpr_labels(limit)
    ours, tess_e2e, ocr_ours, ocr_tess = Tally(), Tally(), Tally(), Tally()
    times: list[float] = []
    ocr_ms: list[float] = []
    tess_ms: list[float] = []
    cli = cli_reads([p for p, _, _ in items]) if use_cli else {}
    misses: list[str] = []
    for path, gt_box, plate in items:
        image = load_image(path)
        if use_cli:
            plates, ms = cli[str(path)]
            found_boxes = [(tuple(p["box"]), p["normalised"]) for p in plates]
        else:
            t0 = time.perf_counter()
            reads = reader.read(image)
            ms = (time.perf_counter() - t0) * 1e3
            found_boxes = [(r.box, r.normalised) for r in reads]
        times.append(ms)
        hits = [(b, t) for b, t in found_boxes if iou(b, gt_box) >= 0.3]  # type: ignore[arg-type]
        best = hits[0][1] if hits else None
        if hits:
            exact = [t for _, t in hits if t == plate]
            best = exact[0] if exact else best
        ours.add(plate, best, bool(hits))
        if best != plate:
            misses.append(f"{path.name}: {plate} -> {best}")
        gt_crop = crop(image, gt_box)
        t0 = time.perf_counter()
        r = reader.read_crop(gt_crop)
        ocr_ms.append((time.perf_counter() - t0) * 1e3)
        ocr_ours.add(plate, r.normalised if r else "", True)
        if tess is not None:
            # the same detected crops, read by Tesseract
            det_boxes = [b for b, _ in found_boxes if iou(b, gt_box) >= 0.3]  # type: ignore[arg-type]
            if det_boxes:
                txt, _ = tess.recognise(crop(image, det_boxes[0]))  # type: ignore[arg-type]
                tess_e2e.add(plate, clean_ocr_text(txt), True)
            else:
                tess_e2e.add(plate, None, False)
            t0 = time.perf_counter()
            txt, _ = tess.recognise(gt_crop)
            tess_ms.append((time.perf_counter() - t0) * 1e3)
            ocr_tess.add(plate, clean_ocr_text(txt), True)
    print(
        f"\n== openalpr-us: {len(items)} photos, one labelled plate each "
        f"({'citywatch plates read --json' if use_cli else 'PlateReader.read'})"
    )
    for line in ours.rows("platedet + rapidocr (ours), end to end"):
        print(line)
    print(f"    time per image (whole photo, 1 thread): {ms_stats(times)}")
    if tess is not None:
        for line in tess_e2e.rows("platedet + Tesseract (baseline), end to end"):
            print(line)
    for line in ocr_ours.rows("OCR only on labelled boxes, rapidocr"):
        print(line)
    print(f"    rapidocr per crop: {ms_stats(ocr_ms)}")
    if tess is not None:
        for line in ocr_tess.rows("OCR only on labelled boxes, Tesseract"):
            print(line)
        print(f"    tesseract per crop: {ms_stats(tess_ms)}")
    print("  misses (ours, end to end): " + "; ".join(misses[:40]))
    return {
        "ours": vars(ours),
        "tesseract_e2e": vars(tess_e2e),
        "ocr_rapidocr": vars(ocr_ours),
        "ocr_tesseract": vars(ocr_tess),
        "ms": times,
    }


# 2. uc3m-lp --------------------------------------------------------------------------------
def masked_regex(masked: str) -> re.Pattern[str]:
    return re.compile("".join("[A-Z0-9]?" if c == "-" else re.escape(c) for c in masked) + "$")


def visible_match(read: str, masked: str) -> bool:
    return bool(masked_regex(masked).match(read))


def visible_errors(read: str, masked: str) -> int:
    """Edit distance between the read and the visible characters, with the anonymised
    positions dropped from both when the lengths agree."""
    if len(read) == len(masked):
        read = "".join(r for r, m in zip(read, masked, strict=True) if m != "-")
    return edit_distance(read, masked.replace("-", ""))


def bench_uc3m(reader: PlateReader, tess: Tesseract | None, limit: int | None) -> dict[str, Any]:
    images = sorted((UC3M / "LP" / "images" / "val").glob("*.jpg"))
    if limit:
        images = images[:limit]
    rows = list(csv.DictReader((UC3M / "ocr_gt.csv").open()))
    masks_by_image: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        masks_by_image[Path(row["full_image"]).name].append(
            row["plate_text_masked(- = anonymised char)"]
        )
    tp = fp = n_gt = 0
    e2e_right = e2e_one = e2e_n = 0
    times: list[float] = []
    for path in images:
        image = load_image(path)
        h, w = image.shape[:2]
        gts: list[Box] = []
        label = UC3M / "LP" / "labels" / "val" / (path.stem + ".txt")
        for line in label.read_text().splitlines() if label.exists() else []:
            _, cx, cy, bw, bh = (float(v) for v in line.split())
            gts.append(((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
        t0 = time.perf_counter()
        found = reader.detector.detect(image)
        reads = reader.read(image)
        times.append((time.perf_counter() - t0) * 1e3)
        n_gt += len(gts)
        used: set[int] = set()
        for box, _ in found:
            best, best_i = 0.0, -1
            for i, g in enumerate(gts):
                if i not in used and iou(box, g) > best:
                    best, best_i = iou(box, g), i
            if best >= 0.5:
                tp += 1
                used.add(best_i)
            else:
                fp += 1
        # OCR end to end: only images with one plate, so the crop's label is unambiguous
        masks = masks_by_image.get(path.name, [])
        if len(gts) == 1 and len(masks) == 1:
            e2e_n += 1
            matched = [r for r in reads if iou(r.box, gts[0]) >= 0.3]
            if matched:
                e2e_right += any(visible_match(r.normalised, masks[0]) for r in matched)
                e2e_one += any(visible_errors(r.normalised, masks[0]) <= 1 for r in matched)
    ocr_ours = ocr_tess = ocr_ours1 = ocr_tess1 = n_crops = 0
    for row in rows[: (limit * 2 if limit else None)]:
        masked = row["plate_text_masked(- = anonymised char)"]
        path = UC3M / "OCR" / "images" / "val" / Path(row["plate_crop"]).name
        image = load_image(path)
        n_crops += 1
        r = reader.read_crop(image)
        text = r.normalised if r else ""
        ocr_ours += visible_match(text, masked)
        ocr_ours1 += visible_errors(text, masked) <= 1
        if tess is not None:
            txt = clean_ocr_text(tess.recognise(image)[0])
            ocr_tess += visible_match(txt, masked)
            ocr_tess1 += visible_errors(txt, masked) <= 1
    print(f"\n== uc3m-lp validation: {len(images)} photos, {n_gt} labelled plates")
    print(f"  detection (platedet, IoU 0.5): recall {pct(tp, n_gt)}, precision {pct(tp, tp + fp)}")
    print(
        f"  end to end, photos with one plate: visible characters all right "
        f"{pct(e2e_right, e2e_n)}, <=1 wrong {pct(e2e_one, e2e_n)}"
    )
    print(f"    time per image (detector + read, 1 thread): {ms_stats(times)}")
    print(
        f"  OCR only on the {n_crops} dataset crops: rapidocr all visible right "
        f"{pct(ocr_ours, n_crops)}, <=1 wrong {pct(ocr_ours1, n_crops)}"
    )
    if tess is not None:
        print(
            f"  OCR only on the {n_crops} dataset crops: Tesseract all visible right "
            f"{pct(ocr_tess, n_crops)}, <=1 wrong {pct(ocr_tess1, n_crops)}"
        )
    return {
        "tp": tp,
        "fp": fp,
        "gt": n_gt,
        "e2e": [e2e_right, e2e_one, e2e_n],
        "ocr": [ocr_ours, ocr_ours1, ocr_tess, ocr_tess1, n_crops],
    }


# 3. video tracks ---------------------------------------------------------------------------
def bench_video(reader: PlateReader, every: int, max_frames: int | None) -> dict[str, Any]:
    import av

    from citywatch.analytics.detector import load_detector
    from citywatch.analytics.tracker import Tracker

    detector = load_detector("nanodet")
    tracker: Tracker | None = None
    per_track: dict[int, list[tuple[float, PlateRead | None]]] = defaultdict(list)
    frames = 0
    t_plates: list[float] = []
    with av.open(str(VIDEO)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        for index, frame in enumerate(container.decode(stream)):
            if max_frames and index >= max_frames:
                break
            if index % every:
                continue
            frames += 1
            image = frame.to_ndarray(format="bgr24")
            if tracker is None:
                tracker = Tracker(diagonal=float(np.hypot(*image.shape[:2])))
            dets = [d for d in detector.detect(image) if d.class_name != "person"]
            update = tracker.update(dets, index / fps)
            for track in update.active:
                x1, y1, x2, y2 = track.box
                t0 = time.perf_counter()
                reads = reader.read(image, vehicle_box=track.box)
                t_plates.append((time.perf_counter() - t0) * 1e3)
                per_track[track.id].append(((x2 - x1) * (y2 - y1), reads[0] if reads else None))
    tracks = len(per_track)
    with_plate = sum(any(r is not None for _, r in v) for v in per_track.values())
    single = fused = fused_formatted = single_formatted = 0
    examples = []
    for tid, seen in per_track.items():
        _, largest = max(seen, key=lambda s: s[0])
        if largest is not None:
            single += 1
            single_formatted += largest.format != "unformatted"
        reads = [r for _, r in seen if r is not None]
        result = fuse(reads) if reads else None
        if result is not None:
            fused += 1
            fused_formatted += result.format != "unformatted"
            examples.append(
                f"track {tid}: {result.text} ({result.format}, conf "
                f"{result.confidence:.2f}, {result.agreeing}/{result.reads} frames agree)"
            )
    print(f"\n== {VIDEO.name}: {frames} frames analysed (every {every}), {tracks} vehicle tracks")
    print(f"  tracks with a plate box in any frame: {pct(with_plate, tracks)}")
    print(
        f"  single frame (largest vehicle box): a read on {pct(single, tracks)} "
        f"(fits a format: {single_formatted})"
    )
    print(
        f"  fused over the track's frames: a read on {pct(fused, tracks)} "
        f"(fits a format: {fused_formatted})"
    )
    print(f"  plate reading per vehicle box: {ms_stats(t_plates)}")
    for line in examples[:15]:
        print("   ", line)
    return {"tracks": tracks, "with_plate": with_plate, "single": single, "fused": fused}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="First N images of each set.")
    ap.add_argument("--no-video", action="store_true")
    ap.add_argument("--no-uc3m", action="store_true")
    ap.add_argument("--no-openalpr", action="store_true")
    ap.add_argument("--no-tesseract", action="store_true")
    ap.add_argument("--cli", action="store_true", help="openalpr via `citywatch plates read`.")
    ap.add_argument("--every", type=int, default=2, help="Video: every Nth frame.")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    if not OPENALPR.is_dir():
        sys.exit(f"no plate data at {OPENALPR}")
    tess = None if args.no_tesseract else Tesseract()
    if tess is not None and tess.exe is None:
        print("tesseract not installed (apt-get install tesseract-ocr): baseline skipped")
        tess = None
    results: dict[str, Any] = {}
    if not args.no_openalpr:
        results["openalpr"] = bench_openalpr(PlateReader(["US"]), tess, args.limit, args.cli)
    if not args.no_uc3m:
        results["uc3m"] = bench_uc3m(PlateReader(["ES", "EU"]), tess, args.limit)
    if not args.no_video:
        results["video"] = bench_video(PlateReader(), args.every, args.max_frames)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
