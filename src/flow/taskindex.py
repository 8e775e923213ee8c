"""The task index cached in `.flow/`, and the candidates for one Tab (no click, no Flowfile).

The index is keyed by the content hash of the Flowfile, the project modules it imported and the
configuration files a run would read, so a Tab (or a ``--list``) in an unchanged project never
imports the Flowfile. Every failure (no Flowfile, a broken one, a corrupt index) means "no
index", never a traceback. complete.py is the click side; quick.py answers from here.
"""

from __future__ import annotations

import os

from ._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

INDEX_VERSION = 2
KEEP = 4  # indexes kept, one per origin: `flow` and `flow -f other.py` alternate without rebuilds
# (Flowfile, directory its [tool.flow] options are looked for from, invocation directory)
Origin = tuple[str, str, str]


# -- where a command line's Flowfile is ---------------------------------------------------------
def locate(flowfile: str | None, directory: str | None) -> Origin | None:
    """The Flowfile a command line with ``-f``/``-C`` would use, found without importing it, with
    where a run would look for its configuration; None when there is none."""
    from .config import locate_flowfile

    base = os.path.abspath(directory or os.getcwd())
    if flowfile:
        path = os.path.abspath(os.path.join(base, flowfile))
        return path, os.path.dirname(path), base
    found = _configured_flowfile(base) or locate_flowfile(base)
    return (os.path.abspath(found), base, base) if found else None


def _configured_flowfile(base: str) -> str | None:
    """The Flowfile that ``[tool.flow] flowfile`` names, if any."""
    from .config import load_options

    try:
        entry = load_options(base).option("flowfile")
    except Exception:  # a broken configuration: complete from the usual Flowfile
        return None
    if entry is None or not isinstance(entry.value, str):
        return None
    return os.path.join(os.path.dirname(entry.path), entry.value)


# -- the index --------------------------------------------------------------------------------
def content_key(paths: list[str]) -> str | None:
    """xxh3_128 over the paths and contents of ``paths``; None when one cannot be read."""
    import xxhash

    h = xxhash.xxh3_128()
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        h.update(path.encode("utf-8", "surrogateescape") + b"\0")
        h.update(data + b"\0")
    return h.hexdigest()


def _config_files(origin: Origin) -> list[str]:
    """The configuration files a run would read: part of the key, so an edit refreshes it."""
    from .config import config_files

    flowfile, start, invocation = origin
    try:
        return config_files(start, os.path.dirname(flowfile), invocation)
    except Exception:
        return []


def code_stamp() -> str:
    """The names, sizes and modification times of flow's own modules, hashed: an index built by
    other code (an edited checkout, an upgrade that kept the version) is not trusted."""
    import xxhash

    h = xxhash.xxh3_64()
    try:
        with os.scandir(os.path.dirname(os.path.abspath(__file__))) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.endswith(".py"):
                    st = entry.stat()
                    h.update(f"{entry.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    except OSError:  # not a directory of files (a zip): the version alone then
        return "none"
    return h.hexdigest()


def index_key(origin: Origin, modules: list[str]) -> str | None:
    return content_key([origin[0], *modules, *_config_files(origin)])


def cached_index(origin: Origin) -> dict[str, Any] | None:
    """The index for ``origin`` in `.flow/` if it is ours, current, and its files hash to its
    key; else None."""
    data = next((d for d in _stored(origin[0]) if d.get("origin") == list(origin)), None)
    if data is None or data.get("version") != INDEX_VERSION or data.get("flow") != __version__:
        return None
    if data.get("code") != code_stamp():
        return None
    modules, tasks = data.get("modules"), data.get("tasks")
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        return None
    if not isinstance(tasks, list) or not _same_click(data.get("click")):
        return None
    if not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tasks):
        return None
    key = index_key(origin, modules)
    return data if key is not None and key == data.get("key") else None


def _same_click(facts: Any) -> bool:
    """Whether the click that built the index is installed still (an upgrade replaces it)."""
    try:
        path, mtime = facts["source"]
        return bool(os.stat(path).st_mtime_ns == mtime)
    except (OSError, ValueError, TypeError, KeyError):
        return False


def _stored(flowfile: str) -> list[dict[str, Any]]:
    """The indexes kept beside ``flowfile``, one per origin (``-f`` another file, ``-C``)."""
    from .store import store_dir
    from .store.index import read_index

    data = read_index(store_dir(os.path.dirname(flowfile)))
    if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
        return []
    entries = data.get("entries")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def store(data: dict[str, Any]) -> None:
    """Keep ``data`` first among the indexes of the last few origins."""
    from .store import store_dir
    from .store.index import write_index

    others = [e for e in _stored(data["flowfile"]) if e.get("origin") != data["origin"]]
    entries = [data, *others][:KEEP]
    write_index(
        store_dir(os.path.dirname(data["flowfile"])),
        {"version": INDEX_VERSION, "entries": entries},
    )


