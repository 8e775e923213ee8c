"""``flow --serve``: start the server, say where, build while serving, serve until Ctrl-C."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..store import store_dir
from .server import Server, is_loopback, parse_address


def serve(
    address: str | None, reporter: Any, build: Callable[[], int] | None, watching: bool = False
) -> int:
    """Serve the project's visualiser; run ``build`` meanwhile; keep serving until Ctrl-C
    (``watching``: the build is a watch loop, which ends with the Ctrl-C that ends serving).

    Returns the build's exit status (0 when there was none to run).
    """
    host, port = parse_address(address)
    server = Server(host, port, store_dir())
    server.start()
    if not is_loopback(host):
        reporter.warning(
            f"serving on {host}, not the loopback address: anyone who can reach this machine "
            "can read task names, parameters and output; use 127.0.0.1 unless you mean it"
        )
    reporter.text(f"flow: serving the visualiser at {server.url} (Ctrl-C to stop)")
    status = 0
    try:
        if build is not None:
            status = build()  # Ctrl-C here interrupts the build, with its exit status
            if watching:
                return status
            reporter.text(f"flow: still serving at {server.url} (Ctrl-C to stop)")
        try:
            threading.Event().wait()  # until Ctrl-C or SIGTERM
        except KeyboardInterrupt:
            reporter.text("flow: stopped serving")
    finally:
        server.stop()
    return status
