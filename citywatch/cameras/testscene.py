"""A generated test scene, for demos on machines without sample footage.

Encodes a moving pattern with a visible clock to H.264 (PyAV's bundled libx264), as an
IP camera would send it: constant frame rate, a keyframe every second, no B-frames.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_scene(
    path: Path, seconds: int = 20, fps: int = 25, width: int = 640, height: int = 360, seed: int = 0
) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.mp4")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = ((xx // 40 + yy // 40) % 2 * 40 + 60).astype(np.uint8)
    colour = rng.integers(80, 255, size=3, dtype=np.uint8)
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"g": str(fps), "bf": "0", "preset": "veryfast", "tune": "zerolatency"}
        for i in range(seconds * fps):
            img = np.repeat(base[:, :, None], 3, axis=2)
            t = i / fps
            cx = int((width - 80) * (0.5 + 0.45 * np.sin(t * 0.9)))
            cy = int((height - 80) * (0.5 + 0.4 * np.cos(t * 1.3)))
            img[cy : cy + 80, cx : cx + 80] = colour
            bar = int(width * (i % fps) / fps)
            img[height - 12 :, :bar] = (255, 255, 255)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.replace(path)
    return path