# -- candidates (a pure function of the index and the words typed) ---------------------------
def _loose(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


def _find(index: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The task entry called ``name`` as the command line would match it, or None."""
    tasks = index["tasks"]
    for same in (
        lambda t: t["name"] == name,
        lambda t: t["name"].rsplit(".", 1)[-1] == name,
        lambda t: t["name"].lower() == name.lower(),
        lambda t: (
            _loose(t["name"]) == _loose(name)
            or _loose(t["name"].rsplit(".", 1)[-1]) == _loose(name)
        ),
    ):
        found = [t for t in tasks if same(t)]
        if len(found) == 1:
            return found[0]  # type: ignore[no-any-return]
    return None


def _params(task: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in task["params"]} if task else {}


def _scan(
    index: dict[str, Any], tokens: list[str]
) -> tuple[dict[str, Any] | None, set[str], dict[str, Any] | None]:
    """Walk the words before the cursor: the current task, the parameters it was given, and a
    parameter whose value comes next (after ``--name``)."""
    current: dict[str, Any] | None = None
    given: set[str] = set()
    pending: dict[str, Any] | None = None

    def task() -> dict[str, Any] | None:
        nonlocal current
        if current is None and index.get("default"):
            current = _find(index, index["default"])
        return current

    for tok in tokens:
        if pending is not None:
            pending = None
            continue
        if tok.startswith("--"):
            name, eq, _ = tok[2:].partition("=")
            name = name.replace("-", "_")
            params = _params(task())
            if name.startswith("no_") and name not in params:
                name = name[3:]
            if name in params:
                given.add(name)
                if not eq and params[name]["type"] != "bool":
                    pending = params[name]
        elif tok.startswith("-"):
            continue
        elif "=" in tok:
            name = tok.split("=", 1)[0]
            if "." not in name:
                task()
                given.add(name)
        else:
            found = _find(index, tok)
            if found is not None:
                current, given = found, set()
    return task(), given, pending


def candidates(
    index: dict[str, Any], tokens: list[str], incomplete: str
) -> list[tuple[str, str | None]]:
    """The (value, help) pairs to offer for ``incomplete`` after the words ``tokens``."""
    current, given, pending = _scan(index, tokens)
    if pending is not None:
        return [(v, None) for v in pending["choices"] if v.startswith(incomplete)]
    if incomplete.startswith("-"):
        return [
            (f"--{p['name']}", p["description"] or p["type"])
            for p in _params(current).values()
            if p["name"] not in given and f"--{p['name']}".startswith(incomplete)
        ]
    if "=" in incomplete:
        name, _, prefix = incomplete.partition("=")
        task = current
        pname = name
        if "." in name:
            family, _, pname = name.rpartition(".")
            task = _find(index, family)
        param = _params(task).get(pname)
        if param is None:
            return []
        return [(f"{name}={v}", None) for v in param["choices"] if v.startswith(prefix)]
    low = incomplete.lower()
    out = [(t["name"], t["doc"]) for t in index["tasks"] if t["name"].lower().startswith(low)]
    free = [p for p in _params(current).values() if p["name"] not in given]
    matching = [p for p in free if p["name"].startswith(incomplete)]
    if len(matching) == 1 and not out:
        # One parameter left to offer: give its values too, so the shell inserts "name=" and
        # waits (a single "name=" candidate would get a space appended after it).
        p = matching[0]
        values = p["choices"] or ([p["default"]] if p["default"] is not None else [])
        return [(f"{p['name']}={v}", p["description"]) for v in values] or [
            (f"{p['name']}=", p["description"] or p["type"])
        ]
    out += [(f"{p['name']}=", p["description"] or p["type"]) for p in matching]
    return out


def join_equals(args: list[str], incomplete: str) -> tuple[list[str], str, bool]:
    """Bash splits ``n=tr`` into ``n``, ``=``, ``tr`` (COMP_WORDBREAKS): the words joined back,
    the word being completed, and whether the shell's own word is what follows the ``=`` (then
    bash wants the values alone)."""
    words: list[str] = []
    glue = False
    for word in [*args, incomplete]:
        if word == "=" and words:
            words[-1] += "="
            glue = True
        elif glue:
            words[-1] += word
            glue = False
        else:
            words.append(word)
    return words[:-1], words[-1], glue or incomplete != words[-1]
