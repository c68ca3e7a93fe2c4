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
3. Vehicle crops (openalpr-us): NanoDet finds the vehicles in each photo; the plate is read
   inside the vehicle box that holds the labelled plate (``read(image, vehicle_box=...)``,
   what the pipeline does for each vehicle track): exact reads and time per vehicle.

Plate detector settings (``--detector``, comma-separated, each run in turn on the same
images, side by side at the end): ``fixed`` = the model file's graph as it is (640x640 fp16
square letterbox, the original way); ``fast`` = the graph cut to its box head, fp32, input
letterboxed to the image's own aspect ratio, small images enlarged at most ``--max-upscale``
times (see citywatch/analytics/plates/detector.py). Reads per vehicle track on video
(single frame vs fusion) are in ``bench.plates_fusion``.

    .venv/bin/python -m bench.plates_accuracy [--limit N] [--detector fixed,fast] [--no-tesseract]
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
from citywatch.analytics.plates import PlateDetector, PlateReader, load_image
from citywatch.analytics.plates.reader import clean_ocr_text

DATA = Path(os.environ.get("CITYWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
OPENALPR = DATA / "plates" / "openalpr-us"
UC3M = DATA / "plates" / "uc3m-lp"

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
    det_ms: list[float] = []  # inside read(): the plate detector
    read_ms: list[float] = []  # inside read(): crops, OCR and formats of the boxes found
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
            det_ms.append(reader.last_timing.detect_ms)
            read_ms.append(reader.last_timing.ocr_ms)
        times.append(ms)
        hits = [(b, t) for b, t in found_boxes if iou(b, gt_box) >= 0.3]
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
            det_boxes = [b for b, _ in found_boxes if iou(b, gt_box) >= 0.3]
            if det_boxes:
                txt, _ = tess.recognise(crop(image, det_boxes[0]))
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
    if det_ms:
        print(
            f"      of which plate detector: {ms_stats(det_ms)}; OCR + formats: {ms_stats(read_ms)}"
        )
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
        "detect_ms": det_ms,
        "ocr_ms": read_ms,
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
        found = reader.detector.detect(image)  # every box, for recall and precision
        t0 = time.perf_counter()
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
    print(f"    time per image (PlateReader.read, 1 thread): {ms_stats(times)}")
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
        "ms": times,
    }


# 3. vehicle crops --------------------------------------------------------------------------
VEHICLE_CLASSES = ("car", "truck", "bus", "motorcycle")


def vehicle_boxes(limit: int | None) -> dict[Path, Box | None]:
    """Per openalpr photo: the NanoDet vehicle box that holds the labelled plate's centre
    (the largest if several), or None."""
    from citywatch.analytics.detector import load_detector

    detector = load_detector("nanodet", classes=VEHICLE_CLASSES, threshold=0.3)
    out: dict[Path, Box | None] = {}
    for path, (x1, y1, x2, y2), _ in openalpr_labels(limit):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        boxes = [
            d.box
            for d in detector.detect(load_image(path))
            if d.box[0] <= cx <= d.box[2] and d.box[1] <= cy <= d.box[3]
        ]
        out[path] = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), default=None)
    return out


def bench_vehicle_crops(
    reader: PlateReader, limit: int | None, vehicles: dict[Path, Box | None]
) -> dict[str, Any]:
    tally = Tally()
    times: list[float] = []
    sides: list[int] = []
    for path, _, plate in openalpr_labels(limit):
        box = vehicles.get(path)
        if box is None:
            continue
        image = load_image(path)
        t0 = time.perf_counter()
        reads = reader.read(image, vehicle_box=box)
        times.append((time.perf_counter() - t0) * 1e3)
        sides.append(round(max(box[2] - box[0], box[3] - box[1])))
        texts = [r.normalised for r in reads]
        best = plate if plate in texts else (texts[0] if texts else None)
        tally.add(plate, best, bool(reads))
    print(
        f"\n== openalpr-us vehicle crops: {tally.n} photos with a NanoDet vehicle around the "
        f"plate (vehicle box longest side median {np.median(sides) if sides else 0:.0f} px)"
    )
    for line in tally.rows("read inside the vehicle box"):
        print(line)
    print(f"    time per vehicle (detector + OCR, 1 thread): {ms_stats(times)}")
    return {"tally": vars(tally), "ms": times}


