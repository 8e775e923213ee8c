"""The `.flow/` store beside the Flowfile: its name, its layout, and who may write there.

Only this package knows the directory's name and what lives in it:

    .flow/manifest.sqlite   output records, the stat cache, the journal and dynamic requirements
                            (``records``, ``journal``, ``dynamic``)
    .flow/lock              cross-process locks, one byte per name (``locks``)
    .flow/completion.json   the task index read on every Tab (``index``)
    .flow/backup/           hand-edited outputs saved before flow overwrote them (``backup``)
    .flow/history.sqlite    the run history the visualiser shows (``history``)

The rest of flow imports the name and the predicates from here, and the classes lazily (a Tab
of shell completion must not load sqlite3).
"""

from __future__ import annotations

import os

# typing is not imported at run time: this module is on the path of every Tab (entry.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..fingerprint import StatRecord
    from .locks import Locks
    from .records import Manifest, Record

__all__ = ["FLOW_DIR", "Locks", "Manifest", "Record", "StatRecord", "in_store", "store_dir"]

FLOW_DIR = ".flow"
DB_NAME = "manifest.sqlite"
LOCK_NAME = "lock"
INDEX_NAME = "completion.json"
BACKUP_NAME = "backup"
HISTORY_NAME = "history.sqlite"
# SQLite's companions of the database: a symlink at any of them would redirect its writes.
DB_SIDECARS = ("-wal", "-shm", "-journal")


def store_dir(project_dir: str = "") -> str:
    """The store of the project whose Flowfile lives in ``project_dir`` (relative: the cwd)."""
    return os.path.join(project_dir, FLOW_DIR) if project_dir else FLOW_DIR


def in_store(key: str) -> bool:
    """Whether a path relative to the project (``/``-separated) lies inside the store."""
    first = key.replace(os.sep, "/").split("/", 1)[0]
    return first == FLOW_DIR


def check_layout(directory: str) -> None:
    """Raise a ManifestError when the store, or a file flow writes in it, is a symbolic link or
    not what flow puts there (a FIFO or a directory where a file belongs would hang or fail).

    flow writes only its own files: a link there (``manifest.sqlite -> ~/app.db``) would make it
    write into whatever the link points to.
    """
    import stat

    from ..errors import ManifestError

    if os.path.islink(directory):
        raise ManifestError(
            f"{directory} is a symbolic link (to {os.readlink(directory)}); flow keeps its "
            "store beside the Flowfile and will not follow it: remove it"
        )
    names = [*(DB_NAME + s for s in ("", *DB_SIDECARS)), LOCK_NAME, BACKUP_NAME]
    names += [HISTORY_NAME + s for s in ("", *DB_SIDECARS)]
    for name in names:
        path = os.path.join(directory, name)
        try:
            mode = os.lstat(path).st_mode
        except OSError:  # absent (or no directory yet): flow creates it
            continue
        if stat.S_ISLNK(mode):
            raise ManifestError(
                f"{path} is a symbolic link (to {os.readlink(path)}); flow writes only its own "
                f"files in {FLOW_DIR}/ and will not follow it: remove it"
            )
        expected = stat.S_ISDIR if name == BACKUP_NAME else stat.S_ISREG
        if not expected(mode):
            kind = "a directory" if name == BACKUP_NAME else "a regular file"
            raise ManifestError(f"{path} is not {kind}, as flow writes it: remove it")


def __getattr__(name: str) -> Any:
    # Lazy re-exports: records and locks pull in sqlite3 and fcntl, which completion never needs.
    if name in ("Manifest", "Record"):
        from . import records

        return getattr(records, name)
    if name == "Locks":
        from .locks import Locks

        return Locks
    if name == "StatRecord":
        from ..fingerprint import StatRecord

        return StatRecord
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
