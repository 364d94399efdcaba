"""Fake mirrors for the dataset tests: a local HTTP server and tiny MNIST-shaped files.

Everything listens on 127.0.0.1 only; tests never touch the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from dlscratch.datasets.idx import write_idx
from dlscratch.datasets.mnist import FILES


@dataclass
class Route:
    """How the server answers one path.

    ``content_length`` overrides the header (a lie makes a truncated response);
    ``stall`` seconds of silence, before the headers or, with ``stall_after``, after that
    many body bytes; ``location`` makes a redirect; ``barrier`` holds the answer until
    that many requests wait on it (to force downloads to overlap).
    """

    body: bytes = b""
    status: int = 200
    content_length: int | None = None
    stall: float = 0.0
    stall_after: int | None = None
    location: str | None = None
    barrier: threading.Barrier | None = None
    trickle: float = 0.0
    endless: bool = False
    send_length: bool = True


class LocalServer:
    """A threaded HTTP server on 127.0.0.1, a free port, serving ``routes`` (path -> Route).

    Unknown paths get 404. ``requests`` records every path asked for, in order.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: shutdown() waits up to one interval.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # wakes stalled handlers
        self._httpd.shutdown()
        self._httpd.server_close()

    def url(self, path: str = "") -> str:
        """Absolute URL of ``path`` (without a leading slash) on this server."""
        return f"http://127.0.0.1:{self._httpd.server_port}/{path}"

    def serve_folder(self, prefix: str, folder: Path) -> str:
        """Serve every file of ``folder`` under ``/<prefix>/``; returns that mirror URL."""
        for file in folder.iterdir():
            self.routes[f"/{prefix}/{file.name}"] = Route(file.read_bytes())
        return self.url(f"{prefix}/")


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requests.append(self.path)
            route = server.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            # The client giving up first (timeouts) is what those tests want.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, threading.BrokenBarrierError):
                _answer(self, route, server._stop)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output clean

    return Handler


def _answer(handler: BaseHTTPRequestHandler, route: Route, stop: threading.Event) -> None:
    if route.barrier is not None:
        route.barrier.wait(timeout=20)
    if route.stall_after is None:
        stop.wait(route.stall)
    handler.send_response(route.status)
    if route.location is not None:
        handler.send_header("Location", route.location)
    length = len(route.body) if route.content_length is None else route.content_length
    if route.send_length:
        handler.send_header("Content-Length", str(length))
    handler.end_headers()
    if route.endless:
        while not stop.is_set():
            handler.wfile.write(route.body)
        return
    if route.trickle:
        for byte in route.body:
            if stop.wait(route.trickle):
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
        return
    if route.stall_after is not None:
        handler.wfile.write(route.body[: route.stall_after])
        handler.wfile.flush()
        stop.wait(route.stall)
        handler.wfile.write(route.body[route.stall_after :])
    else:
        handler.wfile.write(route.body)
    # HTTP/1.0: the connection closes now, even when Content-Length promised more.


def unreachable_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def write_fake_mnist(
    folder: Path, n_train: int = 20, n_test: int = 10, *, gz: bool = True, seed: int = 0
) -> dict[str, str]:
    """Write the four MNIST files, tiny, into ``folder``; returns name -> md5 of each file.

    Images are random uint8 (N, 28, 28) including 0 and 255; labels cycle through 0..9.
    Names keep ``.gz`` only when ``gz``; the md5 keys are always the published names.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = []
    for n in (n_train, n_test):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0, 0, :2] = (0, 255)
        arrays += [images, (np.arange(n) % 10).astype(np.uint8)]
    md5 = {}
    for name, array in zip(FILES, arrays, strict=True):
        path = folder / (name if gz else name.removesuffix(".gz"))
        write_idx(path, array)
        md5[name] = hashlib.md5(path.read_bytes()).hexdigest()
    return md5
