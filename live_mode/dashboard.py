"""The live dashboard: a local web page served while live mode runs (``tools/live.py --serve``).

Starlette routes over a :class:`live_mode.dashboard_state.DashboardState`:

- ``/``: the page (``live_mode/dashboard_static/``: plain HTML, CSS and JavaScript written for
  it, nothing fetched from elsewhere, no build step);
- ``/video.mjpg``: the annotated video as a multipart JPEG stream (``multipart/x-mixed-replace``)
  at the source's pace; a slow client skips frames;
- ``/api/status``: the status as JSON (:meth:`DashboardState.status`);
- ``/api/windows?since=T``: the windows (log lines) ending after source time ``T`` s (all
  without ``since``; ``after=SEQ`` instead: received after that sequence number);
- ``/api/feed``: server-sent events: ``window`` and ``source`` (drops, reconnections, audio
  missing) as they happen, each with its sequence number as the event id, so a browser that
  reconnects (``Last-Event-ID``) gets what it missed;
- ``/api/keyframes/I.jpg``: keyframe ``I`` of the latest predicted window.

:class:`DashboardServer` runs uvicorn on a thread of its own and stops with live mode. It binds
127.0.0.1 unless told otherwise; the page has no authentication, so binding another address
needs ``allow_remote`` (:func:`parse_serve_address`)."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import threading
from pathlib import Path
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core.errors import UserInputError
from live_mode.dashboard_state import DashboardState

STATIC_DIR = Path(__file__).resolve().parent / "dashboard_static"
DEFAULT_HOST = "127.0.0.1"
#: seconds between the feed's keep-alive comments (and its checks for news)
FEED_POLL_S = 0.2


class ServeAddressError(UserInputError):
    """A ``--serve`` address that is malformed, not allowed, or cannot be listened on."""


def parse_serve_address(text: str, *, allow_remote: bool = False) -> tuple[str, int]:
    """``"[HOST:]PORT"`` -> ``(host, port)`` (host default 127.0.0.1; port 0: any free one).
    A host other than a loopback address needs ``allow_remote`` (the page has no
    authentication); raises :class:`ServeAddressError` saying what is wrong."""
    host, sep, port_text = str(text).strip().rpartition(":")
    host = host.strip("[]") if sep else DEFAULT_HOST
    try:
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ServeAddressError(f"--serve: expected [HOST:]PORT with a port in 0-65535, got {text!r}") from None
    if not is_loopback(host) and not allow_remote:
        raise ServeAddressError(f"--serve {text}: binding {host} lets other machines see the page, which has no "
                                "authentication; add --allow-remote to do it anyway (or bind 127.0.0.1)")
    return host or DEFAULT_HOST, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(state: DashboardState) -> Starlette:
    """The dashboard's Starlette app over ``state`` (see the module docstring)."""

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    async def status(request: Request) -> Response:
        return JSONResponse(state.status())

    async def windows(request: Request) -> Response:
        try:
            since = request.query_params.get("since")
            after = request.query_params.get("after")
            items = state.windows_since(float(since) if since is not None else None,
                                        int(after) if after is not None else None)
        except ValueError:
            return JSONResponse({"error": "since is a time in seconds, after a sequence number"}, status_code=400)
        return JSONResponse({"windows": items, "seq": state.seq})

    async def keyframe(request: Request) -> Response:
        jpeg = state.keyframe_jpeg(int(request.path_params["index"]))
        if jpeg is None:
            return Response(status_code=404)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def video(request: Request) -> Response:
        return StreamingResponse(mjpeg_frames(state, request), media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers={"Cache-Control": "no-store"})

    async def feed(request: Request) -> Response:
        try:
            seen = int(request.headers.get("last-event-id") or request.query_params.get("after") or 0)
        except ValueError:
            seen = 0
        return StreamingResponse(feed_events(state, request, seen), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return Starlette(routes=[
        Route("/", index), Route("/api/status", status), Route("/api/windows", windows),
        Route("/api/feed", feed), Route("/api/keyframes/{index:int}.jpg", keyframe), Route("/video.mjpg", video),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ])


async def mjpeg_frames(state: DashboardState, request: Request) -> AsyncIterator[bytes]:
    """The multipart JPEG stream of one video client: the newest annotated frame whenever there
    is a new one (frames that came while the client was busy are skipped)."""
    state.add_video_client(+1)
    seen = 0
    try:
        while not state.finished and not await request.is_disconnected():
            seq, jpeg = state.frame_seq, state.frame_jpeg
            if seq > seen and jpeg is not None:
                seen = seq
                yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                       + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
            await asyncio.sleep(min(0.05, max(0.005, 0.5 / max(state.max_fps or 30.0, 1.0))))
    finally:
        state.add_video_client(-1)


async def feed_events(state: DashboardState, request: Request, seen: int) -> AsyncIterator[str]:
    """The server-sent events of one client: windows and source events after sequence number
    ``seen``, then new ones as they come; ``stopped`` when live mode has stopped."""
    yield "retry: 1000\n\n"
    idle = 0.0
    while not await request.is_disconnected():
        items = state.feed_since(seen)
        for item in items:
            seen = item["seq"]
            kind = "window" if "window" in item else "source"
            yield f"id: {seen}\nevent: {kind}\ndata: {json.dumps(item)}\n\n"
        if state.finished and not items:
            yield "event: stopped\ndata: {}\n\n"
            return
        idle = 0.0 if items else idle + FEED_POLL_S
        if idle >= 10.0:
            yield ": keep-alive\n\n"
            idle = 0.0
        await asyncio.sleep(FEED_POLL_S)


class DashboardServer:
    """The dashboard served by uvicorn on a thread of its own: :meth:`start` listens on
    ``host:port`` (raises :class:`ServeAddressError` when it cannot) and returns at once;
    :meth:`stop` ends the streams and the server (live mode calls it when it stops)."""

    def __init__(self, state: DashboardState, host: str = DEFAULT_HOST, port: int = 0) -> None:
        import uvicorn

        self.state, self.host = state, host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as e:
            self._socket.close()
            raise ServeAddressError(f"--serve {host}:{port}: cannot listen there ({e.strerror or e})") from e
        self._socket.listen(64)
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(create_app(state), log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> "DashboardServer":
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.state.finished = True
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._socket.close()
