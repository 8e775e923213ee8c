"""Code hashes of task classes: a map of every project function, class and constant they run."""

from __future__ import annotations

import json
from typing import Any

from .codetrace import Tracer
from .fingerprint import hash_bytes

# Each dependency's hash is kept this short in the record (32 bits): enough to say *which*
# changed; whether anything changed is decided by the full digest kept with them.
_SHORT = 8


class CodeHasher:
    """Code maps of task classes: what each task's code is made of, and a hash of each part.

    A task's code is its class and the project classes it inherits from, and every project
    function, class and module-level constant their methods reference, followed transitively
    (see ``codetrace``). Comments, blank lines and docstrings do not count (functions and
    classes are hashed by their syntax trees); a constant counts by value; a class attribute
    ``version`` is folded into its class (a Parameter named version is not: it is a parameter).
    Code from outside the project (flow's own, installed packages, the standard library) does
    not count, so upgrading a library does not rebuild everything.

    The result is the ``code`` of a record, compact JSON:
    ``{"": DIGEST, "Flowfile.py": {"Squares": h, "transform()": h, "FACTOR": h}, ...}``.
    """

    def __init__(self, project_root: str) -> None:
        from .flowfile import project_files

        # The root, and the directories of the Flowfiles loaded (wherever --module, -f or a
        # symlink put them): the Flowfile and the modules beside it are always project code.
        self.files = project_files(project_root)
        self.tracer = Tracer(self.files, project_root)
        self._by_class: dict[type, str] = {}

    def __call__(self, cls: type) -> str:
        try:
            return self._by_class[cls]
        except KeyError:
            pass
        entries = self.tracer.trace(cls)
        listing = "\n".join(f"{f}\0{n}\0{d}" for f, n, d in sorted(entries))
        doc: dict[str, Any] = {"": hash_bytes(listing.encode())}
        for filename, name, digest in entries:
            doc.setdefault(filename, {})[name] = digest[:_SHORT]
        code = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
        self._by_class[cls] = code
        return code

    def is_project_file(self, filename: str | None) -> bool:
        return filename in self.files


def code_changes(old: str, new: str) -> list[str] | None:
    """What differs between two code maps, as ``transform() in Flowfile.py``: None when they
    hold the same code, ``[]`` when they differ but cannot say where (a record written before
    flow kept code maps holds a single digest)."""
    a, b = _parts(old), _parts(new)
    if a is None or b is None:
        return [] if old != new else None
    if a[0] == b[0]:
        return None
    changed = [k for k, h in b[1].items() if a[1].get(k) != h]
    changed += [k for k in a[1] if k not in b[1]]  # no longer used
    return [f"{name} in {filename}" for filename, name in changed]


def _parts(code: str) -> tuple[str, dict[tuple[str, str], str]] | None:
    """A code map's digest and its parts by (file, name); None for an old single digest."""
    try:
        doc = json.loads(code)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get(""), str):
        return None
    parts = {
        (filename, name): h
        for filename, names in doc.items()
        if filename and isinstance(names, dict)
        for name, h in names.items()
    }
    return doc[""], parts
