"""Check a converted ONNX model and record it in ``models.json`` beside it.

Runs in the model-build venv (it needs the ``onnx`` package that tf2onnx brings):

    python manifest.py MODELS_DIR NAME --source-dir DIR --package P --version V \
        --licence TEXT --converter TEXT --layout L --width W --height H ...

The manifest is what ``citywatch.analytics.models`` reads to find the built-in models; an
entry is replaced whole, other entries are kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from pathlib import Path
from typing import Any


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shapes(model: Any, values: Any) -> list[dict[str, Any]]:
    out = []
    for v in values:
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param or "?"
                for d in v.type.tensor_type.shape.dim]  # fmt: skip
        out.append({"name": v.name, "shape": dims})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("models_dir", type=Path)
    p.add_argument("name")
    p.add_argument("--file", required=True, help="the .onnx file name inside models_dir")
    p.add_argument("--source-dir", type=Path, required=True, help="extracted source files")
    p.add_argument("--registry", default="npm")
    p.add_argument("--package", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--licence", required=True)
    p.add_argument("--converter", required=True)
    p.add_argument("--layout", required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--input-format", default="NCHW")
    p.add_argument("--colour", default="RGB")
    p.add_argument("--scale", type=float, default=1 / 255)
    p.add_argument("--mean", type=float, nargs=3, default=[0.0, 0.0, 0.0])
    p.add_argument("--std", type=float, nargs=3, default=[1.0, 1.0, 1.0])
    p.add_argument("--resize", default="letterbox", choices=["letterbox", "stretch"])
    p.add_argument("--classes", default="coco80")
    args = p.parse_args()

    import onnx

    path = args.models_dir / args.file
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    inputs = shapes(model, model.graph.input)
    if len(inputs) != 1:
        print(f"{path}: expected one input, found {inputs}", file=sys.stderr)
        return 1
    dims = inputs[0]["shape"]
    hw = dims[2:4] if args.input_format == "NCHW" else dims[1:3]
    if hw != [args.height, args.width]:
        print(f"{path}: input {dims} is not {args.height}x{args.width}", file=sys.stderr)
        return 1

    entry = {
        "name": args.name,
        "file": args.file,
        "sha256": sha256(path),
        "bytes": path.stat().st_size,
        "layout": args.layout,
        "input": {
            "name": inputs[0]["name"],
            "shape": dims,
            "width": args.width,
            "height": args.height,
            "format": args.input_format,
            "colour": args.colour,
            "scale": args.scale,
            "mean": args.mean,
            "std": args.std,
            "resize": args.resize,
        },
        "outputs": shapes(model, model.graph.output),
        "classes": args.classes,
        "source": {
            "registry": args.registry,
            "package": args.package,
            "version": args.version,
            "files": {
                str(f.relative_to(args.source_dir)): sha256(f)
                for f in sorted(args.source_dir.rglob("*"))
                if f.is_file()
            },
        },
        "licence": args.licence,
        "converter": args.converter,
        "opset": [
            {"domain": o.domain or "ai.onnx", "version": o.version} for o in model.opset_import
        ],  # fmt: skip
        "built_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    manifest_path = args.models_dir / "models.json"
    manifest: dict[str, Any] = {"format": 1, "models": []}
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError:
            print(f"{manifest_path}: unreadable, rewriting it", file=sys.stderr)
    manifest["models"] = [m for m in manifest.get("models", []) if m.get("name") != args.name]
    manifest["models"].append(entry)
    manifest["models"].sort(key=lambda m: m["name"])
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(manifest_path)
    print(f"{args.name}: {path} {entry['bytes']} bytes sha256 {entry['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
