"""Write docs/cli-reference.md from flow's click command: `python docs/gen_cli_reference.py`."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

PAGE = Path(__file__).with_name("cli-reference.md")

INTRO = """\
# Command-line reference (generated)

<!-- Generated from flow.cli by docs/gen_cli_reference.py; tests/test_cli_reference.py fails
when this page differs from the command. Edit the click options, then rerun the script. -->

This page is generated from the `flow` command itself, so it lists exactly the options that
`flow --help` knows. The [command-line guide](cli.md) explains them with examples.
"""


def _cell(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _names(param: click.Parameter) -> str:
    """`-j`, `--jobs N`: the option's spellings, with its value's metavar."""
    spellings = [*param.opts, *param.secondary_opts]
    names = ", ".join(f"`{name}`" for name in spellings)
    if isinstance(param, click.Option) and param.is_flag:
        return names
    ctx = click.Context(click.Command("flow"))
    metavar = param.metavar or param.type.get_metavar(param, ctx) or param.type.name.upper()
    return f"{names} `{metavar}`"


def _default(param: click.Parameter, ctx: click.Context) -> str:
    """The default a user sees, or an empty cell when there is none worth showing."""
    default = param.get_default(ctx, call=False)
    # Flags, unset options (None, or click's UNSET sentinel) and empty values show no default.
    if isinstance(default, bool) or not isinstance(default, int | float | str) or default == "":
        return ""
    return f"`{default}`"


def _help(param: click.Option) -> str:
    """The help text, with the environment variable that also sets the option."""
    text = param.help or ""
    envvars = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
    unsaid = [name for name in envvars if name not in text]
    if unsaid:
        text += " Environment: " + ", ".join(unsaid) + "."
    return _cell(text)


def render(command: click.Command) -> str:
    """The Markdown page for ``command``: usage, description and one row per visible option."""
    ctx = click.Context(command, info_name="flow", **command.context_settings)
    usage = " ".join(command.collect_usage_pieces(ctx))
    description = inspect.cleandoc(command.help or "")
    rows = [
        f"| {_names(p)} | {_help(p)} | {_default(p, ctx)} |"
        for p in command.get_params(ctx)
        if isinstance(p, click.Option) and not p.hidden
    ]
    return "\n".join(
        [
            INTRO,
            "## Usage",
            "",
            "```text",
            f"flow {usage}",
            "```",
            "",
            description,
            "",
            "## Options",
            "",
            "| option | what it does | default |",
            "| --- | --- | --- |",
            *rows,
            "",
        ]
    )


def main() -> int:
    """Rewrite the page; print whether it changed."""
    from flow.cli import cli

    text = render(cli)
    changed = not PAGE.exists() or PAGE.read_text(encoding="utf-8") != text
    PAGE.write_text(text, encoding="utf-8")
    print(f"{PAGE}: {'rewritten' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
