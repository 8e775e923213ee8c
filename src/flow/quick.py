"""Answers from the cached task index, without click or the Flowfile: a Tab and ``--list``.

Each function returns the exact text click's path would print, or None when it cannot be sure
(a stale index, an option it does not parse, quoting in the words): the caller then runs click.
"""

from __future__ import annotations

import os

from .taskindex import Origin, cached_index, candidates, join_equals, locate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

SHELLS = ("bash", "zsh", "fish")
# Words made of these split the same with str.split() as with click's shlex (no quoting).
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,:/+=@%^~ ")
# Items whose formatting the quick path must reproduce as click does before it may answer (click's
# format has changed between releases: fish's did in 8.4 and again in 8.5).
PROBES: list[tuple[str, str, str | None]] = [
    ("plain", "a:b", "one\ttwo:\nthree"),
    ("plain", "v", None),
]
_VALUED = {
    "-f": "flowfile",
    "--flowfile": "flowfile",
    "-C": "directory",
    "--directory": "directory",
}


def complete_quickly(environ: Mapping[str, str]) -> str | None:
    """What ``flow`` prints for ``_FLOW_COMPLETE=SHELL_complete``, or None."""
    shell, _, what = environ.get("_FLOW_COMPLETE", "").partition("_")
    words = _words(shell, environ) if what == "complete" and shell in SHELLS else None
    if words is None:
        return None
    args, incomplete = words
    after_equals = False
    if shell == "bash":
        args, incomplete, after_equals = join_equals(args, incomplete)
    parsed = _options(args, flags={})
    if parsed is None or incomplete == "=" or incomplete.startswith("-") and "=" in incomplete:
        return None
    given, tokens = parsed
    index = _index(given)
    if index is None or not _same_format(index["click"], shell):
        return None
    items: list[tuple[str, str | None]] = []
    if incomplete.startswith("-"):  # click's own options first, as Command.shell_complete
        for option in index["click"]["options"]:
            if option["multiple"] or option["name"] not in given:
                items += [(n, option["help"]) for n in option["opts"] if n.startswith(incomplete)]
    items += candidates(index, tokens, incomplete)
    lines = [_format(shell, "plain", v, h or None, after_equals) for v, h in items]
    return "\n".join(lines) + "\n"


def list_quickly(argv: list[str], environ: Mapping[str, str]) -> str | None:
    """What ``flow [-f FILE] [-C DIR] --list [--json]`` prints, or None."""
    flags = {"-l": "list", "--list": "list", "--json": "json"}
    parsed = _options(argv, flags)
    if parsed is None or parsed[1] or "list" not in parsed[0]:
        return None
    given = parsed[0]
    luigi = environ.get("LUIGI_CONFIG_PATH")
    if luigi and not os.path.isfile(
        os.path.join(os.path.abspath(given.get("directory", "")), luigi)
    ):
        return None  # the run warns that it is not a file
    index = _index(given)
    if index is None or index.get("listable") is not True:
        return None
    from .render import format_list

    return format_list(index["tasks"], False, json_mode="json" in given) + "\n"


def _index(given: dict[str, str]) -> dict[str, Any] | None:
    directory = given.get("directory")
    if directory is not None and not os.path.isdir(directory):
        return None
    try:
        origin: Origin | None = locate(given.get("flowfile"), directory)
        return cached_index(origin) if origin and os.path.isfile(origin[0]) else None
    except Exception:  # an unreadable configuration file, say: click's path says what
        return None


def _words(shell: str, environ: Mapping[str, str]) -> tuple[list[str], str] | None:
    """click's ``get_completion_args`` of ``shell`` for plain words (no quotes or escapes)."""
    line, cword = environ.get("COMP_WORDS", ""), environ.get("COMP_CWORD", "")
    if not set(line) <= _PLAIN or not set(cword) <= _PLAIN:
        return None
    cwords = line.split()
    if shell == "fish":
        if cword and not cword.split():
            return None
        incomplete = cword.split()[0] if cword else ""
        args = cwords[1:]
        if incomplete and args and args[-1] == incomplete:
            args.pop()
        return args, incomplete
    if not cword.isdigit():
        return None
    n = int(cword)
    return cwords[1:n], cwords[n] if n < len(cwords) else ""


def _options(args: list[str], flags: dict[str, str]) -> tuple[dict[str, str], list[str]] | None:
    """The ``-f``/``-C`` values and ``flags`` given in ``args``, and the other words; None for
    anything else that starts with ``-`` (click decides what it means)."""
    given: dict[str, str] = {}
    tokens: list[str] = []
    words = iter(args)
    for word in words:
        if word in _VALUED:
            value = next(words, None)
            name = _VALUED[word]
            if value is None or value.startswith("-") or name in given:
                return None
            given[name] = value
        elif word in flags:
            given[flags[word]] = ""
        elif word.startswith("-"):
            return None
        else:
            tokens.append(word)
    return given, tokens


def _same_format(facts: dict[str, Any], shell: str) -> bool:
    """Whether ``shell``'s class of the click that built the index formats as we do."""
    mine = [_format(shell, *probe, False) for probe in PROBES]
    return bool(facts["formats"].get(shell) == mine)


def _format(shell: str, kind: str, value: str, help: str | None, after_equals: bool) -> str:
    """One candidate as click's BashComplete, ZshComplete or FishComplete (8.5) writes it."""
    if shell == "bash":
        if after_equals:  # flow's bash class: the value alone after "name="
            value = value.split("=", 1)[-1]
        return f"{kind},{value}"
    if shell == "zsh":
        help_ = help or "_"
        value = value.replace(":", r"\:") if help_ != "_" else value
        return f"{kind}\n{value}\n{help_}"
    if help:
        return f"{kind},{value}\t" + help.replace("\n", "\\n").replace("\t", " ")
    return f"{kind},{value}"
