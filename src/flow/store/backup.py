"""Copies of hand-edited outputs, saved under ``.flow/backup/`` before flow overwrites them."""

from __future__ import annotations

import os
import time
from typing import Any

from ..errors import ManifestError
from . import BACKUP_NAME


def backup(directory: str, path: str, target: Any = None) -> str:
    """Copy ``path`` (a file or a directory) under ``directory/backup/<time>/``; return where.
    A ``target`` that is not a local file saves its own copy there (``save_copy``)."""
    root = os.path.join(directory, BACKUP_NAME)
    if os.path.islink(root):
        raise ManifestError(
            f"{root} is a symbolic link; flow will not write backups through it: remove it"
        )
    path = path.rstrip("/" + os.sep) or path  # `out/` naming a link: back the link up
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rel = path.replace("://", os.sep, 1).lstrip(os.sep).replace("..", "__")
    dest = os.path.join(root, stamp, rel)
    n = 0
    while os.path.lexists(dest):  # two backups of one file within a second: keep both
        n += 1
        dest = os.path.join(root, f"{stamp}.{n}", rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.realpath(dest) != os.path.join(os.path.realpath(root), os.path.relpath(dest, root)):
        raise ManifestError(f"a symbolic link under {root} leads elsewhere: remove it")
    save_copy = getattr(target, "save_copy", None)
    if save_copy is not None:  # a remote object: downloaded by the target, which owns its I/O
        save_copy(dest)
        return dest
    import shutil  # only for a hand-edited output: keep it off every start

    if os.path.isdir(path) and not os.path.islink(path):
        # Links inside are copied as links: one pointing back up must not copy the project
        # into itself.
        shutil.copytree(path, dest, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(path, dest, follow_symlinks=False)
    return dest
