"""A local ffmpeg process that serves a clip as a live MPEG-TS stream over HTTP (``-listen 1``)
or sends it over UDP, on 127.0.0.1, and can be killed and started again: the network source the
reconnection tests point live mode at."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def need_ffmpeg() -> str:
    """The ffmpeg binary, or skip the test saying why."""
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("ffmpeg not installed: the network-source tests serve a clip from a local ffmpeg process "
                    "(apt-get install ffmpeg)")
    return path


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamServer:
    """``protocol`` "http" (ffmpeg listens; the URL is read from it) or "udp" (ffmpeg sends to
    the port live mode listens on); the clip loops at its own pace (``-re``)."""

    def __init__(self, clip: Path, protocol: str) -> None:
        self.ffmpeg = need_ffmpeg()
        self.clip, self.protocol = Path(clip), protocol
        if protocol == "http":
            self.url = f"http://127.0.0.1:{free_port()}/stream.ts"
        else:
            self.url = f"udp://127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "StreamServer":
        target = ["-listen", "1", self.url] if self.protocol == "http" else [self.url + "?pkt_size=1316"]
        self.process = subprocess.Popen([self.ffmpeg, "-loglevel", "error", "-re", "-stream_loop", "-1", "-i",
                                         str(self.clip), "-c", "copy", "-f", "mpegts", *target])
        if self.protocol == "http":
            wait_listening(int(self.url.rsplit(":", 1)[1].split("/")[0]))
        else:
            time.sleep(0.3)
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def wait_listening(port: int, timeout: float = 20.0) -> None:
    """Wait until a TCP socket listens on ``port`` (Linux: read from /proc/net/tcp, since a test
    connection would take ffmpeg's one ``-listen 1`` client; elsewhere: a fixed pause)."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        time.sleep(1.0)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":   # 0A: LISTEN
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout:g} s")


def make_stream_clip(path: Path, seconds: float = 4.0) -> Path:
    """A small H.264 + AAC clip (a test pattern and a tone) for the server to loop."""
    subprocess.run([need_ffmpeg(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=160x90:rate=10",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", str(seconds), "-c:v", "libx264",
                    "-g", "10", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)], check=True)
    return path
