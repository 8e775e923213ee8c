"""Read one configuration file, INI or TOML, into sections of settings that know their line.

Neither ``configparser`` nor ``tomllib`` says where a value was written, so a small scanner of
the file's lines finds each section header and key: errors and ``--show-config`` then name
``luigi.cfg:3``. The parsers are imported only when a file is read, never on a plain start.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .errors import ConfigError

# Plain classes rather than dataclasses, and patterns compiled on first use (re caches them):
# this module is loaded on every run that has a configuration file, so its import stays cheap.


class Entry:
    """One setting as written: its value (a string from INI, typed from TOML) and its place.
    ``inherited`` marks an INI [DEFAULT] key seen through another section."""

    __slots__ = ("value", "path", "line", "inherited")

    def __init__(self, value: Any, path: str, line: int | None = None, inherited: bool = False):
        self.value = value
        self.path = path
        self.line = line
        self.inherited = inherited

    def __repr__(self) -> str:
        return f"Entry({self.value!r}, {self.where})"

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


class Source:
    """A file that was read: ``kind`` is "luigi" (luigi.cfg, luigi.toml, LUIGI_CONFIG_PATH) or
    "flow" (pyproject.toml, flow.toml); ``sections`` maps a section name to its keys as written,
    ``headers`` a section to its header's line, ``options`` holds flow's [tool.flow] keys."""

    def __init__(self, path: str, kind: str, options_line: int | None = None) -> None:
        self.path = path
        self.kind = kind
        self.sections: dict[str, dict[str, Entry]] = {}
        self.headers: dict[str, int] = {}
        self.options: dict[str, Entry] = {}
        self.options_line = options_line

    def header(self, section: str) -> str:
        line = self.headers.get(section)
        return f"{self.path}:{line}" if line else self.path


def display(path: str) -> str:
    """A path as messages show it: relative to the current directory when below it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def read_text(path: str) -> str:
    """The file's text; an unreadable file is a ConfigError naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{display(path)}: not UTF-8 text ({exc.reason}); fix or remove the file"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{display(path)}: cannot read the file: {exc.strerror}") from None


# -- INI (luigi.cfg) ----------------------------------------------------------------------------
_ENV = r"\$\{([^}]+)\}"


def _interpolation() -> Any:
    """Luigi's interpolation: ``%(key)s`` from the section, then ``${VAR}`` from the environment."""
    import configparser

    class LuigiInterpolation(configparser.BasicInterpolation):
        def before_get(
            self, parser: Any, section: str, option: str, value: str, defaults: Any
        ) -> str:  # type: ignore[override]
            value = super().before_get(parser, section, option, value, defaults)

            def env(match: re.Match[str]) -> str:
                if match.group(1) not in os.environ:
                    raise configparser.InterpolationError(
                        option, section, f"environment variable {match.group(1)} is not set"
                    )
                return os.environ[match.group(1)]

            return re.sub(_ENV, env, value)

    return LuigiInterpolation()


def read_ini(path: str, kind: str = "luigi") -> Source:
    """A Luigi ``.cfg`` file: every section, with DEFAULT's keys seen through each of them."""
    import configparser

    text = read_text(path)
    parser = configparser.ConfigParser(interpolation=_interpolation())
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise ConfigError(_ini_message(path, text, exc)) from None
    headers, keys = _scan_ini(text)
    source = Source(path, kind)
    source.headers = headers
    own_default = set(parser.defaults())
    for section in parser.sections():
        entries = {}
        own = {k for k, _ in parser.items(section, raw=True)} - own_default
        own |= {k for k in own_default if (section, k) in keys}  # set in both: the section's
        for key in parser.options(section):
            try:
                value = parser.get(section, key)
            except configparser.Error as exc:
                line = keys.get((section, key)) or keys.get(("DEFAULT", key))
                where = f"{display(path)}:{line}" if line else display(path)
                hint = "" if "environment" in exc.message else " (write %% for a literal %)"
                raise ConfigError(f"{where}: {exc.message}{hint}") from None
            line = keys.get((section, key)) if key in own else keys.get(("DEFAULT", key))
            entries[key] = Entry(value, path, line, inherited=key not in own)
        source.sections[section] = entries
    return source


def _ini_message(path: str, text: str, exc: Exception) -> str:
    """configparser's error as ``path:line: what``, with one line of advice."""
    line = getattr(exc, "lineno", None)
    errors = getattr(exc, "errors", None)
    what = type(exc).__name__
    if errors:
        line = errors[0][0]
        what = f"cannot parse {text.splitlines()[line - 1].strip()!r}"
    elif what == "MissingSectionHeaderError":
        what = "a setting before any [section] header"
    elif what == "DuplicateSectionError":
        what = f"section [{getattr(exc, 'section', '?')}] appears twice"
    elif what == "DuplicateOptionError":
        what = f"{getattr(exc, 'option', '?')} is set twice in [{getattr(exc, 'section', '?')}]"
    where = f"{display(path)}:{line}" if line else display(path)
    return f"{where}: {what}; fix the file (INI: [Section] headers, then key = value lines)"


