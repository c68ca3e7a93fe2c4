"""Face shot quality: size, sharpness, frontal pose, their combination, and the reasons a
shot is unfit for enrolment."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from citywatch.analytics.faces.types import FaceQuality, Image, Point
from citywatch.imaging import sharpness as laplacian_variance

__all__ = ["QualityRules", "chip_sharpness", "frontal_score", "rate"]

# On 400 LFW-a faces the nose lies at 0.30..0.70 of the way between the eyes (5th..95th
# percentile, median 0.50) and 0.62..0.91 eye distances below the eye line (median 0.77).
_PITCH_MEDIAN = 0.77


@dataclass(frozen=True, slots=True)
class QualityRules:
    """Limits for enrolment and the scale of the combined score.

    ``min_size``: face box height (px) an enrolment shot needs. ``min_sharpness``: below it
    a shot is "blurred" (see :func:`chip_sharpness`: most faces blurred with a Gaussian of
    sigma 2 px fall under 25, 95 % of sharp LFW-a faces are above 34). ``min_frontal``:
    below it a shot is "not frontal". ``good_size`` / ``good_sharpness``: where the score's
    size and sharpness parts reach 1."""

    min_size: float = 80.0
    min_sharpness: float = 25.0
    min_frontal: float = 0.5
    good_size: float = 100.0
    good_sharpness: float = 60.0


def chip_sharpness(chip_bgr: Image) -> float:
    """Sharpness of the aligned face (150x150), grey, central 100x100 (the face, not the
    background): variance of the Laplacian divided by the mean squared gradient, x 100. The
    ratio does not depend on light or contrast, nor on how smooth the skin is: blur takes
    away the second derivative faster than the first. On LFW-a faces (250x250 JPEG, about
    110 px faces): median 59 (5th percentile 34); after a Gaussian blur of sigma 1 px median
    30, sigma 2 px 17 (95th percentile 25); sharp photos of 100-300 px faces: 70-430."""
    grey = chip_bgr.astype(np.float32).mean(axis=2)
    h, w = grey.shape
    my, mx = h // 6, w // 6
    centre = grey[my : h - my, mx : w - mx]
    gy, gx = np.gradient(centre)
    energy = float((gx * gx + gy * gy).mean())
    if energy < 1e-3:  # a flat patch: nothing to be sharp
        return 0.0
    return 100.0 * laplacian_variance(centre) / energy


def frontal_score(landmarks: Sequence[Point]) -> float:
    """0..1 from dlib's 5 points: 1 when the nose is midway between the eyes and at its usual
    height below them; 0 when it is under one eye (yaw of about 45 degrees or more) or half
    an eye distance off its usual height (strong pitch)."""
    if len(landmarks) != 5:
        return 0.0
    p = np.asarray(landmarks, np.float64)
    eye_a, eye_b, nose = (p[0] + p[1]) / 2, (p[2] + p[3]) / 2, p[4]
    axis = eye_a - eye_b
    eye_dist = float(np.hypot(*axis))
    if eye_dist < 1e-6:
        return 0.0
    along = float(np.dot(nose - eye_b, axis)) / eye_dist**2
    below = abs(float(axis[0] * (nose - eye_b)[1] - axis[1] * (nose - eye_b)[0])) / eye_dist**2
    yaw = 1.0 - abs(along - 0.5) / 0.5
    pitch = 1.0 - abs(below - _PITCH_MEDIAN) / 0.5
    return max(0.0, min(1.0, yaw, pitch))


def rate(
    size: float, sharpness: float, frontal: float, rules: QualityRules = QualityRules()
) -> FaceQuality:
    """Combine the three measures: score = size^0.4 x sharpness^0.3 x frontal^0.3 (each part
    0..1, size and sharpness scaled by the ``good_*`` values and floored at 0.05 so that no
    part alone zeroes it), plus the enrolment problems in words."""
    size_part = max(0.05, min(1.0, size / rules.good_size))
    sharp_part = max(0.05, min(1.0, sharpness / rules.good_sharpness))
    frontal_part = max(0.05, min(1.0, frontal))
    score = math.exp(
        0.4 * math.log(size_part) + 0.3 * math.log(sharp_part) + 0.3 * math.log(frontal_part)
    )
    problems: list[str] = []
    if size < rules.min_size:
        problems.append(f"face too small: {size:.0f} px < {rules.min_size:.0f} px")
    if sharpness < rules.min_sharpness:
        problems.append(f"blurred: sharpness {sharpness:.1f} < {rules.min_sharpness:.0f}")
    if frontal < rules.min_frontal:
        problems.append(f"not frontal: {frontal:.2f} < {rules.min_frontal:.2f} (head turned)")
    return FaceQuality(
        size=float(size),
        sharpness=float(sharpness),
        frontal=float(frontal),
        score=float(score),
        problems=tuple(problems),
    )
