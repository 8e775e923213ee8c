"""Fingerprints: xxh3_128 content hashes behind a stat cache, and code hashes of task classes."""

from __future__ import annotations

import ast
import errno
import os
import stat as _stat
import sys
import time
from dataclasses import dataclass
from typing import Any

import xxhash

from .target import TMP_SUFFIX, LocalTarget

# A file whose mtime/ctime lies this close to the moment it was hashed may change again within
# the filesystem's timestamp granularity without its stat changing: re-hash it next time.
# Whole-second mtimes mean a coarse filesystem (FAT keeps 2 s): allow the worst case. Finer
# ones (ext4, xfs, btrfs, APFS) tick at most every few milliseconds: a tenth of a second is ample,
# and the first no-op after a build need not re-read what the build just wrote.
RACY_NS = 2_000_000_000
FINE_RACY_NS = 100_000_000
_CHUNK = 1 << 20
_FLOW_PKG = os.path.dirname(os.path.realpath(__file__)) + os.sep


@dataclass(slots=True)
class StatRecord:
    """What a file looked like when it was hashed."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    hash: str
    checked_ns: int

    def matches(self, st: os.stat_result) -> bool:
        return (
            self.size == st.st_size
            and self.mtime_ns == st.st_mtime_ns
            and self.ctime_ns == st.st_ctime_ns
            and self.ino == st.st_ino
            and self.checked_ns - max(st.st_mtime_ns, st.st_ctime_ns) > _racy_window(st)
        )


def _racy_window(st: os.stat_result) -> int:
    return RACY_NS if st.st_mtime_ns % 1_000_000_000 == 0 else FINE_RACY_NS


def hash_bytes(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def hash_file(path: str) -> str:
    """The xxh3_128 of a file's content, read in chunks."""
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class Fingerprinter:
    """Content fingerprints of targets for one run, behind the manifest's stat cache.

    ``lookup(key)`` returns a cached StatRecord or None; updated records collect in ``updates``
    for the caller to store (only the manifest writes ``.flow/``).
    """

    def __init__(self, lookup: Any) -> None:
        self._lookup = lookup
        self._memo: dict[str, str | None] = {}
        # Stats taken by exists() and not yet used by file(): one stat per file per run.
        self._stats: dict[str, os.stat_result | None] = {}
        self.updates: dict[str, StatRecord] = {}

    def target(self, target: Any) -> str | None:
        """The fingerprint of a target, or None when it is missing or cannot be fingerprinted."""
        if isinstance(target, LocalTarget):
            return self.file(target.key)
        fp = getattr(target, "fingerprint", None)
        if fp is None:
            return None
        key = getattr(target, "key", None)
        if key is not None and key in self._memo:
            return self._memo[key]
        value = _user_fingerprint(target, fp)
        if key is not None:
            self._memo[key] = value
        return value  # type: ignore[no-any-return]

    def exists(self, target: Any) -> bool:
        """``target.exists()``; for a plain LocalTarget, from a stat that ``file`` then reuses."""
        if type(target).exists is not LocalTarget.exists:
            return bool(target.exists())
        key = target.key
        if key in self._memo:
            return self._memo[key] is not None
        if key not in self._stats:
            self._stats[key] = _stat_or_none(target.path)
        return self._stats[key] is not None

    def file(self, path: str) -> str | None:
        """The hash of a file (or a directory's tree) at ``path``; None if it does not exist."""
        try:
            return self._memo[path]
        except KeyError:
            pass
        st = self._stats.pop(path) if path in self._stats else _stat_or_none(path)
        if st is None:
            self._memo[path] = None
            return None
        if _stat.S_ISDIR(st.st_mode):
            digest = self._tree(path)
        elif not _stat.S_ISREG(st.st_mode):  # reading a FIFO would hang, a device never end
            raise OSError(errno.EINVAL, "not a regular file or directory", path)
        else:
            cached = self._lookup(path)
            if cached is not None and cached.matches(st):
                digest = cached.hash
            else:
                digest = hash_file(path)
                self.updates[path] = StatRecord(
                    st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, digest, time.time_ns()
                )
        self._memo[path] = digest
        return digest

    def _tree(self, root: str) -> str:
        h = xxhash.xxh3_128()
        for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(TMP_SUFFIX):
                    continue
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root)
                h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
                h.update((self.file(full) or "-").encode() + b"\n")
        return "tree:" + h.hexdigest()

    def forget(self, path: str) -> None:
        """Drop what this run knows of a path (after a task rewrote it)."""
        self._memo.pop(path, None)
        self._stats.pop(path, None)

    def mtime_ns(self, path: str) -> int | None:
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return None


