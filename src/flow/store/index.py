"""The completion index: a small JSON file in the store, read on every Tab (see complete.py).

It is only a cache: anything wrong with it (absent, unreadable, a symlink) reads as no index,
and writing it replaces whatever is at its name rather than writing through it.
"""

from __future__ import annotations

import json
import os

from . import INDEX_NAME

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def read_index(directory: str) -> Any:
    """The completion index stored in ``directory``, or None when it is absent or unreadable."""
    if os.path.islink(directory):
        return None
    try:
        fd = os.open(os.path.join(directory, INDEX_NAME), os.O_RDONLY | _NOFOLLOW)
        with open(fd, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_index(directory: str, data: dict[str, Any]) -> None:
    """Store the completion index atomically (temporary file + rename); failures are ignored,
    since the index is only a cache."""
    if os.path.islink(directory):
        return  # never write through a symlinked store; the run itself says what is wrong
    import contextlib

    path = os.path.join(directory, INDEX_NAME)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)  # a leftover of a killed Tab, or something planted there
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        with open(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        os.replace(tmp, path)  # replaces a symlink at ``path`` itself, never its target
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)
