from __future__ import annotations

from pathlib import Path

import pytest

from citywatch.config import ConfigError, StreamConfig, load_settings, parse_settings, redact_url

GOOD = """
data_dir: ./data
recording:
  segment_seconds: 6
cameras:
  - id: north-gate
    name: North gate
    location: {lat: 44.81, lon: 20.46, address: Knez Mihailova 1}
    main_stream:
      url: rtsp://10.0.0.5:554/main
      username: viewer
      password: s3cret-pass
    purpose: Pedestrian safety at the gate
    legal_basis: City decision 12/2026
"""


def test_valid_config_parses_with_defaults() -> None:
    s = parse_settings(GOOD)
    assert s.recording.segment_seconds == 6
    cam = s.cameras[0]
    assert cam.main_stream.kind == "rtsp"
    assert cam.enabled is True
    assert s.recording.retention.max_age_hours == 168


def test_relative_data_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    f = tmp_path / "cw.yaml"
    f.write_text(GOOD)
    assert load_settings(f).data_dir == (tmp_path / "data").resolve()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace("segment_seconds: 6", "segment_seconds: -1"),
            ":4: recording.segment_seconds",
        ),
        (GOOD.replace("    purpose: Pedestrian safety at the gate\n", ""), ":6: cameras.0.purpose"),
        (GOOD.replace("lat: 44.81", "lat: 144.81"), ":8: cameras.0.location.lat"),
        (GOOD.replace("url: rtsp://", "url: ftp://"), ":10: cameras.0.main_stream.url"),
        (GOOD.replace("id: north-gate", "id: North Gate!"), ":6: cameras.0.id"),
        (GOOD + "bogus: 1\n", ":15: bogus"),
    ],
)
def test_bad_field_is_named_with_its_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(text, "cw.yaml")
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings("cameras:\n  - id: a\n   name: [unclosed\n", "cw.yaml")
    assert err.value.problems[0].startswith("cw.yaml:3")


def test_duplicate_camera_ids_rejected() -> None:
    cam = GOOD.split("cameras:\n", 1)[1]
    with pytest.raises(ConfigError, match="duplicate camera id"):
        parse_settings(GOOD + cam)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml")


def test_credentials_are_joined_for_connecting_and_hidden_otherwise() -> None:
    s = StreamConfig(url="rtsp://cam.local:554/h264", username="op", password="p@ss:w/rd")
    assert s.connect_url() == "rtsp://op:p%40ss%3Aw%2Frd@cam.local:554/h264"
    assert "p@ss" not in s.safe_url() and "p@ss" not in repr(s)
    assert redact_url("rtsp://u:pw@h/x") == "rtsp://u:***@h/x"
    assert redact_url("rtsp://h/x") == "rtsp://h/x"
