"""The visualiser's web server: the packaged page, and the run history as JSON, read-only.

The standard library's ``ThreadingHTTPServer`` is enough for a loopback tool with a handful of
viewers: no dependency, no event loop, one thread per request, and it runs in a daemon thread
beside the build (the one thread flow starts for it). Only GET and HEAD are answered; a static
file is served only when the request names one of the files shipped in ``static/`` exactly, so
no spelling of a path (``/../``, ``%2e%2e``, an absolute path) can reach anything else.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import os
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ..errors import UsageError
from ..store import history

STATIC = os.path.join(os.path.dirname(__file__), "static")
DEFAULT = ("127.0.0.1", 8082)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def parse_address(text: str | None) -> tuple[str, int]:
    """``[HOST:]PORT`` (``[::1]:8082`` for IPv6) -> (host, port); UsageError when malformed."""
    if not text:
        return DEFAULT
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if sep else DEFAULT[0]
    if not (port.isascii() and port.isdigit()) or int(port) > 65535 or (sep and not host):
        raise UsageError(
            f"--serve {text}: expected [HOST:]PORT, e.g. 8082 or 127.0.0.1:8082 "
            "(port 0 picks a free one)"
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Server:
    """The visualiser of the project whose store is ``store``, serving in a daemon thread."""

    def __init__(self, host: str, port: int, store: str) -> None:
        handler = type("Handler", (_Handler,), {"store": os.path.abspath(store)})
        server_class = _V6Server if ":" in host else ThreadingHTTPServer
        try:
            self.httpd = server_class((host, port), handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"--serve {host}:{port}: the port is already in use (another flow --serve?); "
                    "use --serve 127.0.0.1:0 for any free port"
                ) from None
            raise UsageError(
                f"--serve {host}:{port}: cannot listen there: {exc.strerror}"
            ) from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="flow-serve", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = (str(x) for x in self.httpd.server_address[:2])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _V6Server(ThreadingHTTPServer):
    import socket

    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    store = ""
    server_version = "flow"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # only report.py prints; a request log would scramble the build's lines

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        if not self._host_allowed():
            return self._send(403, b"forbidden host\n", "text/plain; charset=utf-8", head)
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            return self._file("index.html", head)
        if path.startswith("/static/"):
            return self._file(path[len("/static/") :], head)
        if path == "/api/runs":
            return self._api(lambda db: history.read_runs(db), head, [])
        if path.startswith("/api/runs/"):
            run = path[len("/api/runs/") :]
            return self._api(lambda db: history.read_run(db, run), head, None)
        self._send(404, b"not found\n", "text/plain; charset=utf-8", head)

    def _host_allowed(self) -> bool:
        """On a loopback address, answer only requests addressed to it: a web page whose name
        was re-pointed at 127.0.0.1 (DNS rebinding) must not read the API."""
        address: Any = self.server.server_address
        bound = str(address[0])
        if not is_loopback(bound):
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.strip("[]") in {"localhost", "127.0.0.1", "::1", bound}

    def do_POST(self) -> None:
        self._send(405, b"read-only\n", "text/plain; charset=utf-8")

    do_PUT = do_DELETE = do_PATCH = do_POST

    def _file(self, name: str, head: bool) -> None:
        # Exact names only: whatever the encoding of the request, nothing outside this listing.
        if name not in _static_names():
            return self._send(404, b"not found\n", "text/plain; charset=utf-8", head)
        with open(os.path.join(STATIC, name), "rb") as f:
            body = f.read()
        kind = _TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
        self._send(200, body, kind, head)

    def _api(self, read: Any, head: bool, empty: Any) -> None:
        try:
            db = history.connect_readonly(self.store)
            if db is None:
                data = empty
            else:
                with contextlib.closing(db):
                    data = read(db)
        except sqlite3.Error as exc:
            body = json.dumps({"error": f"cannot read the run history: {exc}"}).encode()
            return self._send(503, body, "application/json", head)
        if data is None:
            return self._send(404, b'{"error": "no such run"}', "application/json", head)
        self._send(200, json.dumps(data).encode(), "application/json", head)

    def _send(self, code: int, body: bytes, kind: str, head: bool = False) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for key, value in _SECURITY.items():
                self.send_header(key, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)


_names: frozenset[str] | None = None


def _static_names() -> frozenset[str]:
    global _names
    if _names is None:
        _names = frozenset(n for n in os.listdir(STATIC) if os.path.isfile(os.path.join(STATIC, n)))
    return _names
