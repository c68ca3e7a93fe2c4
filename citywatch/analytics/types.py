"""Values that move between analytics stages."""

from __future__ import annotations

from dataclasses import dataclass

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in source-image pixels


@dataclass(frozen=True)
class Detection:
    class_name: str
    class_id: int  # COCO id
    confidence: float
    box: Box
