"""Run ``python -m tf2onnx.convert`` under numpy 2.

tf2onnx 1.17.0 still calls ``np.product``, which numpy 2 removed; alias it to ``np.prod``
before tf2onnx is imported, then hand over to the converter with the same arguments:

    python tf2onnx_np2.py --tfjs nanodet.json --output nanodet.onnx --opset 13
"""

from __future__ import annotations

import runpy

import numpy as np

if not hasattr(np, "product"):
    np.product = np.prod  # type: ignore[attr-defined]

runpy.run_module("tf2onnx.convert", run_name="__main__", alter_sys=True)
