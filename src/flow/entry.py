"""The ``flow`` console script: ``--version``, a Tab and ``--list`` from the index, else click.

Importing flow.cli costs click and ~25 ms before ``main`` runs; an unchanged project's Tab or
listing needs neither (quick.py), so this module imports nothing but the stdlib's ``os`` and
``sys`` until it knows which path a command line takes.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


def main() -> NoReturn:
    """Answer what needs no click here (printing it, the one output of this module), or hand
    the command line to ``flow.cli.main``."""
    argv = sys.argv[1:]
    text = None
    if argv == ["--version"] and "_FLOW_COMPLETE" not in os.environ:
        from ._version import __version__

        text = f"flow {__version__}\n"
    elif os.environ.get("FLOW_QUICK") != "0":  # FLOW_QUICK=0: always click's path
        text = _quick(argv)
    if text is not None and _write(text):
        sys.exit(0)
    from .cli import main as cli_main

    cli_main()


def _quick(argv: list[str]) -> str | None:
    """A Tab or ``--list`` answered from the index, or None (click's path answers)."""
    try:
        if "_FLOW_COMPLETE" in os.environ:
            from .quick import complete_quickly

            return complete_quickly(os.environ)
        if "-l" in argv or "--list" in argv:
            from .quick import list_quickly

            return list_quickly(argv, os.environ)
    except Exception:  # an index that is well-formed JSON but not ours: click's path rebuilds it
        return None
    return None


def _write(text: str) -> bool:
    """Print ``text`` on a UTF-8 stdout (else click's path, which knows the other encodings)."""
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    if encoding != "utf8":
        return False
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    except BrokenPipeError:  # `flow --list | head -1`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return True
