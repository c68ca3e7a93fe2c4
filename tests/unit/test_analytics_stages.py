"""Motion, tracking and zone logic on constructed inputs with known answers."""

from __future__ import annotations

import numpy as np

from citywatch.analytics.motion import MotionConfig, MotionDetector, merge_regions
from citywatch.analytics.tracker import Tracker, TrackerConfig, iou_matrix
from citywatch.analytics.types import Detection
from citywatch.analytics.zones import Line, Zone, ZoneEngine, crossing, inside


def frame(square_at: tuple[int, int] | None, size: int = 60) -> np.ndarray:
    img = np.full((360, 640, 3), 90, np.uint8)
    if square_at is not None:
        x, y = square_at
        img[y : y + size, x : x + size] = 230
    return img


def test_motion_finds_a_moving_square_and_ignores_a_still_scene() -> None:
    md = MotionDetector()
    assert not md.detect(frame(None)).any  # first frame: background
    assert not md.detect(frame(None)).any
    res = md.detect(frame((400, 100)))
    assert len(res.regions) == 1
    x1, y1, x2, y2 = res.regions[0]
    assert x1 <= 400 and y1 <= 100 and x2 >= 460 and y2 >= 160
    assert x2 - x1 < 120 and y2 - y1 < 120
    assert 0 < res.fraction < 0.05


def test_motion_mask_hides_an_area() -> None:
    md = MotionDetector(MotionConfig(mask=[((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0))]))
    md.detect(frame(None))
    assert not md.detect(frame((400, 100))).any  # right half masked
    assert md.detect(frame((100, 100))).any


def test_merge_regions_pads_and_joins_overlaps() -> None:
    out = merge_regions([(10, 10, 20, 20), (25, 10, 30, 20), (200, 200, 210, 210)], 5, 640, 360)
    assert sorted(out) == [(5, 5, 35, 25), (195, 195, 215, 215)]


def det(
    box: tuple[float, float, float, float], conf: float = 0.9, cls: str = "person"
) -> Detection:
    return Detection(cls, 0 if cls == "person" else 2, conf, box)


def test_tracker_keeps_ids_through_motion_and_a_short_miss() -> None:
    tr = Tracker(TrackerConfig(min_hits=3, max_lost_s=1.0), diagonal=734)
    ids = []
    for i in range(10):
        ts = i * 0.2
        dets = [
            det((100 + 10 * i, 100, 140 + 10 * i, 200)),
            det((500 - 8 * i, 50, 540 - 8 * i, 150)),
        ]
        if i == 5:
            dets = dets[:1]  # the second person is missed once
        up = tr.update(dets, ts)
        ids.append(sorted(t.id for t in up.active))
        if i == 2:
            assert len(up.started) == 2  # confirmed on the third hit
    assert ids[2] == ids[9] == [1, 2]
    assert ids[5] == [1]
    up = tr.update([], 3.5)
    assert sorted(t.id for t in up.ended) == [1, 2]


def test_weak_detections_keep_a_track_but_do_not_start_one() -> None:
    tr = Tracker(TrackerConfig(min_hits=2, max_lost_s=0.5))
    tr.update([det((0, 0, 50, 100))], 0.0)
    tr.update([det((2, 0, 52, 100))], 0.2)
    up = tr.update([det((4, 0, 54, 100), conf=0.2), det((300, 0, 350, 100), conf=0.2)], 0.4)
    assert [t.id for t in up.active] == [1]
    assert len(tr.tracks) == 1


def test_person_never_matches_a_car_but_car_and_truck_do() -> None:
    tr = Tracker(TrackerConfig(min_hits=1))
    tr.update([det((0, 0, 100, 100), cls="car")], 0.0)
    up = tr.update([det((0, 0, 100, 100), cls="truck")], 0.2)
    assert [t.id for t in up.active] == [1]
    up = tr.update([det((0, 0, 100, 100), cls="person")], 0.4)
    assert [t.id for t in up.active] == [2]


def test_parked_car_missed_for_a_while_keeps_its_id() -> None:
    cfg = TrackerConfig(min_hits=2, max_lost_s=1.0, stationary_s=3.0)
    tr = Tracker(cfg, diagonal=734)
    box = (200, 200, 300, 260)
    for i in range(25):
        tr.update([det(box, cls="car")], i * 0.2)
    assert tr.tracks[0].stationary
    up = tr.update([], 7.0)
    assert [t.id for t in up.ended] == [1]
    tr.update([], 30.0)
    up = tr.update([det((202, 201, 301, 262), cls="car")], 60.0)
    assert [t.id for t in up.active] == [1] and up.active[0].revived


def test_iou() -> None:
    m = iou_matrix([(0, 0, 10, 10)], [(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30)])
    assert np.allclose(m, [[1.0, 1 / 3, 0.0]])


def test_zone_enter_dwell_leave_and_counts() -> None:
    eng = ZoneEngine([Zone("door", ((0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.4, 0.6)), dwell_s=2)])
    kinds = []
    for i, x in enumerate([0.3, 0.45, 0.5, 0.5, 0.5, 0.55, 0.7]):
        kinds += [e.kind for e in eng.update(7, "person", (x, 0.5), i * 1.0)]
    assert kinds == ["enter", "dwell", "leave"]
    assert eng.counts == {"door:enter": 1, "door:dwell": 1, "door:leave": 1}
    assert inside((0.5, 0.5), [(0, 0), (1, 0), (1, 1), (0, 1)])


def test_line_crossing_directions() -> None:
    # A line drawn top to bottom: side A is the picture's left.
    line = Line("street", (0.5, 0.0), (0.5, 1.0))
    assert crossing(line, (0.2, 0.5), (0.8, 0.5)) == "A->B"
    assert crossing(line, (0.8, 0.5), (0.2, 0.5)) == "B->A"
    assert crossing(line, (0.2, 0.5), (0.3, 0.5)) is None
    short = Line("short", (0.5, 0.0), (0.5, 0.3))  # a move below its end does not cross it
    assert crossing(short, (0.2, 0.5), (0.8, 0.5)) is None
    # Drawn left to right: side A is below it.
    across = Line("across", (0.0, 0.5), (1.0, 0.5))
    assert crossing(across, (0.5, 0.8), (0.5, 0.2)) == "A->B"
    eng = ZoneEngine(lines=[line])
    eng.update(1, "car", (0.1, 0.5), 0.0)
    ev = eng.update(1, "car", (0.9, 0.5), 0.2)
    eng.update(2, "car", (0.9, 0.4), 0.0)
    ev += eng.update(2, "car", (0.1, 0.4), 0.2)
    assert [(e.track_id, e.direction) for e in ev] == [(1, "A->B"), (2, "B->A")]
    assert eng.counts == {"street:A->B": 1, "street:B->A": 1}