def interleaved(detectors: dict[str, PlateDetector], n: int) -> dict[str, list[float]]:
    """Plate detector time per call, the settings taking turns on each image (so a change
    in machine load hits them alike): n openalpr photos, then n vehicle boxes of them
    (rounded to the box NanoDet would give: the labelled plate's surroundings), then the
    first n uc3m photos (320x240)."""
    sets: dict[str, list[Image]] = {"openalpr photo": [], "vehicle crop": [], "uc3m photo": []}
    for path, (x1, y1, x2, y2), _ in openalpr_labels(n):
        image = load_image(path)
        sets["openalpr photo"].append(image)
        w, h = x2 - x1, y2 - y1  # a car is about 4 plates wide and 5 plates high around it
        a, b = int(max(0, x1 - 1.5 * w)), int(max(0, y1 - 3.5 * h))
        sets["vehicle crop"].append(
            np.ascontiguousarray(image[b : int(y2 + 1.5 * h), a : int(x2 + 1.5 * w)])
        )
    for path in sorted((UC3M / "LP" / "images" / "val").glob("*.jpg"))[:n]:
        sets["uc3m photo"].append(load_image(path))
    out: dict[str, list[float]] = {}
    print(f"\n== plate detector alone, settings taking turns ({n} images a set, 1 thread)")
    for name, images in sets.items():
        ms: dict[str, list[float]] = {mode: [] for mode in detectors}
        for image in images:
            for mode, det in detectors.items():
                t0 = time.perf_counter()
                det.detect(image)
                ms[mode].append((time.perf_counter() - t0) * 1e3)
        sizes = np.median([max(i.shape[:2]) for i in images]) if images else 0
        line = ", ".join(f"{mode} {ms_stats(v)}" for mode, v in ms.items())
        print(f"  {name} (longest side median {sizes:.0f} px): {line}")
        for mode, v in ms.items():
            out[f"{name}/{mode}"] = v
    return out


def summary(results: dict[str, dict[str, Any]]) -> None:
    """One line per detector setting, side by side."""
    print("\n== summary (1 thread)")
    for mode, r in results.items():
        parts = [f"{mode:>6}:"]
        if "openalpr" in r:
            o = r["openalpr"]["ours"]
            a = np.asarray(r["openalpr"]["ms"])
            parts.append(
                f"openalpr exact {100 * o['exact'] / o['n']:.1f} %, <=1 wrong "
                f"{100 * o['one_off'] / o['n']:.1f} %, {a.mean():.0f}/{np.median(a):.0f}/"
                f"{np.percentile(a, 95):.0f} ms (mean/median/p95)"
            )
        if "uc3m" in r:
            u = r["uc3m"]
            a = np.asarray(u["ms"])
            parts.append(
                f"uc3m recall {100 * u['tp'] / max(1, u['gt']):.1f} %, precision "
                f"{100 * u['tp'] / max(1, u['tp'] + u['fp']):.1f} %, {a.mean():.0f}/"
                f"{np.median(a):.0f}/{np.percentile(a, 95):.0f} ms"
            )
        if "vehicles" in r:
            v = r["vehicles"]["tally"]
            a = np.asarray(r["vehicles"]["ms"])
            parts.append(
                f"vehicle crops exact {100 * v['exact'] / max(1, v['n']):.1f} %, "
                f"{a.mean():.0f}/{np.median(a):.0f}/{np.percentile(a, 95):.0f} ms"
            )
        print(f"  {parts[0]} " + "; ".join(parts[1:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="First N images of each set.")
    ap.add_argument("--no-uc3m", action="store_true")
    ap.add_argument("--no-openalpr", action="store_true")
    ap.add_argument("--no-vehicles", action="store_true", help="Skip the vehicle-crop part.")
    ap.add_argument("--no-tesseract", action="store_true")
    ap.add_argument("--cli", action="store_true", help="openalpr via `citywatch plates read`.")
    ap.add_argument(
        "--detector", default="fixed,fast", help="Detector settings to compare: fixed, fast."
    )
    ap.add_argument("--max-upscale", type=float, default=2.0, help="fast: enlarge at most.")
    ap.add_argument(
        "--interleaved", type=int, default=40, help="Detector timing, settings in turns (0: off)."
    )
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    if not OPENALPR.is_dir():
        sys.exit(f"no plate data at {OPENALPR}")
    modes = [m.strip() for m in args.detector.split(",") if m.strip()]
    if not modes or any(m not in ("fixed", "fast") for m in modes):
        sys.exit(f"--detector: fixed and/or fast, got {args.detector!r}")
    tess = None if args.no_tesseract else Tesseract()
    if tess is not None and tess.exe is None:
        print("tesseract not installed (apt-get install tesseract-ocr): baseline skipped")
        tess = None
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    vehicles = {} if args.no_vehicles else vehicle_boxes(args.limit)
    results: dict[str, dict[str, Any]] = {}
    for i, mode in enumerate(modes):
        detector = PlateDetector(fast=mode == "fast", max_upscale=args.max_upscale)
        print(f"\n######## detector: {mode} (fast graph in use: {detector.fast})")
        baseline = tess if i == 0 else None  # the Tesseract baseline once
        r: dict[str, Any] = {}
        if not args.no_openalpr:
            if args.cli and mode != "fast":
                sys.exit("--cli runs the CLI, which uses the fast detector: --detector fast")
            reader = PlateReader(["US"], detector=detector)
            r["openalpr"] = bench_openalpr(reader, baseline, args.limit, args.cli)
        if not args.no_uc3m:
            r["uc3m"] = bench_uc3m(
                PlateReader(["ES", "EU"], detector=detector), baseline, args.limit
            )
        if vehicles:
            r["vehicles"] = bench_vehicle_crops(
                PlateReader(["US"], detector=detector), args.limit, vehicles
            )
        results[mode] = r
    summary(results)
    if len(modes) > 1 and args.interleaved:
        dets = {m: PlateDetector(fast=m == "fast", max_upscale=args.max_upscale) for m in modes}
        results["interleaved"] = interleaved(dets, args.interleaved)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
