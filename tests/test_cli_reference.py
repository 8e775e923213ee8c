"""docs/cli-reference.md is generated from the click command, and stays so."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import click

from flow.cli import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_cli_reference", DOCS / "gen_cli_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_page_is_what_the_command_renders() -> None:
    page = (DOCS / "cli-reference.md").read_text(encoding="utf-8")
    assert page == _generator().render(cli), (
        "docs/cli-reference.md is out of date: run `python docs/gen_cli_reference.py`"
    )


def test_every_visible_option_and_its_help_is_on_the_page() -> None:
    page = _generator().render(cli)
    ctx = click.Context(cli, info_name="flow", **cli.context_settings)
    visible = [p for p in cli.get_params(ctx) if isinstance(p, click.Option) and not p.hidden]
    assert len(visible) > 20
    for option in visible:
        for name in option.opts:
            assert f"`{name}`" in page
        assert " ".join((option.help or "").split())[:40] in page
    assert "`--workers`" not in page  # hidden (Luigi's spelling of -j)
    assert "| `-j`, `--jobs` `INTEGER RANGE` |" in page and "| `1` |" in page


def test_a_changed_option_changes_the_page() -> None:
    changed = click.Command(
        "flow",
        params=[click.Option(["--frobnicate"], help="Frobnicate.", envvar="FLOW_FROB", default=3)],
        help="Build.",
    )
    page = _generator().render(changed)
    assert "| `--frobnicate` `INTEGER` | Frobnicate. Environment: FLOW_FROB. | `3` |" in page