def _scan_ini(text: str) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Line numbers of section headers and of keys (lower-cased, as configparser stores them)."""
    headers: dict[str, int] = {}
    keys: dict[tuple[str, str], int] = {}
    section = "DEFAULT"
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        match = re.match(r"\[(.+)\]", stripped)
        if match:
            section = match.group(1)
            headers.setdefault(section, number)
        elif not line[0].isspace():  # an indented line continues the value above it
            key = re.split(r"[=:]", stripped, maxsplit=1)[0].strip().lower()
            keys.setdefault((section, key), number)
    return headers, keys


# -- TOML (luigi.toml, pyproject.toml, flow.toml) ---------------------------------------------
def parse_toml(
    path: str, text: str | None = None
) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """The TOML document and the line of each table header and key, by dotted path."""
    import tomllib

    text = read_text(path) if text is None else text
    if _last_toml[0] == (path, text):  # pyproject.toml: first asked "has [tool.flow]?", then read
        return _last_toml[1]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column \d+\)$", message)
        if match:
            message = f"{display(path)}:{match.group(1)}: {message[: match.start()].strip()}"
        else:
            message = f"{display(path)}: {message}"
        raise ConfigError(f"{message}; fix the TOML") from None
    _last_toml[:] = [(path, text), (data, _scan_toml(text))]
    return _last_toml[1]  # type: ignore[no-any-return]


_last_toml: list[Any] = [None, None]


def read_luigi_toml(path: str) -> Source:
    """A Luigi ``.toml`` file: each table is a section (nested tables too: ``[examples.Foo]``)."""
    data, lines = parse_toml(path)
    source = Source(path, "luigi")
    add_sections(source, data, (), lines)
    return source


def add_sections(
    source: Source,
    table: dict[str, Any],
    base: tuple[str, ...],
    lines: dict[tuple[str, ...], int],
    path: tuple[str, ...] | None = None,
) -> None:
    """Every table below ``table`` (found at ``base``) becomes a section named by its dotted
    path from ``base``.

    A table inside a section stays one of its values as well: it may be a DictParameter's
    value rather than a namespaced task (``[examples.Foo]``), which only the Flowfile can tell.
    """
    path = base if path is None else path
    for name, value in table.items():
        if not isinstance(value, dict):
            continue
        full = (*path, name)
        section = ".".join(full[len(base) :])
        source.sections[section] = {
            key: Entry(item, source.path, lines.get((*full, key)) or lines.get(full))
            for key, item in value.items()
        }
        if full in lines:
            source.headers[section] = lines[full]
        add_sections(source, value, base, lines, full)


_KEY_PART = r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)'
_TOML_KEY = (
    r"""\s*((?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)"""
    r"""(?:\s*\.\s*(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*="""
)


def _key_path(text: str) -> tuple[str, ...]:
    return tuple(a or b or c for a, b, c in re.findall(_KEY_PART, text))


def _scan_toml(text: str) -> dict[tuple[str, ...], int]:
    """Line numbers of table headers and keys by their full dotted path (first occurrence).

    A rough scanner, enough to point at a line: keys inside multi-line strings and arrays are
    skipped, and a key set inside an inline table is found at its table's line instead.
    """
    out: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        stripped = line.strip()
        if stripped.startswith("[["):
            table = ("[[array]]",)  # keys of an array of tables name no section
        elif stripped.startswith("["):
            table = _key_path(stripped[1 : stripped.find("]")])
            out.setdefault(table, number)
        else:
            match = re.match(_TOML_KEY, line)
            if match:
                out.setdefault((*table, *_key_path(match.group(1))), number)
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                in_string = quote
    return out


def read_flow_toml(path: str, text: str) -> Source:
    """flow's own file: ``[tool.flow]`` of a pyproject.toml, or the whole of a flow.toml.
    Its ``tasks`` table holds parameter defaults; every other key is an option default."""
    data, lines = parse_toml(path, text)
    base: tuple[str, ...] = ("tool", "flow") if os.path.basename(path) == "pyproject.toml" else ()
    table = data.get("tool", {}).get("flow", {}) if base else data
    source = Source(path, "flow", options_line=lines.get(base))
    if not isinstance(table, dict):
        raise ConfigError(f"{display(path)}: [tool.flow] must be a table; fix the TOML")
    for key, value in table.items():
        path_of_key = (*base, key)
        # A key may appear only inside a header ([tool.flow.tasks.X] for "tasks"): its first line.
        below = [n for p, n in lines.items() if p[: len(path_of_key)] == path_of_key]
        where = min(below) if below else lines.get(base)
        if key == "tasks":
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{display(path)}:{where}: tasks must be a table of tables, "
                    "e.g. [tool.flow.tasks.SquaredNumbers] with n = 20"
                )
            add_sections(source, value, (*base, "tasks"), lines)
        else:
            source.options[key] = Entry(value, path, where)
    return source


def mentions_flow(path: str) -> str | None:
    """The text of a pyproject.toml that may hold a [tool.flow] table; None when it cannot."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    # A substring test first: most pyproject.toml files never mention flow, and TOML costs more.
    if b"tool.flow" not in data and b"[tool]" not in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{display(path)}: not UTF-8 text; fix the file") from None
