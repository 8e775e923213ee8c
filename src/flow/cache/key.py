"""Action keys: which tasks the cache may hold, and the key a task's outputs are filed under.

A key is a SHA-256 of canonical JSON: the task family, its significant parameters, the digest
of its code map, its inputs' content fingerprints, its output keys and the environment (the
Python version and the versions of the distributions the project's code imports). Nothing in it
names this machine: output and input keys are relative to the Flowfile's directory (an input
outside it counts by content and file name only), and no time, user or host goes in.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import sys
from typing import Any

from ..decide import Decision
from ..target import LocalTarget
from ..task import Task

# Bumped when the key's recipe or the storage layout changes: old entries are then simply misses.
FORMAT = 1


def why_not_cacheable(task: Task, d: Decision, outputs: list[Any], dynamic: bool) -> str:
    """Why the cache must not hold this task's outputs ("" when it may).

    ``dynamic``: the task has recorded dynamic requirements (what its run() yields is part of
    what it did, and a restore would not replay it).
    """
    if getattr(type(task), "cacheable", True) is False:
        return "cacheable = False"
    if not outputs:
        return "phony"
    if not d.code:  # a user's complete(): flow keeps no record to key from
        return "complete() decides it"
    if any(p.private and p.significant for _, p in task.get_params()):
        # The value must not leave this process, and the manifest's keyed hash of it is
        # different in every clone (its key is random per .flow/): no shareable key exists.
        return "a private parameter"
    if dynamic or inspect.isgeneratorfunction(type(task).run):
        return "its run() yields tasks"
    for out in outputs:
        if not isinstance(out, LocalTarget) or not _inside(out.key):
            return f"{getattr(out, 'key', None) or out!r} is not a file inside the project"
    if any(fp is None for fp in d.inputs.values()):
        return "an input has no content fingerprint"
    return ""


def _inside(key: str) -> bool:
    from ..store import in_store

    return not (os.path.isabs(key) or key == ".." or key.startswith(".." + os.sep)) and not (
        in_store(key)
    )


def recipe(task: Task, d: Decision, outputs: list[Any], env: dict[str, str]) -> dict[str, Any]:
    """What a task's key is made of, from what ``d`` saw of its parameters, code and inputs
    (kept in its entry too, to tell why two clones' keys differ)."""
    return {
        "format": FORMAT,
        "family": task.task_family,
        "params": d.params,
        "code": code_digest(d.code),
        "inputs": sorted([_portable(k), fp] for k, fp in d.inputs.items()),
        "outputs": [o.key.replace(os.sep, "/") for o in outputs],
        "env": env,
    }


def key_of(doc: dict[str, Any]) -> str:
    """The action key: a SHA-256 of the recipe as canonical JSON."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


@functools.lru_cache(maxsize=256)
def code_digest(code: str) -> str:
    """The digest a code map carries for all of it (the whole text for an old single digest)."""
    try:
        doc = json.loads(code)
    except ValueError:
        return code
    return doc.get("", code) if isinstance(doc, dict) else code


def _portable(key: str) -> str:
    """An input's key as every clone spells it: outside the project, only its file name."""
    if "://" in key:
        return key  # a URL names the same object everywhere
    if os.path.isabs(key) or key == ".." or key.startswith(".." + os.sep):
        return "outside:" + os.path.basename(key.rstrip(os.sep))
    return key.replace(os.sep, "/")


def environment(project_modules: list[Any], extra: tuple[str, ...] = ()) -> dict[str, str]:
    """The Python version and the versions of the installed distributions that the project's
    modules import (at module level or inside functions), plus ``extra`` distribution names."""
    from importlib import metadata

    env = {"python": f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"}
    top = set()
    for module in project_modules:
        top |= _imported_names(getattr(module, "__file__", None))
    owners = metadata.packages_distributions() if top else {}
    names = {dist for name in top for dist in owners.get(name, ())} | set(extra)
    for name in sorted(names):
        if name.replace("-", "_").lower() in ("flow_build",):
            continue  # flow itself: upgrading it does not change what tasks write
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name] = "absent"
    return env


def _imported_names(filename: str | None) -> set[str]:
    """The top-level names a source file imports, outside the standard library."""
    import ast

    if not filename or not filename.endswith(".py"):
        return set()
    try:
        with open(filename, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "flow"}
