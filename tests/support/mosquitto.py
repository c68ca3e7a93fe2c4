"""A real MQTT broker (Debian's mosquitto) on a loopback port, for the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.support.rtsp import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def mosquitto_available() -> str | None:
    return None if Path(MOSQUITTO).is_file() else f"{MOSQUITTO} not found (apt mosquitto)"


class Mosquitto:
    def __init__(self) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="cw-mqtt-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Mosquitto:
        conf = self._dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest none\n"
        )
        self._proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(5)
        shutil.rmtree(self._dir, ignore_errors=True)
