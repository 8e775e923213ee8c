"""Fingerprints: xxh3_128 content hashes behind a stat cache, and code hashes of task classes."""

from __future__ import annotations

import errno
import os
import stat as _stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xxhash

from .target import TMP_SUFFIX, Info, LocalTarget, Target

# A file whose mtime/ctime lies this close to the moment it was hashed may change again within
# the filesystem's timestamp granularity without its stat changing: re-hash it next time.
# Whole-second mtimes mean a coarse filesystem (FAT keeps 2 s): allow the worst case. Finer
# ones (ext4, xfs, btrfs, APFS) tick at most every few milliseconds: a tenth of a second is ample,
# and the first no-op after a build need not re-read what the build just wrote.
RACY_NS = 2_000_000_000
FINE_RACY_NS = 100_000_000
_CHUNK = 1 << 20
_UNSEEN: Any = object()


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
    with open(path, "rb") as f:
        return hash_file_object(f)


def hash_file_object(f: Any) -> str:
    """The xxh3_128 of what a binary file object holds from where it stands, read in chunks."""
    h = xxhash.xxh3_128()
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

    def prefetch(self, targets: Any) -> None:
        """Look at many targets at once where their class can (``info_many``: a remote store's
        listing instead of a request per object); the rest are asked one by one later."""
        groups: dict[Any, list[Any]] = {}
        for t in targets:
            if _plain_local(t) or getattr(t, "key", None) is None or t.key in self._infos:
                continue
            many = getattr(type(t), "info_many", None)
            if many is not None:
                groups.setdefault(getattr(many, "__func__", many), []).append(t)
        for group in groups.values():
            self._infos.update(type(group[0]).info_many(group))

    def target(self, target: Any) -> str | None:
        """The fingerprint of a target, or None when it is missing or cannot be fingerprinted."""
        if _plain_local(target):  # the common case, without building an Info
            return self.file(target.key)
        return self.info(target).fingerprint

    def exists(self, target: Any) -> bool:
        """``target.exists()``; for a plain LocalTarget, from a stat that ``file`` then reuses."""
        if not _plain_local(target):
            if type(target).info is Target.info and getattr(target, "key", None) is None:
                # No key, no memo: do not fingerprint for nothing.
                return bool(_call_user(target, "exists"))
            return self.info(target).exists
        key = target.key
        if key in self._memo:
            return self._memo[key] is not None
        if key not in self._stats:
            self._stats[key] = _stat_or_none(target.path)
        return self._stats[key] is not None

    def file(self, path: str) -> str | None:
        """The hash of a file (or a directory's tree) at ``path``; None if it does not exist."""
        digest = self._memo.get(path, _UNSEEN)
        if digest is _UNSEEN:
            digest = self._memo[path] = self._digest(path)
        return digest  # type: ignore[return-value]

    def _digest(self, path: str) -> str | None:
        """The hash of ``path`` now (the stat cache may vouch for it), not memoized."""
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
    plain = _PLAIN.get(cls)
    if plain is None:  # asked once per class: this runs several times per target
        plain = _PLAIN[cls] = (
            issubclass(cls, LocalTarget)
            and cls.exists is LocalTarget.exists
            and cls.fingerprint is LocalTarget.fingerprint
            and cls.info is Target.info
        )
    return plain


_PLAIN: dict[type, bool] = {}


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
    from .errors import FlowError, TargetError
    from .flowfile import user_traceback

    try:
        return getattr(target, method)()
    except FlowError:  # already a clean message (a remote store's error)
        raise
    except Exception as exc:
        # Not repr(): a user's __repr__ may fail too.
        name = (
            getattr(target, "key", None) or getattr(target, "path", None) or type(target).__name__
        )
        raise TargetError(
            f"the target {name} ({type(target).__name__}): {method}() raised an error:\n"
            f"{user_traceback(exc)}"
        ) from None


# How a record keeps a private parameter: this prefix and a keyed hash of the value (never the
# value), or UNKNOWN_PRIVATE when no key exists yet (a dry run before any real one).
PRIVATE_PREFIX = "private:"
UNKNOWN_PRIVATE = PRIVATE_PREFIX + "?"


_PRIVATE: dict[type, list[Any]] = {}  # task class -> its significant private parameters


def recorded_params(task: Any, secret_key: Callable[[], bytes | None]) -> dict[str, str]:
    """The parameter values a record keeps: significant ones as canonical strings, private ones
    as a keyed BLAKE2b of the string, so a changed secret is noticed but never stored."""
    params = task.to_str_params()
    private = _PRIVATE.get(type(task))
    if private is None:  # asked once per class: most have no private parameter
        private = _PRIVATE[type(task)] = [
            (n, p) for n, p in task.get_params() if p.private and p.significant
        ]
    for name, param in private:
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
