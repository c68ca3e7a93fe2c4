"""The `citywatch` command on a real data directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from citywatch.cli import app

runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.output


def test_users_cameras_and_audit_verify(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path)]
    code, out = run("db", "upgrade", *d)
    assert code == 0 and "sqlite" in out
    code, out = run("user", "add", "chief", "--role", "admin", "--password-stdin", *d,
                    stdin="a long admin password\n")  # fmt: skip
    assert code == 0, out
    code, out = run("user", "add", "weak", "--role", "viewer", "--password-stdin", *d,
                    stdin="short\n")  # fmt: skip
    assert code == 2 and "at least" in out
    code, out = run("user", "add", "odd", "--role", "king", "--password-stdin", *d,
                    stdin="a long enough password\n")  # fmt: skip
    assert code == 2 and "unknown role" in out
    code, out = run("user", "list", *d)
    assert "chief\tadmin\t*" in out
    code, out = run("user", "passwd", "chief", "--password-stdin", *d, stdin="new long password\n")
    assert code == 0
    code, out = run(
        "camera", "add", "gate-1", "rtsp://10.1.1.1/stream", "--name", "Gate 1",
        "--purpose", "Gate safety", "--legal-basis", "Decision 7/2026",
        "--username", "op", "--password-env", "CAM_PW", *d,
    )  # fmt: skip
    assert code == 0, out
    code, out = run("camera", "add", "Bad Id", "rtsp://x/y", "--name", "n", "--purpose", "ppp",
                    "--legal-basis", "lll", *d)  # fmt: skip
    assert code == 2 and "invalid camera" in out
    code, out = run("camera", "list", *d)
    assert "gate-1\tGate 1\tenabled\trtsp://10.1.1.1/stream" in out
    code, out = run("camera", "remove", "gate-1", *d)
    assert code == 0
    code, out = run("camera", "remove", "gate-1", *d)
    assert code == 1 and "no camera" in out

    code, out = run("audit", "verify", *d)
    assert code == 0 and "audit log OK" in out
    db = sqlite3.connect(tmp_path / "citywatch.db")
    db.execute("UPDATE audit_log SET target = 'someone' WHERE seq = 2")
    db.commit()
    code, out = run("audit", "verify", *d)
    assert code == 1 and "BROKEN at entry 2" in out and "altered" in out


def test_malformed_config_is_refused_with_the_line(tmp_path: Path) -> None:
    cfg = tmp_path / "cw.yaml"
    cfg.write_text(
        "cameras:\n"
        "  - id: cam1\n"
        "    name: One\n"
        "    main_stream: {url: rtsp://h/s}\n"
        "    purpose: Traffic\n"
        "    legal_basis: Law 1\n"
        "    enabled: maybe\n"
    )
    code, out = run("db", "upgrade", "--config", str(cfg))
    assert code == 2
    assert f"{cfg}:7: cameras.0.enabled" in out
    assert not (tmp_path / "citywatch-data").exists()  # nothing started
