"""Licence plates: format rules, fusion of several reads, and the reader on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
from citywatch.analytics.plates.fusion import PlateFusion, align

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
