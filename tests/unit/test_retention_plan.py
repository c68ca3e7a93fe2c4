from __future__ import annotations

from dataclasses import dataclass

from citywatch.recording.retention import Policy, plan


@dataclass
class Seg:
    id: int
    camera_id: str
    start_ts: float
    end_ts: float
    bytes: int


NOW = 1_000_000.0


def segs(cam: str, n: int, first_id: int, size: int = 100, step: float = 10.0) -> list[Seg]:
    start = NOW - n * step
    return [
        Seg(first_id + i, cam, start + i * step, start + (i + 1) * step, size) for i in range(n)
    ]


def policy(**kw: object) -> Policy:
    base: dict[str, object] = {
        "max_age_s": None,
        "quota_bytes": None,
        "free_reserve_bytes": 0,
        "camera_max_age_s": {},
        "camera_quota_bytes": {},
    }
    base.update(kw)
    return Policy(**base)  # type: ignore[arg-type]


def test_nothing_to_do_within_limits() -> None:
    assert plan(segs("a", 10, 1), policy(max_age_s=1000.0, quota_bytes=10_000), NOW, 10**12) == []


def test_age_deletes_only_segments_older_than_max_age() -> None:
    s = segs("a", 10, 1)  # ends at NOW-90 ... NOW
    out = plan(s, policy(max_age_s=45.0), NOW, 10**12)
    assert [d.segment_id for d in out] == [1, 2, 3, 4, 5]
    assert {d.reason for d in out} == {"age"}


def test_per_camera_age_overrides_global() -> None:
    s = sorted(segs("a", 5, 1) + segs("b", 5, 10), key=lambda x: x.start_ts)
    out = plan(s, policy(max_age_s=10_000.0, camera_max_age_s={"b": 25.0}), NOW, 10**12)
    assert [d.segment_id for d in out] == [10, 11]


def test_global_quota_deletes_oldest_first_across_cameras_and_keeps_newest() -> None:
    s = sorted(segs("a", 6, 1) + segs("b", 6, 20), key=lambda x: (x.start_ts, x.id))
    out = plan(s, policy(quota_bytes=500), NOW, 10**12)
    deleted = {d.segment_id for d in out}
    assert deleted == {1, 20, 2, 21, 3, 22, 4}  # 7 oldest: 1200 -> 500 bytes
    assert all(d.reason == "quota" for d in out)
    assert 6 not in deleted and 25 not in deleted


def test_quota_never_deletes_the_newest_segment_of_a_camera() -> None:
    out = plan(segs("a", 3, 1), policy(quota_bytes=1), NOW, 10**12)
    assert [d.segment_id for d in out] == [1, 2]


def test_camera_quota_only_touches_that_camera() -> None:
    s = sorted(segs("a", 5, 1) + segs("b", 5, 10), key=lambda x: x.start_ts)
    out = plan(s, policy(camera_quota_bytes={"a": 250}), NOW, 10**12)
    assert [d.segment_id for d in out] == [1, 2, 3]
    assert {d.reason for d in out} == {"camera_quota"}


def test_free_space_reserve_deletes_until_reserve_is_met() -> None:
    out = plan(segs("a", 10, 1), policy(free_reserve_bytes=1000), NOW, free_bytes=750)
    assert [d.segment_id for d in out] == [1, 2, 3]
    assert {d.reason for d in out} == {"free_space"}


def test_age_deletions_count_towards_free_space() -> None:
    out = plan(
        segs("a", 10, 1), policy(max_age_s=75.0, free_reserve_bytes=1000), NOW, free_bytes=800
    )
    assert [(d.segment_id, d.reason) for d in out] == [(1, "age"), (2, "age")]
