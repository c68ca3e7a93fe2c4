"""A real HTTP MJPEG camera on loopback: multipart/x-mixed-replace JPEG frames."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import av


def jpeg_frames(clip: Path, count: int = 25, width: int = 320) -> list[bytes]:
    """Decode `count` frames of a clip and encode each as a JPEG."""
    frames: list[bytes] = []
    with av.open(str(clip)) as c:
        enc = av.CodecContext.create("mjpeg", "w")
        for frame in c.decode(video=0):
            img = frame.reformat(width=width, height=width * 9 // 16, format="yuvj420p")
            if not frames:
                enc.width, enc.height, enc.pix_fmt = img.width, img.height, "yuvj420p"
                enc.time_base = c.streams.video[0].time_base
            frames.append(b"".join(bytes(p) for p in enc.encode(img)))  # type: ignore[attr-defined]
            if len(frames) == count:
                break
    return frames


class MjpegServer:
    """Serves the frames in a loop at `fps` on http://127.0.0.1:PORT/stream.mjpg."""

    def __init__(self, frames: list[bytes], fps: float = 10.0) -> None:
        self.frames = frames
        self.fps = fps
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not server._stop.is_set():
                        jpg = server.frames[i % len(server.frames)]
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(jpg)).encode()
                            + b"\r\n\r\n"
                            + jpg
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        i += 1
                        time.sleep(1 / server.fps)
                except (BrokenPipeError, ConnectionResetError):
                    return

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> MjpegServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
