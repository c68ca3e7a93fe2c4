"""The face engine on real photos (../shared/data/faces): detection, matching, enrolment
checks, best shots per track, and bad input.

The photos are read in place (never copied); tests that need them skip when the folder is
absent. The engine's models come from ``scripts/build_models.sh``; without them the
engine tests skip, saying so.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage

from citywatch.analytics.faces import (
    DEFAULT_THRESHOLD,
    BestShots,
    EnrolmentRejected,
    Face,
    FaceBox,
    FaceEngine,
    FaceEngineError,
    FaceQuality,
    ImageError,
    check_image,
    crop_jpeg,
    load_image,
    similarities,
    similarity,
)
from citywatch.analytics.faces.quality import QualityRules, frontal_score, rate

U8 = npt.NDArray[np.uint8]

REPO = Path(__file__).resolve().parents[2]
FACES = Path(os.environ.get("CITYWATCH_SHARED_DATA", REPO.parent / "shared" / "data")) / "faces"
EXAMPLES = FACES / "face_recognition_examples"
LFW = FACES / "lfw-a"


def photo(rel: str) -> U8:
    path = EXAMPLES / rel
    if not path.is_file():
        pytest.skip(f"shared data not present: {path} (see ../shared/data/README.md)")
    return load_image(path)


def lfw(name: str, n: int) -> U8:
    path = LFW / "lfw" / name / f"{name}_{n:04d}.jpg"
    if not path.is_file():
        pytest.skip(f"shared data not present: {path} (see ../shared/data/README.md)")
    return load_image(path)


def _engine(detector: str) -> FaceEngine:
    try:
        return FaceEngine(detector=detector)
    except FaceEngineError as exc:
        pytest.skip(f"face models not installed: {exc}")


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return _engine("hog")


@pytest.fixture(scope="module")
def blazeface() -> FaceEngine:
    return _engine("blazeface")


def resized(image: U8, scale: float) -> U8:
    """Bilinear resize (dlib's, through the engine's own helper path)."""
    import dlib

    rgb = np.ascontiguousarray(image[:, :, ::-1])
    out = dlib.resize_image(rgb, round(image.shape[0] * scale), round(image.shape[1] * scale))
    result: U8 = np.ascontiguousarray(out[:, :, ::-1])
    return result


def person_crop(engine: FaceEngine, image: U8, face_px: int) -> U8:
    """An upper-body crop around the biggest face, scaled so the face is ``face_px`` high:
    what the pipeline hands the engine for a person track."""
    box = max(engine.detect(image), key=lambda b: b.height)
    cx, h = (box.x1 + box.x2) / 2, box.height
    x1, x2 = int(max(0, cx - 1.4 * h)), int(min(image.shape[1], cx + 1.4 * h))
    y1, y2 = int(max(0, box.y1 - 0.6 * h)), int(min(image.shape[0], box.y1 + 4.5 * h))
    return resized(np.ascontiguousarray(image[y1:y2, x1:x2]), face_px / h)


# matching ----------------------------------------------------------------------------------
KNN = {
    "alex_lacamoire": ["train/alex_lacamoire/img1.jpg", "test/alex_lacamoire1.jpg"],
    "biden": ["train/biden/biden.jpg", "train/biden/biden2.jpg"],
    "kit_harington": [
        "train/kit_harington/john1.jpeg",
        "train/kit_harington/john2.jpeg",
        "test/johnsnow_test1.jpg",
    ],
    "obama": ["train/obama/obama.jpg", "train/obama/obama2.jpg", "test/obama1.jpg"],
    "rose_leslie": ["train/rose_leslie/img1.jpg", "train/rose_leslie/img2.jpg"],
}


@pytest.fixture(scope="module")
def knn_faces(engine: FaceEngine) -> dict[str, list[Face]]:
    out: dict[str, list[Face]] = {}
    for person, files in KNN.items():
        for rel in files:
            faces = engine.faces(photo(f"knn_examples/{rel}"))
            assert len(faces) == 1, f"{rel}: {len(faces)} faces"
            out.setdefault(person, []).append(faces[0])
    return out


def test_same_person_matches_and_different_people_do_not(
    engine: FaceEngine, knn_faces: dict[str, list[Face]]
) -> None:
    assert engine.threshold == DEFAULT_THRESHOLD
    for person, faces in knn_faces.items():
        for a, b in itertools.combinations(faces, 2):
            assert similarity(a.embedding, b.embedding) >= engine.threshold, person
            assert engine.same_person(a, b)
    for (pa, fa), (pb, fb) in itertools.combinations(knn_faces.items(), 2):
        for a, b in itertools.product(fa, fb):
            assert similarity(a.embedding, b.embedding) < engine.threshold, (pa, pb)


def test_embeddings_are_unit_float32_and_similarity_is_cosine(
    knn_faces: dict[str, list[Face]],
) -> None:
    a, b = knn_faces["obama"][0], knn_faces["biden"][0]
    for f in (a, b):
        assert f.embedding.dtype == np.float32 and f.embedding.shape == (128,)
        assert abs(float(np.linalg.norm(f.embedding)) - 1.0) < 1e-5
        assert 1.0 < f.descriptor_norm < 2.0  # dlib's raw descriptors are not unit length
    assert similarity(a.embedding, a.embedding) == pytest.approx(1.0)
    assert similarity(a.embedding, b.embedding) == pytest.approx(
        float(np.dot(a.embedding, b.embedding)), abs=1e-6
    )
    # raw (unnormalised) descriptors give the same similarity
    assert similarity(a.embedding * 1.4, b.embedding) == pytest.approx(
        similarity(a.embedding, b.embedding)
    )
    gallery = np.stack([a.embedding, b.embedding])
    sims = similarities(gallery, a.embedding)
    assert sims.shape == (2,) and sims[0] == pytest.approx(1.0) and sims[1] < sims[0]
    with pytest.raises(ValueError, match="shapes"):
        similarity(a.embedding, a.embedding[:64])
    with pytest.raises(ValueError, match="zeros"):
        similarity(a.embedding, np.zeros(128, np.float32))


def test_lfw_pairs_of_the_first_fold(engine: FaceEngine) -> None:
    """The first 20 same-person and 20 different-people pairs of the official fold 1."""
    path = LFW / "pairs.txt"
    if not path.is_file():
        pytest.skip(f"shared data not present: {path}")
    lines = path.read_text().splitlines()[1:]
    per = int(path.read_text().split()[1])
    chosen = lines[:20] + lines[per : per + 20]
    right = 0
    for line in chosen:
        p = line.split()
        same = len(p) == 3
        a = (p[0], int(p[1]))
        b = (p[0], int(p[2])) if same else (p[2], int(p[3]))
        fa, fb = engine.faces(lfw(*a)), engine.faces(lfw(*b))
        assert fa and fb, line
        sim = max(similarity(x.embedding, y.embedding) for x in fa for y in fb)
        right += (sim >= engine.threshold) == same
    assert right >= 38, f"{right}/40 pairs right"


def test_landmarks_and_quality_of_a_good_photo(engine: FaceEngine) -> None:
    image = photo("obama.jpg")
    (face,) = engine.faces(image)
    box = face.box
    assert 200 < box.height < 320 and 0.5 < box.score <= 1.0
    assert len(box.landmarks) == 5
    (ra, rb), (la, lb), nose = box.landmarks[0:2], box.landmarks[2:4], box.landmarks[4]
    # sp5 order: the image-right eye's corners, the image-left eye's, then below the nose
    assert min(ra[0], rb[0]) > max(la[0], lb[0])
    assert nose[1] > max(ra[1], la[1]) and la[0] < nose[0] < ra[0]
    assert box.x1 < nose[0] < box.x2 and box.y1 < nose[1] < box.y2
    q = face.quality
    assert q.problems == () and q.fit_for_enrolment
    assert q.frontal > 0.8 and q.sharpness > 60 and q.score > 0.9
    assert face.chip.shape == (150, 150, 3) and face.chip.dtype == np.uint8
    jpeg = face.crop_jpeg(image)
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) > 1000
    assert face.chip_jpeg()[:2] == b"\xff\xd8"
    assert crop_jpeg(image, box, margin=0.0)[:2] == b"\xff\xd8"
    with pytest.raises(ValueError, match="outside"):
        crop_jpeg(image, FaceBox(5000, 5000, 5100, 5100, 1.0))


def test_faces_with_given_boxes_skips_detection(engine: FaceEngine) -> None:
    image = photo("two_people.jpg")
    boxes = engine.detect(image)
    assert len(boxes) == 2 and all(b.landmarks == () for b in boxes)
    faces = engine.faces(image, boxes[1:])
    assert len(faces) == 1 and faces[0].box.x1 == boxes[1].x1
    assert engine.faces(image, []) == []


@pytest.mark.parametrize("face_px", [44, 60])
def test_face_on_a_person_crop_is_found_and_matches(
    engine: FaceEngine, knn_faces: dict[str, list[Face]], face_px: int
) -> None:
    crop = person_crop(engine, photo("obama-720p.jpg"), face_px)
    assert max(crop.shape[:2]) < 300  # a small upper-body crop
    faces = engine.faces(crop)
    assert len(faces) == 1
    assert abs(faces[0].box.height - face_px) < 0.35 * face_px
    assert "face too small" in " ".join(faces[0].quality.problems)
    sim = similarity(knn_faces["obama"][0].embedding, faces[0].embedding)
    assert sim >= engine.threshold
    biden = max(similarity(f.embedding, faces[0].embedding) for f in knn_faces["biden"])
    assert biden < sim


def test_min_size_leaves_out_smaller_faces(engine: FaceEngine) -> None:
    image = resized(photo("obama.jpg"), 0.25)  # face about 65 px
    assert len(engine.detect(image, 40)) == 1
    assert engine.detect(image, 100) == []


def test_blazeface_finds_the_same_faces(
    blazeface: FaceEngine, engine: FaceEngine, knn_faces: dict[str, list[Face]]
) -> None:
    image = photo("two_people.jpg")
    hog = sorted(engine.detect(image), key=lambda b: b.x1)
    bf = sorted(blazeface.detect(image), key=lambda b: b.x1)
    assert len(bf) == 2
    for a, b in zip(hog, bf, strict=True):  # the same place and size, in HOG's geometry
        assert abs((a.x1 + a.x2) / 2 - (b.x1 + b.x2) / 2) < 0.2 * a.height
        assert abs(a.height - b.height) < 0.25 * a.height
    crop = person_crop(engine, photo("obama-720p.jpg"), 40)
    (face,) = blazeface.faces(crop)
    assert similarity(knn_faces["obama"][0].embedding, face.embedding) >= blazeface.threshold
    # no face in a photo's background
    assert blazeface.detect(photo("obama-1080p.jpg")[600:1080, 0:600]) == []


# enrolment ---------------------------------------------------------------------------------
def test_enrolment_accepts_a_good_photo(engine: FaceEngine) -> None:
    face = engine.enrolment_face(photo("obama.jpg"))
    assert face.quality.problems == ()


def test_enrolment_rejects_an_image_without_a_face(engine: FaceEngine) -> None:
    background = np.ascontiguousarray(photo("obama-1080p.jpg")[600:1080, 0:600])
    with pytest.raises(EnrolmentRejected, match="no face found") as err:
        engine.enrolment_face(background)
    assert err.value.reason.startswith("no face found")


def test_enrolment_rejects_two_faces(engine: FaceEngine) -> None:
    with pytest.raises(EnrolmentRejected, match="2 faces found: .*one person"):
        engine.enrolment_face(photo("two_people.jpg"))


def test_enrolment_rejects_a_small_face(engine: FaceEngine) -> None:
    small = resized(photo("obama.jpg"), 0.2)  # face about 52 px
    with pytest.raises(EnrolmentRejected, match=r"face too small: \d+ px < 80 px") as err:
        engine.enrolment_face(small)
    assert err.value.problems == (err.value.reason,)


def test_enrolment_rejects_a_blurred_face(engine: FaceEngine) -> None:
    image = photo("obama.jpg")
    blurred = np.ascontiguousarray(ndimage.gaussian_filter(image, (6, 6, 0)))
    with pytest.raises(EnrolmentRejected, match=r"blurred: sharpness [\d.]+ < 25"):
        engine.enrolment_face(blurred)
    # the same face, only blurred, still matches
    sharp, soft = engine.faces(image)[0], engine.faces(blurred)[0]
    assert soft.quality.sharpness < 0.2 * sharp.quality.sharpness
    assert soft.quality.score < sharp.quality.score


def test_enrolment_rejects_a_turned_head(engine: FaceEngine) -> None:
    with pytest.raises(EnrolmentRejected, match=r"not frontal: 0\.\d+ < 0\.50"):
        engine.enrolment_face(lfw("Fatma_Kusibeh", 1))


def test_enrolment_lists_every_problem(engine: FaceEngine) -> None:
    image = resized(
        np.ascontiguousarray(ndimage.gaussian_filter(photo("obama.jpg"), (6, 6, 0))), 0.25
    )
    with pytest.raises(EnrolmentRejected) as err:
        engine.enrolment_face(image)
    assert len(err.value.problems) == 2
    assert "face too small" in err.value.reason and "blurred" in err.value.reason


# quality rules (pure) --------------------------------------------------------------------
def test_frontal_score_from_landmarks() -> None:
    # eyes at x 40..60 and 100..120 (y 100), nose 77 px below the eye line
    frontal = ((120.0, 100.0), (100.0, 100.0), (40.0, 100.0), (60.0, 100.0), (80.0, 146.2))
    assert frontal_score(frontal) == pytest.approx(1.0, abs=0.01)
    turned = frontal[:4] + ((98.0, 146.2),)  # nose 80 % of the way to one eye
    assert frontal_score(turned) == pytest.approx(0.4, abs=0.02)
    assert frontal_score(frontal[:4] + ((110.0, 146.2),)) == 0.0  # nose under an eye
    assert frontal_score(()) == 0.0


def test_rate_combines_and_names_problems() -> None:
    rules = QualityRules()
    good = rate(120, 100, 0.95, rules)
    assert good.problems == () and good.score > 0.95
    bad = rate(38, 10, 0.3, rules)
    assert bad.problems == (
        "face too small: 38 px < 80 px",
        "blurred: sharpness 10.0 < 25",
        "not frontal: 0.30 < 0.50 (head turned)",
    )
    assert 0 < bad.score < good.score


# best shots --------------------------------------------------------------------------------
def fake_face(score: float) -> Face:
    """A Face value with a given quality score (BestShots only ranks by it)."""
    return Face(
        box=FaceBox(0, 0, 10, 10, 1.0),
        quality=FaceQuality(size=10, sharpness=50, frontal=1.0, score=score),
        embedding=np.zeros(128, np.float32),
        chip=np.zeros((150, 150, 3), np.uint8),
    )


def test_best_shots_keeps_the_best_per_track() -> None:
    shots = BestShots(per_track=2)
    assert shots.offer("t1", 1.0, fake_face(0.5))
    assert shots.offer("t1", 2.0, fake_face(0.9))
    assert shots.offer("t1", 3.0, fake_face(0.7))  # replaces 0.5
    assert not shots.offer("t1", 4.0, fake_face(0.6))
    assert shots.offer("t2", 1.5, fake_face(0.2))
    best = shots.best("t1")
    assert [s.score for s in best] == [0.9, 0.7] and [s.ts for s in best] == [2.0, 3.0]
    assert best[0].track_id == "t1"
    assert len(shots) == 2 and "t1" in shots
    done = shots.finished(["t1"])
    assert list(done) == ["t2"] and [s.score for s in done["t2"]] == [0.2]
    assert [s.score for s in shots.pop("t1")] == [0.9, 0.7]
    assert shots.pop("t1") == [] and len(shots) == 0


def test_best_shots_memory_is_bounded() -> None:
    shots = BestShots(per_track=3, max_tracks=4, min_score=0.15)
    for t in range(10):
        for k in range(5):
            shots.offer(t, float(t * 10 + k), fake_face(0.1 * k + 0.01 * t))
    assert len(shots) == 4 and shots.dropped_tracks == 6
    assert all(len(shots.best(t)) == 3 for t in range(6, 10))
    assert not shots.offer(99, 100.0, fake_face(0.1))  # under min_score: not kept
    assert 99 not in shots and len(shots) == 4
    stale = shots.idle(now=98.0, after_s=5.0)  # last faces at 64, 74, 84 and 94 s
    assert set(stale) == {6, 7, 8} and len(shots) == 1
    with pytest.raises(ValueError):
        BestShots(per_track=0)


# bad input ---------------------------------------------------------------------------------
def test_load_image_refuses_what_is_not_an_image(tmp_path: Path) -> None:
    files = tmp_path
    with pytest.raises(ImageError, match="no such file"):
        load_image(files / "missing.jpg")
    with pytest.raises(ImageError, match="not a file"):
        load_image(files)
    (files / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        load_image(files / "empty.jpg")
    with pytest.raises(ImageError, match="empty file"):
        load_image(b"")
    (files / "notes.jpg").write_text("this is not a picture\n" * 20)
    with pytest.raises(ImageError, match="not an image"):
        load_image(files / "notes.jpg")
    jpeg = (EXAMPLES / "obama.jpg").read_bytes() if (EXAMPLES / "obama.jpg").is_file() else None
    if jpeg is None:
        pytest.skip("shared data not present")
    with pytest.raises(ImageError, match="not an image"):
        load_image(jpeg[: len(jpeg) // 50])  # truncated
    clip = EXAMPLES / "short_hamilton_clip.mp4"
    if clip.is_file():
        with pytest.raises(ImageError, match="not an image"):
            load_image(clip)
    with pytest.raises(ImageError, match=r"image too large: 910x1137 pixels"):
        load_image(jpeg, max_pixels=1_000_000)
    image = load_image(jpeg)
    assert image.shape == (1137, 910, 3) and image.dtype == np.uint8


def test_arrays_are_checked(engine: FaceEngine) -> None:
    with pytest.raises(ImageError, match="numpy image"):
        check_image([[1, 2], [3, 4]])
    with pytest.raises(ImageError, match="H x W x 3 uint8"):
        engine.detect(np.zeros((100, 100, 3), np.float32))
    with pytest.raises(ImageError, match="H x W x 3 uint8"):
        engine.faces(np.zeros((100, 100, 4), np.uint8))
    grey = check_image(np.zeros((50, 60), np.uint8))
    assert grey.shape == (50, 60, 3)
    # a non-contiguous view is copied (dlib would silently find nothing in it)
    view = photo("obama.jpg")[:, ::-1]
    assert len(engine.detect(view)) == 1


def test_engine_needs_its_models(tmp_path: Path) -> None:
    with pytest.raises(FaceEngineError, match="scripts/build_models.sh") as err:
        FaceEngine(tmp_path)
    assert "shape_predictor_5_face_landmarks.dat" in str(err.value)
    (tmp_path / "shape_predictor_5_face_landmarks.dat").write_bytes(b"not a model")
    (tmp_path / "dlib_face_recognition_resnet_model_v1.dat").write_bytes(b"not a model")
    with pytest.raises(FaceEngineError, match="cannot be loaded"):
        FaceEngine(tmp_path)
    with pytest.raises(ValueError, match="threshold"):
        FaceEngine(threshold=2.0)
    with pytest.raises(ValueError, match="min_size"):
        FaceEngine(min_size=2)


def test_detectors_are_chosen_by_name(engine: FaceEngine) -> None:
    with pytest.raises(FaceEngineError, match="unknown face detector 'mtcnn'.*hog, blazeface"):
        FaceEngine(detector="mtcnn")
    with pytest.raises(FaceEngineError, match="face detector 'hog'"):
        FaceEngine(detector_options={"no_such_option": 1})
    assert engine.detector_name == "hog"