def _raise(exc: OSError) -> None:
    raise exc


def _stat_or_none(path: str) -> os.stat_result | None:
    """``os.stat``, or None where ``os.path.exists`` would say False."""
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _user_fingerprint(target: Any, fp: Any) -> str | None:
    """A custom target's own fingerprint; None while it does not exist, a clean error if it fails."""
    from .errors import FlowError
    from .flowfile import user_traceback

    try:
        if not target.exists():
            return None
        return fp()  # type: ignore[no-any-return]
    except Exception as exc:
        raise FlowError(
            f"{target!r}.fingerprint() raised an error:\n{user_traceback(exc)}"
        ) from None


class CodeHasher:
    """Hashes of task classes: their own code and that of the project classes they inherit from.

    Comments, blank lines and docstrings do not count (the hash is of the syntax tree), and a class
    attribute ``version`` is folded in. Classes from outside the project (flow's own, installed
    packages) do not count, so upgrading a library does not rebuild everything.
    """

    def __init__(self, project_root: str) -> None:
        self.root = os.path.realpath(project_root) + os.sep
        self._by_class: dict[type, str] = {}
        self._trees: dict[str, dict[str, ast.ClassDef]] = {}

    def __call__(self, cls: type) -> str:
        try:
            return self._by_class[cls]
        except KeyError:
            pass
        parts = []
        for klass in cls.__mro__:
            source = self._class_source(klass)
            if source is not None:
                parts.append(f"{klass.__qualname__}:{source}")
        parts.append(f"version={getattr(cls, 'version', None)!r}")
        digest = hash_bytes("\n".join(parts).encode())
        self._by_class[cls] = digest
        return digest

    def is_project_file(self, filename: str | None) -> bool:
        if not filename:
            return False
        real = os.path.realpath(filename)
        return (
            real.startswith(self.root)
            and not real.startswith(_FLOW_PKG)  # flow's own source, even in a checkout of flow
            and "site-packages" not in real
            and "dist-packages" not in real
        )

    def _class_source(self, klass: type) -> str | None:
        module = sys.modules.get(klass.__module__)
        filename = getattr(module, "__file__", None)
        if not self.is_project_file(filename):
            return None
        tree = self._classes_in(filename)  # type: ignore[arg-type]
        node = tree.get(klass.__qualname__)
        if node is None:  # defined by exec() or otherwise without source: its names still count
            return ",".join(sorted(vars(klass)))
        return ast.dump(node, annotate_fields=False)

    def _classes_in(self, filename: str) -> dict[str, ast.ClassDef]:
        try:
            return self._trees[filename]
        except KeyError:
            pass
        try:
            with open(filename, "rb") as f:
                module = ast.parse(f.read(), filename)
        except (OSError, SyntaxError, ValueError):
            module = ast.Module(body=[], type_ignores=[])
        found: dict[str, ast.ClassDef] = {}
        stack: list[tuple[str, ast.AST]] = [("", module)]
        while stack:
            prefix, node = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    qual = prefix + child.name
                    _strip_docstrings(child)
                    found[qual] = child
                    stack.append((qual + ".", child))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    stack.append((prefix + child.name + ".<locals>.", child))
                else:
                    stack.append((prefix, child))
        self._trees[filename] = found
        return found


def _strip_docstrings(cls_node: ast.ClassDef) -> None:
    """Remove the docstrings of a class and of everything inside it (they are not code)."""
    for node in ast.walk(cls_node):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
