"""Content-addressed objects and per-key entries: store a task's outputs, restore them verified.

Layout below the cache's root::

    v1/cas/ab/abcdef…   the bytes of one file, named by their SHA-256 (stored once)
    v1/ac/12/1234…json  an entry per action key: each output's kind, content hashes, and the
                        fingerprint flow records for it (a directory lists its files)

An object is uploaded before the entry that names it, so an entry never names an object that
was not complete; a missing or altered object is found on restore (every byte is hashed on the
way in) and makes the entry a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import stat
from collections.abc import Iterator
from typing import Any

from ..target import TMP_SUFFIX, LocalTarget
from .storage import SMALL, Storage

_CHUNK = 1 << 20


class Damaged(Exception):
    """An entry or object is not what the cache wrote: a miss, said once."""


class Unwritable(Exception):
    """The project's side of a restore failed (a directory that cannot be written): a miss
    for this task; the cache itself is fine."""


@contextlib.contextmanager
def _writing_locally() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise Unwritable(f"{exc.filename or ''}: {exc.strerror or exc}") from None


def entry_name(key: str) -> str:
    return f"v1/ac/{key[:2]}/{key}.json"


def object_name(digest: str) -> str:
    return f"v1/cas/{digest[:2]}/{digest}"


# -- storing ------------------------------------------------------------------------------------
def store(
    storage: Storage, key: str, recipe: dict[str, Any], outputs: list[LocalTarget], fps: list[Any]
) -> bool:
    """Upload the outputs' objects (those not there yet), then the entry. False when an output
    cannot be stored whole (a symbolic link or a special file in it): nothing is stored."""
    described = []
    uploads: dict[str, tuple[str, int]] = {}  # digest -> a local file with those bytes, size
    for out, fp in zip(outputs, fps, strict=True):
        desc = _describe(out.path, uploads)
        if desc is None:
            return False
        described.append({"key": out.key.replace(os.sep, "/"), "fingerprint": fp, **desc})
    for digest, (path, size) in uploads.items():
        name = object_name(digest)
        # Asking a remote store first costs a round trip or two: worth it only to spare
        # uploading a large object again.
        if (storage.cheap_exists or size > SMALL) and storage.exists(name):
            continue
        storage.put_file(name, path)
    entry = {"format": 1, "key": key, "recipe": recipe, "outputs": described}
    storage.write(entry_name(key), json.dumps(entry, sort_keys=True).encode())
    return True


def _describe(path: str, uploads: dict[str, tuple[str, int]]) -> dict[str, Any] | None:
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        digest, size = _sha256_file(path)
        uploads[digest] = (path, size)
        return {"type": "file", "sha256": digest, "size": size, "exec": _exec(st)}
    if not stat.S_ISDIR(st.st_mode):
        return None
    dirs, files = [], []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                return None
            dirs.append(_rel(full, path))
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if name.endswith(TMP_SUFFIX):
                continue  # as the fingerprint: an atomic write in progress is not content
            fst = os.lstat(full)
            if not stat.S_ISREG(fst.st_mode):
                return None
            digest, size = _sha256_file(full)
            uploads[digest] = (full, size)
            files.append({"path": _rel(full, path), "sha256": digest, "size": size})
            if _exec(fst):
                files[-1]["exec"] = True
    return {"type": "dir", "dirs": dirs, "files": files}


def _rel(full: str, root: str) -> str:
    return os.path.relpath(full, root).replace(os.sep, "/")


def _exec(st: os.stat_result) -> bool:
    return bool(st.st_mode & stat.S_IXUSR)


def _sha256_file(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


# -- reading and restoring ----------------------------------------------------------------------
def object_names(entry: dict[str, Any]) -> list[tuple[str, int]]:
    """The objects an entry names, with their sizes."""
    files = [
        f for out in entry["outputs"] for f in ([out] if out["type"] == "file" else out["files"])
    ]
    return [(object_name(f["sha256"]), f["size"]) for f in files]


class Prefetched:
    """A store whose small objects the restores will read were fetched ahead, in concurrent
    requests, up to ``budget`` bytes; each is handed out once (and verified like any other)."""

    def __init__(self, storage: Storage, wanted: list[tuple[str, int]], budget: int) -> None:
        self.storage = storage
        names = []
        for name, size in dict(wanted).items():
            if size <= SMALL and size <= budget:
                names.append(name)
                budget -= size
        found = storage.read_many(names)
        self.objects = {name: data for name, data in found.items() if data is not None}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)

    def open(self, name: str, size: int) -> Any:
        data = self.objects.pop(name, None)
        return io.BytesIO(data) if data is not None else self.storage.open(name, size)


def parse_entry(data: bytes, key: str, outputs: list[LocalTarget]) -> dict[str, Any]:
    """The entry for ``key``, checked to be one the cache wrote for these outputs."""
    try:
        entry = json.loads(data)
    except ValueError:
        raise Damaged("not JSON (truncated?)") from None
    if not isinstance(entry, dict) or entry.get("format") != 1 or entry.get("key") != key:
        raise Damaged("not an entry for this key")
    described = entry.get("outputs")
    keys = [o.key.replace(os.sep, "/") for o in outputs]
    if not isinstance(described, list) or [_get(d, "key") for d in described] != keys:
        raise Damaged("its outputs are not this task's")
    for d in described:
        _check_output(d)
    return entry


def _get(d: Any, field: str) -> Any:
    return d.get(field) if isinstance(d, dict) else None


def _check_output(d: dict[str, Any]) -> None:
    if d.get("type") == "file":
        _check_object(d)
    elif d.get("type") == "dir":
        dirs, files = d.get("dirs"), d.get("files")
        if not isinstance(dirs, list) or not isinstance(files, list):
            raise Damaged("a directory without its listing")
        for name in dirs:
            _check_relative(name)
        for f in files:
            if not isinstance(f, dict):
                raise Damaged("a damaged directory listing")
            _check_relative(f.get("path"))
            _check_object(f)
    else:
        raise Damaged("an output of unknown kind")


def _check_object(d: dict[str, Any]) -> None:
    digest, size = d.get("sha256"), d.get("size")
    if not (isinstance(digest, str) and len(digest) == 64 and _is_hex(digest)):
        raise Damaged("a bad content hash")
    if type(size) is not int or size < 0:
        raise Damaged("a bad size")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _check_relative(name: Any) -> None:
    """A path inside a directory output: never absolute, never climbing out of it."""
    if not isinstance(name, str) or not name or "\0" in name or "\\" in name:
        raise Damaged("a bad path in a directory listing")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise Damaged(f"a path that leaves its directory ({name!r})")


def restore(storage: Storage, entry: dict[str, Any], outputs: list[LocalTarget]) -> None:
    """Put the entry's outputs in place: each is fetched beside its target and verified first,
    then all are moved into place. Damaged (nothing changed) when an object is missing or wrong."""
    staged: list[tuple[LocalTarget, str]] = []
    damage: list[Damaged] = []  # every object is checked: each bad one is removed from the cache
    try:
        for out, d in zip(outputs, entry["outputs"], strict=True):
            # "out/gen/" (Luigi's habit for a directory) is staged beside "out/gen".
            staged.append((out, _stage(storage, _bare(out.path), d, damage)))
        if damage:
            raise damage[0]
    except BaseException:
        for _, tmp in staged:
            _discard(tmp)
        raise
    with _writing_locally():
        for out, tmp in staged:
            if os.path.isdir(tmp) or os.path.isdir(out.path):
                out.remove()  # a stale directory output: replaced whole, as the task would
            os.replace(tmp, _bare(out.path))


def _bare(path: str) -> str:
    """A path without its trailing slash (a directory named ``out/gen/``)."""
    return path.rstrip("/" + os.sep) or path


def _stage(storage: Storage, path: str, d: dict[str, Any], damage: list[Damaged]) -> str:
    head, tail = os.path.split(path)
    tmp = os.path.join(head, f".{tail}.{os.urandom(4).hex()}{TMP_SUFFIX}")
    try:
        if d["type"] == "file":
            with _writing_locally():
                if head:
                    os.makedirs(head, exist_ok=True)
            _fetch(storage, d, tmp, damage)
            return tmp
        with _writing_locally():
            os.makedirs(tmp)
            for name in d["dirs"]:
                os.makedirs(os.path.join(tmp, *name.split("/")), exist_ok=True)
        for f in d["files"]:
            dest = os.path.join(tmp, *f["path"].split("/"))
            with _writing_locally():
                os.makedirs(os.path.dirname(dest), exist_ok=True)
            _fetch(storage, f, dest, damage)
        return tmp
    except BaseException:
        _discard(tmp)
        raise


def _fetch(storage: Storage, d: dict[str, Any], dest: str, damage: list[Damaged]) -> None:
    """Copy one object to ``dest``, hashing it on the way; a Damaged in ``damage`` unless it is
    what was stored."""
    name = object_name(d["sha256"])
    h = hashlib.sha256()
    size = 0
    try:
        src = storage.open(name, d["size"])
    except FileNotFoundError:
        damage.append(Damaged(f"the object {name} is missing"))
        return
    with src:
        with _writing_locally():
            f = open(dest, "wb")
        with f:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
                f.write(chunk)
    if h.hexdigest() != d["sha256"] or size != d["size"]:
        with contextlib.suppress(Exception):  # heal the cache: the next store uploads it again
            storage.delete(name)
        damage.append(Damaged(f"the object {name} does not match its hash (removed it)"))
        return
    if d.get("exec"):
        os.chmod(dest, os.stat(dest).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _discard(tmp: str) -> None:
    if os.path.isdir(tmp) and not os.path.islink(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
