"""Fingerprints: xxh3_128 content hashes behind a stat cache, and code hashes of task classes."""

from __future__ import annotations

import ast
import errno
import os
import re
import stat as _stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xxhash

from .parameter import Parameter
from .target import TMP_SUFFIX, Info, LocalTarget, Target

# A file whose mtime/ctime lies this close to the moment it was hashed may change again within
# the filesystem's timestamp granularity without its stat changing: re-hash it next time.
# Whole-second mtimes mean a coarse filesystem (FAT keeps 2 s): allow the worst case. Finer
# ones (ext4, xfs, btrfs, APFS) tick at most every few milliseconds: a tenth of a second is ample,
# and the first no-op after a build need not re-read what the build just wrote.
RACY_NS = 2_000_000_000
FINE_RACY_NS = 100_000_000
_CHUNK = 1 << 20


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
    """One look per target per run: existence and content fingerprint, behind the stat cache.

    ``lookup(key)`` returns a cached StatRecord or None; updated records collect in ``updates``
    for the caller to store (only the store writes ``.flow/``). A plain LocalTarget is answered
    from one ``stat`` (and a hash only when the stat cache cannot vouch for the content); any
    other target from its own ``info()``, asked once per key.
    """

    def __init__(self, lookup: Any) -> None:
        self._lookup = lookup
        self._memo: dict[str, str | None] = {}  # path -> content hash (None: absent)
        self._infos: dict[Any, Info] = {}  # key of a non-local target -> its info
        # Stats taken by exists() and not yet used by file(): one stat per file per run.
        self._stats: dict[str, os.stat_result | None] = {}
        self.updates: dict[str, StatRecord] = {}

    def info(self, target: Any) -> Info:
        """Whether ``target`` exists, and its fingerprint; asked of the target once per run."""
        if _plain_local(target):
            fp = self.file(target.key)
            return Info(fp is not None, fp)
        key = getattr(target, "key", None)
        memo_key = key if key is not None else id(target)
        try:
            return self._infos[memo_key]
        except KeyError:
            pass
        info = _user_info(target)
        if key is not None:  # a target without a key is not remembered: it may be rebuilt anew
            self._infos[memo_key] = info
        return info

    def target(self, target: Any) -> str | None:
        """The fingerprint of a target, or None when it is missing or cannot be fingerprinted."""
        return self.info(target).fingerprint

    def exists(self, target: Any) -> bool:
        """``target.exists()``; for a plain LocalTarget, from a stat that ``file`` then reuses."""
        if not _plain_local(target):
            if type(target).info is Target.info and getattr(target, "key", None) is None:
                return bool(target.exists())  # no key, no memo: do not fingerprint for nothing
            return self.info(target).exists
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
        digest = self._memo[path] = self._digest(path)
        return digest

    def _digest(self, path: str) -> str | None:
        st = self._stats.pop(path) if path in self._stats else _stat_or_none(path)
        digest: str | None
        if st is None:
            digest = None
        elif _stat.S_ISDIR(st.st_mode):
            digest = self._tree(path)
        elif not _stat.S_ISREG(st.st_mode):  # reading a FIFO would hang, a device never end
            raise OSError(errno.EINVAL, "not a regular file or directory", path)
        else:
            cached = self._lookup(path)
            if cached is not None and cached.matches(st):
                digest = cached.hash
            else:
                digest = _hash_or_none(path)
                if digest is not None:
                    self.updates[path] = StatRecord(
                        st.st_size,
                        st.st_mtime_ns,
                        st.st_ctime_ns,
                        st.st_ino,
                        digest,
                        time.time_ns(),
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
                # Not memoized: ``forget(root)`` after the task rewrote the tree must reach these.
                h.update((self._digest(full) or "-").encode() + b"\n")
        return "tree:" + h.hexdigest()

    def forget(self, key: str) -> None:
        """Drop what this run knows of one target (after a task rewrote it)."""
        self._memo.pop(key, None)
        self._stats.pop(key, None)
        self._infos.pop(key, None)

    def forget_all(self) -> None:
        """Drop everything this run looked at: a task ran, and a task may change any file (a
        clean step deletes what another task built). The stat cache still spares re-hashing."""
        self._memo.clear()
        self._stats.clear()
        self._infos.clear()

    def mtime_ns(self, path: str) -> int | None:
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return None


def _plain_local(target: Any) -> bool:
    """A LocalTarget whose existence and fingerprint are flow's own (not overridden)."""
    cls = type(target)
    return (
        isinstance(target, LocalTarget)
        and cls.exists is LocalTarget.exists
        and cls.fingerprint is LocalTarget.fingerprint
        and cls.info is Target.info
    )


def _hash_or_none(path: str) -> str | None:
    """``hash_file``, or None when the file vanished between the stat and the read."""
    try:
        return hash_file(path)
    except FileNotFoundError:
        return None


def _raise(exc: OSError) -> None:
    raise exc


def _stat_or_none(path: str) -> os.stat_result | None:
    """``os.stat``, or None where ``os.path.exists`` would say False."""
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _user_info(target: Any) -> Info:
    """A target's own ``info()`` (or ``exists()`` and ``fingerprint()``); a clean error if it fails."""
    if type(target).info is not Target.info:
        info = _call_user(target, "info")
        if not isinstance(info, Info):  # a user's info() returning a tuple or the like
            exists, fingerprint = info
            info = Info(bool(exists), fingerprint)
        return info
    if not _call_user(target, "exists"):
        return Info(False)
    return Info(True, _call_user(target, "fingerprint"))


def _call_user(target: Any, method: str) -> Any:
    from .errors import TargetError
    from .flowfile import user_traceback

    try:
        return getattr(target, method)()
    except Exception as exc:
        name = getattr(target, "key", None) or repr(target)
        raise TargetError(
            f"the target {name} ({type(target).__name__}): {method}() raised an error:\n"
            f"{user_traceback(exc)}"
        ) from None


# How a record keeps a private parameter: this prefix and a keyed hash of the value (never the
# value), or UNKNOWN_PRIVATE when no key exists yet (a dry run before any real one).
PRIVATE_PREFIX = "private:"
UNKNOWN_PRIVATE = PRIVATE_PREFIX + "?"


def recorded_params(task: Any, secret_key: Callable[[], bytes | None]) -> dict[str, str]:
    """The parameter values a record keeps: significant ones as canonical strings, private ones
    as a keyed BLAKE2b of the string, so a changed secret is noticed but never stored."""
    params = task.to_str_params()
    for name, param in task.get_params():
        if param.private and param.significant:
            value = task.param_kwargs[name]
            text = "" if value is None else param.serialize(value)
            key = secret_key()
            if key is None:
                params[name] = UNKNOWN_PRIVATE
                continue
            import hashlib  # only for tasks with private parameters: it loads OpenSSL

            digest = hashlib.blake2b(text.encode(), key=key, digest_size=16).hexdigest()
            params[name] = PRIVATE_PREFIX + digest
    return params


class CodeHasher:
    """Hashes of task classes: their own code and that of the project classes they inherit from.

    Comments, blank lines and docstrings do not count (the hash is of the syntax tree), and a class
    attribute ``version`` is folded in (a Parameter named version is not: it is a parameter).
    Classes from outside the project (flow's own, installed packages) do not count, so upgrading
    a library does not rebuild everything.
    """

    def __init__(self, project_root: str) -> None:
        from .flowfile import project_files

        # The root, and the directories of the Flowfiles loaded (wherever --module, -f or a
        # symlink put them): the Flowfile and the modules beside it are always project code.
        self.files = project_files(project_root)
        self._by_class: dict[type, str] = {}
        self._trees: dict[str, dict[str, list[ast.ClassDef]]] = {}

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
        parts.append(f"version={_version_text(cls)}")
        digest = hash_bytes("\n".join(parts).encode())
        self._by_class[cls] = digest
        return digest

    def is_project_file(self, filename: str | None) -> bool:
        return filename in self.files

    def _class_source(self, klass: type) -> str | None:
        module = sys.modules.get(klass.__module__)
        filename = getattr(module, "__file__", None)
        if not isinstance(filename, str) or not self.is_project_file(filename):
            return None
        nodes = self._classes_in(filename).get(klass.__qualname__)
        if not nodes:  # defined by exec() or otherwise without source: its names still count
            return ",".join(sorted(vars(klass)))
        return ast.dump(_live_definition(klass, nodes, filename), annotate_fields=False)

    def _classes_in(self, filename: str) -> dict[str, list[ast.ClassDef]]:
        try:
            return self._trees[filename]
        except KeyError:
            pass
        try:
            with open(filename, "rb") as f:
                module = ast.parse(f.read(), filename)
        except (OSError, SyntaxError, ValueError):
            module = ast.Module(body=[], type_ignores=[])
        found: dict[str, list[ast.ClassDef]] = {}
        stack: list[tuple[str, ast.AST]] = [("", module)]
        while stack:
            prefix, node = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    qual = prefix + child.name
                    _strip_docstrings(child)
                    found.setdefault(qual, []).append(child)
                    stack.append((qual + ".", child))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    stack.append((prefix + child.name + ".<locals>.", child))
                else:
                    stack.append((prefix, child))
        self._trees[filename] = found
        return found


def _live_definition(klass: type, nodes: list[ast.ClassDef], filename: str) -> ast.ClassDef:
    """Of several ``class`` statements with one qualified name (``if fast: class A ... else:
    class A ...``), the one that made ``klass``: the one whose lines hold its methods' code."""
    if len(nodes) > 1:
        real = os.path.realpath(filename)
        lines = [
            c.co_firstlineno for c in _own_code(klass) if os.path.realpath(c.co_filename) == real
        ]
        for node in nodes:
            if any(node.lineno <= line <= (node.end_lineno or node.lineno) for line in lines):
                return node
    return nodes[-1]  # no methods to tell by: the last, which a plain redefinition leaves live


def _own_code(klass: type) -> list[Any]:
    """The code objects of the functions defined in a class's body (methods, static and class
    methods, property accessors)."""
    import inspect  # only for a class defined twice: keep it off every start

    codes = []
    for value in vars(klass).values():
        value = inspect.unwrap(getattr(value, "__func__", value))  # staticmethod, @cache, ...
        for fn in (value, *(getattr(value, a, None) for a in ("fget", "fset", "fdel"))):
            code = getattr(fn, "__code__", None)
            if code is not None:
                codes.append(code)
    return codes


_PLAIN = (type(None), bool, int, float, complex, str, bytes)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _version_text(cls: type) -> str:
    """A class's ``version`` as the code hash sees it: the same text in every process."""
    value = getattr(cls, "version", None)
    if isinstance(value, Parameter):
        return ""  # a parameter named version: its value already counts among the parameters
    return _stable_repr(value)


def _stable_repr(value: Any) -> str:
    """``repr`` of plain data (a bump by hand changes it); for anything else its type and a repr
    without memory addresses, which would otherwise change the hash on every run."""
    if isinstance(value, _PLAIN):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}({','.join(_stable_repr(v) for v in value)})"
    if isinstance(value, (set, frozenset)):
        return f"{type(value).__name__}({','.join(sorted(_stable_repr(v) for v in value))})"
    if isinstance(value, dict):
        items = sorted(f"{_stable_repr(k)}:{_stable_repr(v)}" for k, v in value.items())
        return f"dict({','.join(items)})"
    kind = type(value)
    try:
        text = _ADDRESS.sub("", repr(value))
    except Exception:  # a user's __repr__ that fails: the type alone
        text = ""
    return f"<{kind.__module__}.{kind.__qualname__}>{text}"


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
