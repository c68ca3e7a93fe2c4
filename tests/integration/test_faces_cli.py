"""`citywatch faces compare` on real photos (../shared/data/faces): JSON and text output,
the decision at the threshold, and clear errors for bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from citywatch.analytics.faces import FaceEngine, FaceEngineError, load_image, similarity
from citywatch.cli import app
from citywatch.imaging import encode_jpeg_array

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = (
    Path(os.environ.get("CITYWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
    / "faces"
    / "face_recognition_examples"
)

runner = CliRunner()


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    if not EXAMPLES.is_dir():
        pytest.skip(f"shared data not present: {EXAMPLES} (see ../shared/data/README.md)")
    try:
        return FaceEngine()
    except FaceEngineError as exc:
        pytest.skip(f"face models not installed: {exc}")


def compare(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["faces", "compare", *args])
    return result.exit_code, result.stdout, result.stderr


def test_same_person_json_matches_the_library(engine: FaceEngine) -> None:
    a, b = EXAMPLES / "obama.jpg", EXAMPLES / "two_people.jpg"
    code, out, _ = compare(str(a), str(b), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["detector"] == "hog" and data["threshold"] == engine.threshold
    first, second = data["images"]
    assert first["source"] == str(a) and (first["width"], first["height"]) == (910, 1137)
    assert len(first["faces"]) == 1 and len(second["faces"]) == 2
    face = first["faces"][0]
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
    assert face["quality"]["problems"] == [] and 0 < face["quality"]["score"] <= 1
    # the best pair is Obama with the Obama of the second photo, as the library says
    fa = engine.faces(load_image(a))
    fb = engine.faces(load_image(b))
    sims = [[similarity(x.embedding, y.embedding) for y in fb] for x in fa]
    j = int(np.argmax(sims[0]))
    assert data["best"]["a"] == 0 and data["best"]["b"] == j
    assert data["best"]["similarity"] == pytest.approx(sims[0][j], abs=1e-6)
    assert data["same_person"] is True
    assert data["best"]["similarity"] >= engine.threshold


def test_different_people_and_the_threshold_option(engine: FaceEngine) -> None:
    a, b = str(EXAMPLES / "obama.jpg"), str(EXAMPLES / "biden.jpg")
    code, out, _ = compare(a, b, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["same_person"] is False and data["best"]["similarity"] < engine.threshold
    sim = data["best"]["similarity"]
    code, out, _ = compare(a, b, "--json", "--threshold", f"{sim - 0.01:.4f}")
    assert json.loads(out)["same_person"] is True  # a looser threshold says "same"
    code, out, _ = compare(a, b)
    assert code == 0
    assert "1 face(s)" in out and "fit for enrolment" in out
    assert f"similarity {sim:.3f}" in out and "different people at threshold" in out


def test_blazeface_detector_option(engine: FaceEngine) -> None:
    code, out, _ = compare(
        str(EXAMPLES / "obama.jpg"), str(EXAMPLES / "obama2.jpg"), "--json",
        "--detector", "blazeface",
    )  # fmt: skip
    assert code == 0, out
    data = json.loads(out)
    assert data["detector"] == "blazeface" and data["same_person"] is True


def test_bad_input_is_refused_clearly(engine: FaceEngine, tmp_path: Path) -> None:
    good = str(EXAMPLES / "obama.jpg")
    code, out, err = compare(good, str(tmp_path / "missing.jpg"))
    assert code == 2 and "missing.jpg: no such file" in err
    text = tmp_path / "notes.png"
    text.write_text("not a picture at all\n" * 10)
    code, out, err = compare(str(text), good)
    assert code == 2 and "notes.png: not an image" in err
    code, out, err = compare(good, str(EXAMPLES / "short_hamilton_clip.mp4"))
    assert code == 2 and "not an image" in err
    code, _, err = compare(good, good, "--detector", "mtcnn")
    assert code == 2 and "unknown face detector" in err
    code, _, _ = compare(good, good, "--threshold", "3")
    assert code == 2


def test_no_face_exits_1_with_the_image_named(engine: FaceEngine, tmp_path: Path) -> None:
    background = np.ascontiguousarray(load_image(EXAMPLES / "obama-1080p.jpg")[600:1080, 0:600])
    empty = tmp_path / "wall.jpg"
    empty.write_bytes(encode_jpeg_array(background))
    code, out, err = compare(str(EXAMPLES / "obama.jpg"), str(empty), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["best"] is None and data["same_person"] is None
    assert data["images"][1]["faces"] == []
    assert f"no face found in {empty}" in err
