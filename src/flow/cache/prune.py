"""``flow --cache URL --cache-prune SIZE``: trim a cache to SIZE, least recently used first."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..errors import EXIT_FAILED, FlowError, UsageError
from .storage import Storage, open_storage, shown

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(text: str) -> int:
    """``500MB`` (powers of 1000), ``2GiB`` or ``2G`` (powers of 1024), or plain bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise UsageError(
            f"bad size {text!r} for --cache-prune: expected a number with an optional unit, "
            "such as 500MB, 2GiB or 1G"
        )
    return int(float(m.group(1)) * _UNITS[unit])


@dataclass
class Pruned:
    """What a prune removed and what it kept."""

    entries_removed: int = 0
    objects_removed: int = 0
    bytes_removed: int = 0
    entries_kept: int = 0
    bytes_kept: int = 0


def prune(storage: Storage, limit: int) -> Pruned:
    """Keep the most recently used entries (and the objects they name) that fit in ``limit``
    bytes; remove the rest. An entry cannot be read: removed. A writer racing with a prune
    may find an object gone: that is a miss for a later run, never a wrong output."""
    objects = {name: size for name, size, _ in storage.listing("v1/cas")}
    entries = sorted(storage.listing("v1/ac"), key=lambda e: e[2], reverse=True)
    result = Pruned()
    kept: set[str] = set()
    full = False
    for name, size, _mtime in entries:
        names = None if full else _objects_of(storage, name)
        cost = size + sum(objects.get(o, 0) for o in names or () if o not in kept)
        if names is None or result.bytes_kept + cost > limit:
            full = True  # least recently used from here on: none of them is kept
            storage.delete(name)
            result.entries_removed += 1
            result.bytes_removed += size
            continue
        kept |= names
        result.entries_kept += 1
        result.bytes_kept += cost
    for name, size in objects.items():
        if name not in kept:
            storage.delete(name)
            result.objects_removed += 1
            result.bytes_removed += size
    return result


def _objects_of(storage: Storage, name: str) -> set[str] | None:
    from .artifacts import object_name

    try:
        entry = json.loads(storage.read(name) or b"")
        names = set()
        for out in entry["outputs"]:
            for f in [out] if out["type"] == "file" else out["files"]:
                names.add(object_name(f["sha256"]))
        return names
    except (ValueError, KeyError, TypeError):
        return None


def run_prune(location: str | None, size: str) -> str:
    """Prune the cache at ``location``; the line to print."""
    if not location:
        raise UsageError(
            "--cache-prune needs a cache: give --cache URL, FLOW_CACHE, or cache in [tool.flow]"
        )
    limit = parse_size(size)
    try:
        storage = open_storage(location)
        done = prune(storage, limit)
    except Exception as exc:  # noqa: BLE001 - unreachable, denied: one line, not a traceback
        error = FlowError(f"cannot prune the cache {shown(location)}: {exc or type(exc).__name__}")
        error.exit_status = EXIT_FAILED
        raise error from None
    return (
        f"flow: pruned the cache {storage.url} to {size}: removed {done.entries_removed} "
        f"entries and {done.objects_removed} objects ({_human(done.bytes_removed)}); kept "
        f"{done.entries_kept} entries ({_human(done.bytes_kept)})"
    )


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n:.1f} TB"
