"""Many remote looks in few requests: a listing per directory, concurrent on async stores."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from .target import Info

if TYPE_CHECKING:
    from .remote import RemoteTarget

# A directory holding at least this many of the targets is listed once rather than asked
# object by object (a listing page holds 1,000 objects on S3; a HEAD answers one).
LIST_AT = 4
# Requests in flight at once on an async store.
CONCURRENCY = 32


def infos(targets: list[RemoteTarget]) -> dict[str, Info]:
    """What is known of ``targets`` after one pass of batched requests, by key. A target left
    out (its store failed, or it is a directory) is then asked on its own, which gives the
    clean error or the tree fingerprint."""
    from .remote import RemoteError, RemoteTarget

    by_fs: dict[int, tuple[Any, list[RemoteTarget]]] = {}
    for t in targets:
        cls = type(t)
        if cls.info is not RemoteTarget.info or cls.exists is not RemoteTarget.exists:
            continue  # a subclass that looks for itself
        try:
            fs = t.fs
        except RemoteError:  # asked again on its own, which reports it
            continue
        by_fs.setdefault(id(fs), (fs, []))[1].append(t)
    found: dict[str, Info] = {}
    for fs, group in by_fs.values():
        fs.invalidate_cache()  # another process may have written since fsspec last listed
        found.update(_infos_on(fs, group))
    return found


def _infos_on(fs: Any, targets: list[RemoteTarget]) -> dict[str, Info]:
    by_dir: dict[str, dict[str, RemoteTarget]] = defaultdict(dict)
    for t in targets:
        path = t.fs_path.rstrip("/")
        by_dir[path.rpartition("/")[0]][path] = t
    listed = [d for d, ts in by_dir.items() if len(ts) >= LIST_AT]
    single = [p for d, ts in by_dir.items() if len(ts) < LIST_AT for p in ts]
    answers = _ask(fs, listed, single)
    out: dict[str, Info] = {}
    for d in listed:
        answer = answers.get(("ls", d))
        if isinstance(answer, FileNotFoundError):
            out.update({t.key: Info(False) for t in by_dir[d].values()})
        elif isinstance(answer, list):
            metas = {m["name"].rstrip("/"): m for m in answer}
            for path, t in by_dir[d].items():
                _settle(out, fs, t, path, metas.get(path, FileNotFoundError()))
    for path in single:
        t = by_dir[path.rpartition("/")[0]][path]
        _settle(out, fs, t, path, answers.get(("info", path)))
    return out


def _settle(out: dict[str, Info], fs: Any, t: RemoteTarget, path: str, meta: Any) -> None:
    """Record what one answer says of ``t``; an error or a directory is left to ``t.info()``."""
    if isinstance(meta, FileNotFoundError):
        out[t.key] = Info(False)
    elif isinstance(meta, dict) and meta.get("type") != "directory":
        try:
            out[t.key] = Info(True, t._fingerprint(fs, path, meta))
        except Exception:  # noqa: BLE001 - hashing content failed: ask again on its own
            return


def _ask(fs: Any, listed: list[str], single: list[str]) -> dict[tuple[str, str], Any]:
    """Listings of ``listed`` and infos of ``single``, each an answer or the exception raised."""
    asks = [("ls", d) for d in listed] + [("info", p) for p in single]
    if getattr(fs, "async_impl", False):
        from fsspec.asyn import _run_coros_in_chunks, sync

        coros = [fs._ls(x, detail=True) if kind == "ls" else fs._info(x) for kind, x in asks]
        results = sync(
            fs.loop, _run_coros_in_chunks, coros, batch_size=CONCURRENCY, return_exceptions=True
        )
        return dict(zip(asks, results, strict=True))
    answers: dict[tuple[str, str], Any] = {}
    for kind, x in asks:
        try:
            answers[(kind, x)] = fs.ls(x, detail=True) if kind == "ls" else fs.info(x)
        except Exception as exc:  # noqa: BLE001 - kept as the answer, judged by the caller
            answers[(kind, x)] = exc
    return answers
