"""Licence plates: format rules, fusion of several reads, and the reader on real photos."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from citywatch.analytics.plates import (
    UNFORMATTED,
    Group,
    PlateFormat,
    PlateRead,
    PlateReaderError,
    classify,
    formats_for,
    fuse,
    normalise,
)
from citywatch.analytics.plates.formats import FORMATS, register
from citywatch.analytics.plates.fusion import (
    PlateFusion,
    ReadSchedule,
    TrackPlate,
    align,
    weighted_distance,
)
from citywatch.analytics.plates.passages import PlatePassages, direction_of
from citywatch.analytics.types import Box, Detection
from citywatch.analytics.zones import Line

U8 = npt.NDArray[np.uint8]

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "plates" / "openalpr-us"


# formats -----------------------------------------------------------------------------------
def test_normalise() -> None:
    assert normalise(" bg 123-ab ") == "BG123AB"
    assert normalise("NS.1234–CD") == "NS1234CD"
    assert normalise("šA 123-ab") == "ŠA123AB"


@pytest.mark.parametrize("bad", ["", "  - . ", "БГ 123-АБ", "京A12345", "AB@12", "AB\u00a7"])
def test_normalise_rejects_empty_and_non_latin(bad: str) -> None:
    with pytest.raises(ValueError):
        normalise(bad)
    with pytest.raises(ValueError):
        classify(bad)


@pytest.mark.parametrize(
    ("read", "text"),
    [
        ("BG 123-AB", "BG 123-AB"),
        ("bg123ab", "BG 123-AB"),
        ("NS 1234-CD", "NS 1234-CD"),
        ("BG12345ABC", "BG 12345-ABC"),
        ("KG 987-XYZ", "KG 987-XYZ"),
    ],
)
def test_serbian(read: str, text: str) -> None:
    name, printed, factor = classify(read, ["RS"])
    assert (name, printed, factor) == ("RS", text, 1.0)


def test_serbian_confusions_and_unknown_city() -> None:
    c = classify("8G 1O3-AB", ["RS"])  # B read as 8, 0 as O
    assert c.format == "RS" and c.text == "BG 103-AB" and c.normalised == "BG103AB"
    assert 0.5 < c.factor < 1.0
    assert classify("BG 103-AB", ["RS"]).factor > c.factor
    unknown = classify("QQ 123-AB", ["RS"])
    assert unknown.format == "RS" and unknown.factor < 1.0
    short = classify("BG 123-A", ["RS"])
    assert short.format == "RS-short" and short.text == "BG 123-A"


def test_too_many_confusions_is_unformatted() -> None:
    c = classify("8G 1OO-88", ["RS"])  # four corrections needed
    assert c.format == UNFORMATTED and c.factor == 0.6 and c.normalised == "8G1OO88"


def test_generic_european_and_us() -> None:
    assert classify("1234 BCD", ["ES", "EU"]).text == "1234 BCD"
    assert classify("E 1234 BCD", ["ES"]).format == "ES"  # the Euro band's letter trimmed
    eu = classify("B MW 1234", ["EU"])
    assert eu.format == "EU" and eu.normalised == "BMW1234" and eu.factor < 1.0
    us = classify("7ABC123", ["US"])
    assert us.format == "US" and us.text == "7ABC123"
    assert classify("ABCDEF", ["US"]).format == UNFORMATTED  # no digit
    assert classify("12", ["US", "EU"]).format == UNFORMATTED


def test_specific_rule_beats_generic() -> None:
    assert classify("BG 123-AB").format == "RS"
    assert classify("8G 123-AB", ["RS", "EU"]).format == "RS"


def test_unpacks_and_unknown_country() -> None:
    name, text, factor = classify("ZZZZ99")
    assert isinstance(name, str) and isinstance(text, str) and isinstance(factor, float)
    with pytest.raises(ValueError, match="unknown plate format"):
        formats_for(["XX"])


def test_pluggable_rule() -> None:
    fmt = PlateFormat("TEST-HR", (Group("L", 2, 2), Group("D", 3, 4), Group("L", 1, 2)), (" ", "-"))
    try:
        register(fmt)
        c = classify("ZG 1234-A", ["TEST-HR"])
        assert (c.format, c.text) == ("TEST-HR", "ZG 1234-A")
    finally:
        FORMATS.pop("TEST-HR", None)
    with pytest.raises(ValueError):
        PlateFormat("bad", ())
    with pytest.raises(ValueError):
        PlateFormat("bad", (Group("L", 2, 1),))


# fusion ------------------------------------------------------------------------------------
def _read(text: str, ocr: float = 0.9, quality: float = 0.5) -> PlateRead:
    c = classify(text)
    return PlateRead(
        box=(0.0, 0.0, 10.0, 5.0),
        text=c.text,
        normalised=c.normalised,
        format=c.format,
        confidence=ocr * c.factor,
        crop=np.zeros((5, 10, 3), np.uint8),
        raw=text,
        ocr_confidence=ocr,
        quality=quality,
        country=c.country,
    )


def test_align() -> None:
    assert align("BG123AB", "BG123AB") == list("BG123AB")
    assert align("BG12AB", "BG123AB") == ["B", "G", "1", "2", None, "A", "B"]
    assert align("XBG123AB", "BG123AB") == list("BG123AB")


def test_fusion_votes_per_position() -> None:
    reads = [_read("BG 123-AB"), _read("BG 128-AB", 0.6), _read("8G 123-AB", 0.7)]
    reads += [_read("BG 12-AB", 0.8), _read("BG 1234-AB", 0.5, 0.1)]
    plate = fuse(reads, ["RS"])
    assert plate is not None
    assert plate.text == "BG 123-AB" and plate.format == "RS"
    assert plate.reads == 5 and plate.agreeing >= 2
    assert plate.best.normalised == "BG123AB"
    single = fuse([_read("BG 123-AB")], ["RS"])
    assert single is not None and plate.confidence > single.confidence * 0.9
    agreeing = fuse([_read("BG 123-AB")] * 4, ["RS"])
    assert agreeing is not None and agreeing.confidence > single.confidence


def test_fusion_best_quality_first() -> None:
    good = _read("NS 1234-CD", 0.95, quality=1.0)
    bad = _read("NS 1284-CO", 0.9, quality=0.05)
    plate = fuse([bad, good], ["RS"])
    assert plate is not None and plate.text == "NS 1234-CD"


def test_fusion_class() -> None:
    fusion = PlateFusion(["RS"], max_reads=3)
    assert fusion.result() is None
    for _ in range(20):
        fusion.add(_read("BG 123-AB"))
    assert len(fusion) <= 12
    result = fusion.result()
    assert result is not None and result.reads == 3 and result.text == "BG 123-AB"
    fusion.reset()
    assert fusion.result() is None
    with pytest.raises(ValueError):
        PlateFusion(["XX"])


# reader ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reader():  # type: ignore[no-untyped-def]
    from citywatch.analytics.plates import PlateReader

    try:
        return PlateReader(["US"])
    except PlateReaderError as exc:
        pytest.skip(f"plate models not installed: {exc}")


def test_reader_bad_input(reader) -> None:  # type: ignore[no-untyped-def]
    assert reader.read(np.zeros((0, 0, 3), np.uint8)) == []
    assert reader.read(np.zeros((1, 50, 3), np.uint8)) == []
    assert reader.read(np.zeros((100, 100, 3), np.uint8)) == []
    img = np.zeros((200, 300, 3), np.uint8)
    assert reader.read(img, vehicle_box=(50, 50, 50, 50)) == []  # empty vehicle box
    assert reader.read(img, vehicle_box=(400, 400, 500, 500)) == []  # outside the image
    with pytest.raises(ValueError):
        reader.read(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(ValueError):
        reader.read(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        reader.read("image.jpg")
    assert reader.read_crop(np.zeros((0, 10, 3), np.uint8)) is None
    big = np.full((5000, 7000, 3), 128, np.uint8)  # scaled down, not a crash
    assert reader.read(big) == []


def test_missing_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from citywatch.analytics.plates import PlateDetector

    monkeypatch.setenv("CITYWATCH_PLATE_DETECTOR", str(tmp_path / "nope.onnx"))
    with pytest.raises(PlateReaderError, match="no such file"):
        PlateDetector()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(PlateReaderError, match="cannot be loaded"):
        PlateDetector(bad)


VERIFIED = {  # read exactly by platedet + rapidocr, checked by eye
    "0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg": "YG9X2G",
    "1e241dc8-8f18-4955-8988-03a0ab49f813.jpg": "CCLVN3",
    "316b64c0-55bf-4079-a1c0-d93f461a576f.jpg": "K179658",
    "7fbfbe28-aecb-45be-bd05-7cf26acb3c5c.jpg": "KC4Z3X",
}


@pytest.mark.skipif(not DATA.is_dir(), reason=f"shared plate data absent ({DATA})")
@pytest.mark.parametrize(("name", "plate"), sorted(VERIFIED.items()))
def test_reader_real_photos(reader, name: str, plate: str) -> None:  # type: ignore[no-untyped-def]
    from citywatch.analytics.plates import load_image

    image = load_image(DATA / name)
    x, y, w, h = (float(v) for v in (DATA / name).with_suffix(".txt").read_text().split()[1:5])
    reads = reader.read(image)
    assert reads and reads[0].normalised == plate
    best = reads[0]
    assert best.format == "US" and 0.5 < best.confidence <= 1.0
    x1, y1, x2, y2 = best.box
    assert x1 < x + w and x2 > x and y1 < y + h and y2 > y  # on the labelled plate
    assert best.crop.ndim == 3 and best.crop_jpeg()[:2] == b"\xff\xd8"
    # inside a vehicle box, the box is still in whole-image pixels
    around = (max(0.0, x - 3 * w), max(0.0, y - 3 * h), x + 4 * w, y + 4 * h)
    inside = reader.read(image, vehicle_box=around)
    assert inside and inside[0].normalised == plate
    assert abs(inside[0].box[0] - x1) < w / 2


def test_weighted_distance_and_settled() -> None:
    assert weighted_distance("BG123AB", "BG123AB") == 0
    assert weighted_distance("8G123AB", "BG123AB") == 0.5  # a B/8 confusion
    assert weighted_distance("BG123AB", "BG12AB") == 1
    assert weighted_distance("NS1234CD", "BG123AB") > 2
    fusion = PlateFusion(["RS"])
    for _ in range(2):
        fusion.add(_read("BG 123-AB", 0.95, 1.0))
    assert not fusion.settled()  # two agreeing reads are not enough
    fusion.add(_read("BG 123-AB", 0.95, 1.0))
    assert fusion.settled()
    garbage = PlateFusion(["RS"])
    for _ in range(5):
        garbage.add(_read("XQ", 0.95, 1.0))
    assert not garbage.settled()  # fits no format: keep trying


# passages (dedicated LPR cameras) ----------------------------------------------------------
def _at(text: str, box: tuple[float, float, float, float], ocr: float = 0.9) -> PlateRead:
    return replace(_read(text, ocr), box=box)


def _approach(text: str, n: int = 8, x: float = 600.0) -> list[PlateRead]:
    """A plate driving towards the camera: down the frame and growing, 5 frames a second."""
    return [
        _at(text, (x - 40 - 6 * i, 200 + 30 * i, x + 40 + 6 * i, 220 + 32 * i)) for i in range(n)
    ]


def test_passage_one_read_per_vehicle() -> None:
    reads = _approach("BG 123-AB")
    reads[2] = replace(reads[2], normalised="BG128AB", text="BG 128-AB")  # one misread digit
    reads[4] = replace(reads[4], normalised="XX", text="XX", ocr_confidence=0.3)  # garbage
    passages = PlatePassages(["RS"], gap_s=1.0)
    done = []
    for i, r in enumerate(reads):
        done += passages.update([r], i * 0.2, (1280, 720))
    assert done == [] and len(passages.open) == 1  # still in view
    for k in range(1, 8):  # the plate is gone; the detector still runs
        done += passages.update([], (len(reads) + k) * 0.2, (1280, 720))
    assert len(done) == 1 and not passages.open
    result = done[0]
    assert result.plate.text == "BG 123-AB" and result.plate.reads == len(reads)
    assert result.direction == "approaching"
    assert result.first_ts == 0.0 and result.last_ts == pytest.approx(1.4)


def test_passages_apart_in_space_time_and_text() -> None:
    passages = PlatePassages(["RS"], gap_s=1.0)
    a, b = _approach("BG 123-AB", x=300), _approach("NS 456-CD", x=1000)
    done = []
    for i in range(len(a)):  # two lanes at once
        done += passages.update([a[i], b[i]], i * 0.2, (1280, 720))
    assert len(passages.open) == 2
    t = len(a) * 0.2 + 1.5
    done += passages.update([], t - 0.2, (1280, 720)) + passages.update([], t, (1280, 720))
    assert sorted(d.plate.text for d in done) == ["BG 123-AB", "NS 456-CD"]
    # the same car again after the gap: a second passage
    again = passages.update([a[0]], t + 0.2, (1280, 720)) + passages.finish()
    assert [d.plate.text for d in again] == ["BG 123-AB"]
    assert again[0].passage_id not in {d.passage_id for d in done}
    # the same text read far away a moment later is another plate, not the same passage
    twin = PlatePassages(["RS"])
    twin.update([_at("BG 123-AB", (0, 0, 80, 20))], 0.0, (1280, 720))
    twin.update([_at("BG 123-AB", (1000, 600, 1080, 620))], 0.2, (1280, 720))
    assert len(twin.open) == 2


def test_passage_fast_plate_and_directions() -> None:
    # a plate moving 3 widths a frame (a fast car close to the camera): joined by its text
    passages = PlatePassages(["RS"], gap_s=1.0)
    for i in range(4):
        passages.update(
            [_at("BG 123-AB", (100 + 240 * i, 300, 180 + 240 * i, 320))], i * 0.2, (1280, 720)
        )
    (result,) = passages.finish()
    assert result.plate.reads == 4 and result.direction == "right"
    line = Line("gate", (0.5, 0.0), (0.5, 1.0))
    with_line = PlatePassages(["RS"], lines=[line])
    for i in range(4):
        with_line.update(
            [_at("BG 123-AB", (100 + 240 * i, 300, 180 + 240 * i, 320))], i * 0.2, (1280, 720)
        )
    assert with_line.finish()[0].direction in ("A->B", "B->A")
    assert direction_of([(0, (10, 10, 90, 30))], (1280, 720)) is None
    assert direction_of([(0, (10, 10, 90, 30)), (1, (12, 11, 92, 31))], (1280, 720)) is None
    receding = [(0.0, (500.0, 500.0, 700.0, 550.0)), (1.0, (560.0, 300.0, 640.0, 320.0))]
    assert direction_of(receding, (1280, 720)) == "leaving"
    with pytest.raises(ValueError):
        PlatePassages(gap_s=0)
    with pytest.raises(ValueError):
        PlatePassages(["XX"])


class _ScriptedReader:
    """Stands in for PlateReader: the reads of each call, in order (a script, not a model)."""

    def __init__(self, script: list[list[PlateRead]]) -> None:
        self.script = script
        self.calls: list[tuple[int, int]] = []

    def read(self, image_bgr: U8, vehicle_box: Box | None = None) -> list[PlateRead]:
        assert vehicle_box is None  # an LPR camera reads the whole frame
        self.calls.append((image_bgr.shape[0], image_bgr.shape[1]))
        return self.script[len(self.calls) - 1] if len(self.calls) <= len(self.script) else []


class _NoDetector:
    def detect(self, image_bgr: U8) -> list[Detection]:
        raise AssertionError("an LPR camera runs no vehicle detection")


def test_lpr_camera_in_the_pipeline() -> None:
    from citywatch.analytics.messages import PlateResult
    from citywatch.analytics.pipeline import CameraAnalyzer
    from citywatch.config import AnalyticsConfig

    with pytest.raises(ValueError, match="needs plates"):
        AnalyticsConfig(plate_mode="lpr")
    with pytest.raises(ValueError):
        AnalyticsConfig(plates=True, plate_mode="both")  # type: ignore[arg-type]
    cfg = AnalyticsConfig(enabled=True, plates=True, plate_mode="lpr", motion_gating=False)
    script = [[r] for r in _approach("BG 123-AB", 6)]
    reader = _ScriptedReader(script)
    analyzer = CameraAnalyzer("gate", cfg, _NoDetector(), plate_reader=reader)
    small = np.zeros((360, 640, 3), np.uint8)
    full = np.zeros((720, 1280, 3), np.uint8)
    messages = []
    for i in range(20):
        out = analyzer.process(small, 100 + i * 0.2, full)
        assert out.detector_ran and out.boxes == []
        messages += out.messages
    assert all(shape == (720, 1280) for shape in reader.calls)  # the full-resolution frame
    plates = [m for m in messages if isinstance(m, PlateResult)]
    assert len(plates) == 1 and plates[0].text == "BG 123-AB"
    assert plates[0].direction == "approaching" and plates[0].reads == 6
    assert plates[0].camera_id == "gate" and plates[0].crop_jpeg[:2] == b"\xff\xd8"
    # a passage still open when the stream stops is not lost
    reader2 = _ScriptedReader([[r] for r in _approach("NS 456-CD", 3)])
    analyzer2 = CameraAnalyzer("gate", cfg, _NoDetector(), plate_reader=reader2)
    for i in range(3):
        assert analyzer2.process(small, i * 0.2, full).messages == []
    (last,) = analyzer2.finish(1.0)
    assert isinstance(last, PlateResult) and last.text == "NS 456-CD"


def test_lpr_motion_gating_skips_still_frames() -> None:
    from citywatch.analytics.pipeline import CameraAnalyzer
    from citywatch.config import AnalyticsConfig

    cfg = AnalyticsConfig(enabled=True, plates=True, plate_mode="lpr")  # motion gating on
    reader = _ScriptedReader([])
    analyzer = CameraAnalyzer("gate", cfg, _NoDetector(), plate_reader=reader)
    still = np.full((360, 640, 3), 90, np.uint8)
    ran = [analyzer.process(still, i * 0.2).detector_ran for i in range(30)]
    assert sum(ran) <= 2  # the background is learnt; nothing moves, nothing is read


# the detector graph ------------------------------------------------------------------------
def test_graph_that_is_not_yolov8_is_run_as_it_is(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from citywatch.analytics.plates.detector import boxes_only_graph

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 64, 64])
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["out"])], "g", [x], [y])
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert boxes_only_graph(path) is None


@pytest.fixture(scope="module")
def detectors():  # type: ignore[no-untyped-def]
    from citywatch.analytics.plates import PlateDetector

    try:
        return PlateDetector(fast=False), PlateDetector()
    except PlateReaderError as exc:
        pytest.skip(f"plate models not installed: {exc}")


def test_fast_detector_input_sizes(detectors) -> None:  # type: ignore[no-untyped-def]
    fixed, fast = detectors
    assert fast.fast and not fixed.fast
    assert fixed.input_size(1280, 720)[:2] == (640, 640)
    assert fast.input_size(1280, 720) == (640, 384, 0.5)  # own aspect ratio, sides of 32
    assert fast.input_size(320, 240) == (640, 480, 2.0)  # small images: enlarged up to 2x
    assert fast.input_size(200, 150) == (416, 320, 2.0)
    assert fast.input_size(1, 3000)[:2] == (32, 640)


@pytest.mark.skipif(not DATA.is_dir(), reason=f"shared plate data absent ({DATA})")
def test_fast_detector_finds_the_same_boxes(detectors) -> None:  # type: ignore[no-untyped-def]
    from citywatch.analytics.plates import load_image

    fixed, fast = detectors
    for name in sorted(VERIFIED):
        image = load_image(DATA / name)
        a, b = fixed.detect(image), fast.detect(image)
        assert a and b
        assert max(abs(p - q) for p, q in zip(a[0][0], b[0][0], strict=True)) < 3.0
        assert abs(a[0][1] - b[0][1]) < 0.1


def test_parked_car_stays_one_passage() -> None:
    # a car waiting at a barrier: nothing moves, the pipeline looks once a second
    passages = PlatePassages(["RS"])
    parked = _at("BG 123-AB", (600, 400, 680, 420))
    for i in range(600):
        assert passages.update([parked], float(i), (1280, 720)) == []
    (p,) = passages.open
    assert len(p.path) <= 200 and p.path[0][0] == 0.0 and p.path[-1][0] == 599.0
    assert passages.update([], 601.0, (1280, 720)) == []  # missed once: may be a slow run
    (done,) = passages.update([], 602.0, (1280, 720))
    assert done.plate.text == "BG 123-AB" and done.direction is None


def test_read_schedule() -> None:
    schedule = ReadSchedule(tries=3, every_s=0.3, growth=1.3, max_tries=5)
    plate = TrackPlate(PlateFusion(["RS"]))
    tried = []
    for i in range(40):  # 0.1 s apart, the vehicle the same size: spaced tries, then none
        ts = i * 0.1
        if plate.due(100.0, ts, schedule):
            plate.tried(100.0, ts, None)
            tried.append(round(ts, 1))
    assert tried == [0.0, 0.3, 0.6]
    assert plate.due(130.0, 4.0, schedule)  # it came closer: read again, spacing or not
    plate.tried(130.0, 4.0, None)
    assert not plate.due(140.0, 4.1, schedule)  # not closer enough than the last one read
    assert plate.due(170.0, 4.1, schedule)
    plate.tried(170.0, 4.1, None)
    assert not plate.due(1000.0, 4.2, schedule)  # max_tries reached
    sure = TrackPlate(PlateFusion(["RS"]))
    for i in range(3):
        sure.tried(100.0, i, _read("BG 123-AB", 0.95, 1.0))
    assert sure.settled and not sure.due(1000.0, 10.0, ReadSchedule())
