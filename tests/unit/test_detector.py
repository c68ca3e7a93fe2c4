"""The ONNX person/vehicle detector: output decoders on tiny real ONNX graphs that emit a
fixed tensor in each layout, load-time errors, and the built-in NanoDet on real images
(coco128, MOT17 frames, the sample street videos).

The NanoDet tests skip when the model is not built (``scripts/build_models.sh`` writes it
to ``$CITYWATCH_MODELS`` or ``~/.cache/citywatch/models``), the real-image tests when the
shared data is absent."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from citywatch.analytics.detector import (
    Candidates,
    Detection,
    Detector,
    DetectorError,
    batched_nms,
    decode_nanodet,
    load_detector,
    nms,
)
from citywatch.analytics.models import (
    COCO80,
    COCO91,
    ModelSpec,
    ModelSpecError,
    load_spec,
    nanodet_spec,
    spec_from_dict,
)
from citywatch.cli import app

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CITYWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
COCO = SHARED / "detection" / "coco128"
MOT = SHARED / "detection" / "mot17-mini" / "train"
VEHICLES = {"bicycle", "car", "motorcycle", "bus", "truck"}


# tiny ONNX graphs with a fixed output ------------------------------------------------------
def fixed_output_model(
    path: Path,
    outputs: dict[str, np.ndarray],
    input_shape: tuple[int, ...] = (1, 3, 640, 640),
    input_type: int = TensorProto.FLOAT,
) -> Path:
    """An ONNX model whose outputs are the given tensors (plus 0 x the mean of the input,
    so that the input is really consumed)."""
    nodes = []
    x = "images"
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [x], ["x_f"], to=TensorProto.FLOAT))
        x = "x_f"
    nodes += [
        helper.make_node("ReduceMean", [x], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    graph_outputs = []
    for name, value in outputs.items():
        inits.append(numpy_helper.from_array(value.astype(np.float32), f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "nothing"], [name]))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, value.shape))
    graph = helper.make_graph(
        nodes,
        "fixed",
        [helper.make_tensor_value_info("images", input_type, list(input_shape))],
        graph_outputs,
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def spec(path: Path, layout: str, **kw: Any) -> ModelSpec:
    return spec_from_dict({"file": str(path), "layout": layout, **kw})


BLANK_720P = np.zeros((720, 1280, 3), np.uint8)
# In a 640x640 letterbox of a 1280x720 image: scale 0.5, 140 px of padding on top.
PERSON_IN = (320.0, 320.0, 100.0, 200.0)  # cx, cy, w, h in model pixels
PERSON_OUT = (540.0, 160.0, 740.0, 560.0)  # x1, y1, x2, y2 in image pixels
CAR_IN = (100.0, 400.0, 80.0, 40.0)
CAR_OUT = (120.0, 480.0, 280.0, 560.0)


def yolo_rows(with_objectness: bool) -> np.ndarray:
    """person 0.72, a weaker duplicate of it, a car 0.5, a dog 0.9 (not reported by
    default) and a person below the threshold."""

    def row(box: tuple[float, ...], cls: int, score: float, obj: float = 0.9) -> np.ndarray:
        probs = np.zeros(80)
        probs[cls] = score / obj if with_objectness else score
        head = [*box, obj] if with_objectness else list(box)
        return np.concatenate([head, probs])

    dup = (325.0, 322.0, 100.0, 200.0)
    return np.stack(
        [
            row(CAR_IN, 2, 0.5),
            row(PERSON_IN, 0, 0.72),
            row(dup, 0, 0.6),
            row((500.0, 300.0, 50.0, 50.0), 16, 0.9),
            row((200.0, 200.0, 30.0, 60.0), 0, 0.2),
        ]
    )


def assert_boxes(found: list[Detection], expected: list[tuple[str, float, tuple[float, ...]]]):
    assert [(d.class_name, d.confidence) for d in found] == [(n, c) for n, c, _ in expected]
    for d, (_, _, box) in zip(found, expected, strict=True):
        assert d.box == pytest.approx(box, abs=0.6)
        assert d.class_id == COCO80.index(d.class_name)


def test_yolov5_layout(tmp_path: Path) -> None:
    out = yolo_rows(with_objectness=True)[None]  # (1, N, 85)
    model = fixed_output_model(tmp_path / "y5.onnx", {"output0": out})
    det = Detector(spec(model, "yolov5", width=640, height=640))
    assert_boxes(det.detect(BLANK_720P), [("person", 0.72, PERSON_OUT), ("car", 0.5, CAR_OUT)])
    # Per-class thresholds and a class chosen by COCO id.
    det = Detector(spec(model, "yolov5", width=640, height=640), classes=[2, 16])
    assert [d.class_name for d in det.detect(BLANK_720P)] == ["dog", "car"]
    det = Detector(
        spec(model, "yolov5", width=640, height=640), thresholds={"person": 0.8, "car": 0.4}
    )
    assert [d.class_name for d in det.detect(BLANK_720P)] == ["car"]


def test_yolov8_layout_both_orientations(tmp_path: Path) -> None:
    rows = yolo_rows(with_objectness=False)  # (N, 84)
    for name, out in (("y8.onnx", rows.T[None]), ("y8t.onnx", rows[None])):
        model = fixed_output_model(tmp_path / name, {"output0": out})
        det = Detector(spec(model, "yolov8", width=640, height=640))
        expected = [("person", 0.72, PERSON_OUT), ("car", 0.5, CAR_OUT)]
        assert_boxes(det.detect(BLANK_720P), expected)


def test_yolov8_normalised_boxes_and_stretch(tmp_path: Path) -> None:
    rows = yolo_rows(with_objectness=False)
    rows[:, :4] /= 640.0
    model = fixed_output_model(tmp_path / "y8n.onnx", {"output0": rows.T[None]})
    s = spec(model, "yolov8", width=640, height=640, normalised_boxes=True, resize="stretch")
    found = Detector(s).detect(BLANK_720P)
    # Stretched: x scaled by 2, y by 720 / 640.
    cx, cy, w, h = PERSON_IN
    k = 720 / 640
    person = (2 * (cx - w / 2), k * (cy - h / 2), 2 * (cx + w / 2), k * (cy + h / 2))
    assert found[0].class_name == "person"
    assert found[0].box == pytest.approx(person, abs=0.6)


def test_ssd_layout_uint8_nhwc(tmp_path: Path) -> None:
    boxes = np.array([[[0.1, 0.2, 0.5, 0.4], [0.5, 0.5, 0.9, 0.9], [0.0, 0.0, 0.2, 0.2],
                       [0.1, 0.2, 0.5, 0.4]]])  # fmt: skip
    outputs = {
        "detection_boxes": boxes,  # ymin, xmin, ymax, xmax
        "detection_scores": np.array([[0.9, 0.6, 0.8, 0.1]]),
        "detection_classes": np.array([[1.0, 3.0, 18.0, 6.0]]),  # COCO ids: person, car, dog
        "num_detections": np.array([3.0]),
    }
    model = fixed_output_model(
        tmp_path / "ssd.onnx", outputs, input_shape=(1, 300, 300, 3), input_type=TensorProto.UINT8
    )
    s = spec(model, "ssd", width=300, height=300, input_format="NHWC", resize="stretch",
             classes="coco91")  # fmt: skip
    image = np.zeros((300, 600, 3), np.uint8)
    found = Detector(s).detect(image)
    assert [(d.class_name, d.class_id, d.confidence) for d in found] == [
        ("person", 0, 0.9),
        ("car", 2, 0.6),
    ]
    assert found[0].box == pytest.approx((120, 30, 240, 150), abs=0.6)
    assert found[1].box == pytest.approx((300, 150, 540, 270), abs=0.6)


def test_ssd_output_names_must_exist(tmp_path: Path) -> None:
    model = fixed_output_model(tmp_path / "ssd.onnx", {"boxes": np.zeros((1, 4, 4))})
    with pytest.raises(DetectorError, match="SSD output 'detection_boxes' not found"):
        Detector(spec(model, "ssd", width=640, height=640))


def nanodet_outputs(width: int, height: int) -> dict[str, np.ndarray]:
    """GFL outputs for strides 8, 16, 32 with 8 bins: one person in the stride-16 level
    whose distributions put all weight on bins 3 (left), 2 (top), 4 (right), 5 (bottom)."""
    out: dict[str, np.ndarray] = {}
    for stride in (8, 16, 32):
        gw, gh = width // stride, height // stride
        scores = np.full((1, gw * gh, 80), 0.01)
        dist = np.zeros((1, gw * gh, 32))
        if stride == 16:
            cell = 5 * gw + 7  # row 5, column 7: centre (120, 88)
            scores[0, cell, 0] = 0.8
            for side, b in enumerate((3, 2, 4, 5)):
                dist[0, cell, side * 8 + b] = 50.0
        out[f"cls_{stride}"] = scores
        out[f"reg_{stride}"] = dist
    return out


def test_nanodet_dfl_decode() -> None:
    s = spec(Path("unused.onnx"), "nanodet", width=320, height=192)
    thresholds = np.full(80, 0.35, np.float32)
    cand = decode_nanodet(nanodet_outputs(320, 192), s, thresholds)
    assert cand.labels.tolist() == [0]
    assert cand.scores.tolist() == pytest.approx([0.8])
    assert cand.boxes[0].tolist() == pytest.approx([120 - 48, 88 - 32, 120 + 64, 88 + 80])


def test_nanodet_layout_in_a_graph(tmp_path: Path) -> None:
    model = fixed_output_model(
        tmp_path / "nd.onnx", nanodet_outputs(320, 192), input_shape=(1, 3, 192, 320)
    )
    s = spec(model, "nanodet", width=320, height=192, resize="stretch")
    found = Detector(s).detect(np.zeros((384, 640, 3), np.uint8))
    assert [(d.class_name, d.confidence) for d in found] == [("person", 0.8)]
    assert found[0].box == pytest.approx((144, 112, 368, 336), abs=0.6)


def test_vehicle_classes_merge_in_nms(tmp_path: Path) -> None:
    def row(cls: int, score: float) -> np.ndarray:
        r = np.zeros(84)
        r[:4] = (320, 320, 200, 120)
        r[4 + cls] = score
        return r

    out = np.stack([row(5, 0.6), row(7, 0.5), row(0, 0.4)]).T[None]  # bus, truck, person
    model = fixed_output_model(tmp_path / "y8.onnx", {"output0": out})
    s = spec(model, "yolov8", width=640, height=640)
    assert [d.class_name for d in Detector(s).detect(BLANK_720P)] == ["bus", "person"]
    unmerged = Detector(s, merge_vehicles=False).detect(BLANK_720P)
    assert [d.class_name for d in unmerged] == ["bus", "truck", "person"]


def test_nms() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    labels = np.array([0, 1, 0, 0])
    assert batched_nms(boxes, scores, labels, 0.5).tolist() == [3, 1, 2]
    assert batched_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                       np.zeros(0, np.int64), 0.5).tolist() == []  # fmt: skip
    assert Candidates.empty().boxes.shape == (0, 4)


# load-time errors ----------------------------------------------------------------------
def test_missing_builtin_model_names_the_build_script(tmp_path: Path) -> None:
    with pytest.raises(DetectorError) as err:
        Detector(nanodet_spec(tmp_path))
    assert str(tmp_path / "nanodet.onnx") in str(err.value)
    assert "scripts/build_models.sh" in str(err.value)


def test_corrupt_model(tmp_path: Path) -> None:
    bad = tmp_path / "nanodet.onnx"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(DetectorError, match="not a loadable ONNX model") as err:
        Detector(nanodet_spec(tmp_path))
    assert str(bad) in str(err.value) and "build_models.sh --force" in str(err.value)
    # A recorded sha256 that does not match is caught before loading.
    (tmp_path / "models.json").write_text(
        json.dumps({"models": [{"name": "nanodet", "sha256": "0" * 64}]})
    )
    with pytest.raises(DetectorError, match="sha256 differs"):
        Detector(nanodet_spec(tmp_path))


def test_wrong_input_shape_and_wrong_layout(tmp_path: Path) -> None:
    out = yolo_rows(with_objectness=True)[None]
    model = fixed_output_model(tmp_path / "y5.onnx", {"output0": out})
    with pytest.raises(DetectorError, match=r"has shape \[1, 3, 640, 640\].*320"):
        Detector(spec(model, "yolov5", width=320, height=320))
    with pytest.raises(DetectorError, match=r"does not hold 4 \+ 80 channels"):
        Detector(spec(model, "yolov8", width=640, height=640))
    with pytest.raises(DetectorError, match="NanoDet"):
        Detector(spec(model, "nanodet", width=640, height=640))


def test_specs(tmp_path: Path) -> None:
    model = fixed_output_model(tmp_path / "mine.onnx", {"output0": yolo_rows(True)[None]})
    (tmp_path / "mine.yaml").write_text(
        "layout: yolov5\nfile: mine.onnx\nwidth: 640\nheight: 640\n"
    )
    s = load_spec(tmp_path / "mine.onnx")
    assert (s.name, s.layout, s.path, s.classes) == ("mine", "yolov5", model, COCO80)
    assert load_spec(str(tmp_path / "mine.yaml")) == s
    assert len(load_detector(str(model)).detect(BLANK_720P)) == 2
    assert COCO91[1] == "person" and COCO91[3] == "car" and COCO91[12] == ""
    with pytest.raises(ModelSpecError, match="no model spec beside it"):
        load_spec(tmp_path / "other.onnx")
    (tmp_path / "bad.yaml").write_text("file: x.onnx\nlayout: yolov9\nwidth: 640\nheight: 640\n")
    with pytest.raises(ModelSpecError, match="bad.yaml.*layout"):
        load_spec(tmp_path / "bad.yaml")
    with pytest.raises(ModelSpecError, match="unknown model"):
        load_spec("resnet")
    with pytest.raises(DetectorError, match="unknown model"):
        load_detector("resnet")
    with pytest.raises(ValueError, match="not among the classes"):
        Detector(spec(model, "yolov5", width=640, height=640), classes=["unicorn"])


# the real NanoDet --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nanodet() -> Iterator[Detector]:
    s = load_spec("nanodet")
    if not s.path.is_file():
        pytest.skip(f"NanoDet not built ({s.path}): run scripts/build_models.sh")
    yield Detector(s, threads=1)


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not present: {path} (see ../shared/data/README.md)")
    return path


def frames(path: Path, indices: set[int]) -> Iterator[tuple[int, Any]]:
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in indices:
                yield i, f
            if i >= max(indices):
                break


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def coco_truth(stem: str, width: int, height: int) -> list[tuple[int, tuple[float, ...]]]:
    out: list[tuple[int, tuple[float, ...]]] = []
    label = COCO / "labels" / f"{stem}.txt"  # none for an image without objects
    for line in label.read_text().splitlines() if label.exists() else []:
        c, cx, cy, w, h = line.split()
        x, y, bw, bh = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
        out.append((int(c), (x - bw / 2, y - bh / 2, x + bw / 2, y + bh / 2)))
    return out


def bgr(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="bgr24")


@pytest.mark.parametrize(
    ("stem", "cls"),
    [
        ("000000000459", 0),
        ("000000000094", 2),
        ("000000000471", 5),
        ("000000000073", 3),
        ("000000000074", 1),
    ],  # fmt: skip
)
def test_nanodet_finds_the_labelled_object(nanodet: Detector, stem: str, cls: int) -> None:
    image = bgr(need(COCO / "images" / f"{stem}.jpg"))
    truth = [b for c, b in coco_truth(stem, image.shape[1], image.shape[0]) if c == cls]
    found = [d for d in nanodet.detect(image) if d.class_id == cls]
    assert found, f"no {COCO80[cls]} in {stem}"
    assert max(iou(d.box, t) for d in found for t in truth) > 0.7
    for d in found:
        assert 0 <= d.box[0] < d.box[2] <= image.shape[1]
        assert 0 <= d.box[1] < d.box[3] <= image.shape[0]


def test_nanodet_on_coco128(nanodet: Detector) -> None:
    """Precision and recall at the default threshold over all 128 images (measured with
    the built model: person P 0.81 R 0.58, vehicles P 0.83 R 0.25)."""
    stats = {"person": [0, 0, 0], "vehicle": [0, 0, 0]}  # tp, detections, truth
    for img in sorted(need(COCO / "images").glob("*.jpg")):
        image = bgr(img)
        truth = coco_truth(img.stem, image.shape[1], image.shape[0])
        found = nanodet.detect(image)
        for group, names in (("person", {"person"}), ("vehicle", VEHICLES)):
            gt = [b for c, b in truth if COCO80[c] in names]
            dets = [d for d in found if d.class_name in names]
            used: set[int] = set()
            for d in dets:
                best = max(((iou(d.box, g), j) for j, g in enumerate(gt) if j not in used),
                           default=(0.0, -1))  # fmt: skip
                if best[0] >= 0.5:
                    used.add(best[1])
            stats[group][0] += len(used)
            stats[group][1] += len(dets)
            stats[group][2] += len(gt)
    tp, n, gt = stats["person"]
    assert tp / n > 0.7 and tp / gt > 0.5, stats
    tp, n, gt = stats["vehicle"]
    assert tp / n > 0.6 and tp / gt > 0.18, stats


def test_nanodet_people_walking_past(nanodet: Detector) -> None:
    video = need(SHARED / "video" / "one-by-one-person-detection.mp4")
    hits = 0
    wanted = {120, 180, 240, 300, 360, 420}
    for _, frame in frames(video, wanted):
        people = [d for d in nanodet.detect_frame(frame) if d.class_name == "person"]
        if people:
            hits += 1
            x1, y1, x2, y2 = people[0].box
            assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 432
            assert y2 - y1 > 250 and 300 < (x1 + x2) / 2 < 600  # a walker, in the middle
            assert people[0].confidence > 0.6
    assert hits >= 5


def test_nanodet_street_cars_from_above(nanodet: Detector) -> None:
    """The sample street clip looks straight down on cars, which a COCO model rarely saw:
    they are found only now and then, and as car, bus or truck."""
    video = need(SHARED / "video" / "car-detection.mp4")
    seen = 0
    for _, frame in frames(video, set(range(0, 361, 30))):
        image = frame.to_ndarray(format="bgr24")
        vehicles = [d for d in nanodet.detect(image) if d.class_name in VEHICLES]
        for d in vehicles:
            assert d.box[2] - d.box[0] > 60 and d.box[3] - d.box[1] > 60
        seen += bool(vehicles)
    assert seen >= 1


def test_nanodet_mot17_1080p(nanodet: Detector) -> None:
    seq = need(MOT / "MOT17-09-FRCNN")
    image = bgr(seq / "img1" / "000001.jpg")
    truth = []
    for line in (seq / "gt" / "gt.txt").read_text().splitlines():
        v = [float(x) for x in line.split(",")]
        if v[0] == 1 and v[7] == 1 and v[8] >= 0.5:
            truth.append((v[2], v[3], v[2] + v[4], v[3] + v[5]))
    people = [d for d in nanodet.detect(image) if d.class_name == "person"]
    matched = sum(any(iou(d.box, t) >= 0.5 for d in people) for t in truth)
    assert matched >= len(truth) // 2, (matched, len(truth))
    assert all(d.box[2] <= 1920 and d.box[3] <= 1080 for d in people)


def test_nanodet_inputs(nanodet: Detector) -> None:
    image = bgr(need(COCO / "images" / "000000000459.jpg"))
    with av.open(str(COCO / "images" / "000000000459.jpg")) as c:
        frame = next(c.decode(video=0))
    a, b = nanodet.detect(image), nanodet.detect_frame(frame)
    assert [d.class_name for d in a] == [d.class_name for d in b]
    assert a[0].box == pytest.approx(b[0].box, abs=4)  # JPEG's YUV vs the BGR copy
    grey = nanodet.detect(image.mean(axis=2).astype(np.uint8))
    assert "person" in [d.class_name for d in grey]
    assert nanodet.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert nanodet.last_timing.total_ms >= 0
    with pytest.raises(ValueError, match="H x W x 3"):
        nanodet.detect(np.zeros((4, 4, 4), np.uint8))
    # A crop of the right half finds the same person, in whole-image pixels.
    h, w = image.shape[:2]
    person = max((d for d in a if d.class_name == "person"), key=lambda d: d.confidence)
    region = (max(0.0, person.box[0] - 40), 0.0, float(w), float(h))
    crops = nanodet.detect_crops(image, [region, (0.0, 0.0, 10.0, 10.0)])
    assert any(iou(d.box, person.box) > 0.8 for d in crops if d.class_name == "person")


def test_cli_detect_json(nanodet: Detector, tmp_path: Path) -> None:
    image = need(COCO / "images" / "000000000459.jpg")
    video = need(SHARED / "video" / "one-by-one-person-detection.mp4")
    short = tmp_path / "short.mp4"
    with av.open(str(video)) as src, av.open(str(short), "w") as dst:
        s_in = src.streams.video[0]
        s_out = dst.add_stream_from_template(s_in)
        for i, packet in enumerate(src.demux(s_in)):
            if packet.dts is None:
                continue
            packet.stream = s_out
            dst.mux(packet)
            if i >= 30:
                break
    result = CliRunner().invoke(app, ["detect", str(image), str(short), "--json", "--every", "10"])
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in result.output.splitlines()]
    assert [(i["source"], i["frame"]) for i in items][:2] == [(str(image), 0), (str(short), 0)]
    assert [i["frame"] for i in items[1:]] == list(range(0, 10 * len(items[1:]), 10))
    assert set(items[0]) == {"source", "frame", "detections", "ms"}
    first = items[0]["detections"][0]
    assert first["class"] == "person" and len(first["box"]) == 4 and first["confidence"] > 0.5
    result = CliRunner().invoke(app, ["detect", str(image), "--model", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2 and "no model spec beside it" in result.output
    result = CliRunner().invoke(app, ["detect", str(tmp_path / "missing.jpg")])
    assert result.exit_code == 1 and "cannot read" in result.output
