"""The `flow` command: click options -> one build() call -> exit status."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from ._version import __version__
from .errors import EXIT_SIGINT, EXIT_SIGTERM, EXIT_USAGE, FlowError, Terminated, UsageError

GRAPH_FORMATS = ("dot", "mermaid", "json")


def _complete_tokens(ctx: click.Context, param: Any, incomplete: str) -> Any:
    """Tab on a TASK/PARAM word: answered from the task index (complete.py, imported lazily)."""
    from .complete import complete_tokens

    return complete_tokens(ctx, param, incomplete)


@click.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_interspersed_args": True,
        "help_option_names": ["-h", "--help"],
    },
)
@click.argument(
    "tokens",
    nargs=-1,
    type=click.UNPROCESSED,
    metavar="[TASK [PARAM=VALUE | --PARAM VALUE]...]...",
    shell_complete=_complete_tokens,
)
@click.option(
    "-f", "--flowfile", metavar="FILE", type=click.Path(), help="Use FILE as the Flowfile."
)
@click.option(
    "-C",
    "--directory",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Change to DIR before doing anything.",
)
@click.option("-n", "--dry-run", is_flag=True, help="Print what would run and why; change nothing.")
@click.option(
    "--explain",
    is_flag=True,
    help="With the plan, give every reason, and why up-to-date tasks are.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=0),
    default=1,
    help="Run up to N tasks at once (0: one per CPU; default: 1, or [tool.flow] jobs).",
)
@click.option(
    "-k",
    "--keep-going/--no-keep-going",
    default=False,
    help="After a failure, keep running what does not depend on it ([tool.flow] keep-going "
    "sets the default; --no-keep-going overrides it).",
)
@click.option(
    "-B", "--force", is_flag=True, help="Rebuild the tasks and everything upstream of them."
)
@click.option(
    "-l",
    "--list",
    "list_",
    is_flag=True,
    help="List the tasks of the Flowfile with their parameters (--list TASK: one in full).",
)
@click.option(
    "--graph",
    metavar="[dot|mermaid|json]",
    is_flag=False,
    flag_value="dot",
    default=None,
    help="Print the task graph with each task's status.",
    shell_complete=lambda ctx, param, incomplete: [
        f for f in GRAPH_FORMATS if f.startswith(incomplete)
    ],
)
@click.option(
    "--completion",
    type=click.Choice(["bash", "zsh", "fish"]),
    help="Print the shell completion script for bash, zsh or fish.",
)
@click.option("--json", "json_mode", is_flag=True, help="Machine-readable plan, list and summary.")
@click.option(
    "--show-config",
    is_flag=True,
    help="Print the settings from configuration files and where each came from.",
)
@click.option("--check", is_flag=True, help="Exit 1 if anything would run, 0 if all is up to date.")
@click.option(
    "-t", "--touch", is_flag=True, help="Record the current outputs as up to date without running."
)
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and failures.")
@click.option("-v", "--verbose", is_flag=True, help="Print each task as it starts.")
@click.option(
    "-m",
    "--module",
    metavar="NAME|FILE",
    help="Import the tasks from module NAME (the current directory first) or FILE.py.",
)
@click.option("--workers", type=click.IntRange(min=0), default=None, hidden=True)
@click.option("--local-scheduler", is_flag=True, hidden=True)
@click.option(
    "-w", "--watch", is_flag=True, help="Build, then rebuild whenever an input or the code changes."
)
@click.option(
    "--watch-exclude",
    metavar="GLOB",
    multiple=True,
    help="With -w, ignore changes to paths matching GLOB (repeatable).",
)
@click.option(
    "--dask",
    metavar="ADDRESS",
    help="Run stale tasks on a Dask cluster: tcp://HOST:PORT, or local[:N] (N local workers).",
)
@click.option(
    "--serve",
    metavar="[HOST:]PORT",
    is_flag=False,
    flag_value="",
    default=None,
    help="Serve the run visualiser (default 127.0.0.1:8082), building TASKs meanwhile.",
)
@click.option(
    "--report",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write a self-contained HTML report of the run (of the plan with -n) to FILE.",
)
@click.option(
    "--profile",
    metavar="FILE",
    envvar="FLOW_PROFILE",
    type=click.Path(dir_okay=False),
    help="Write the run's phases and tasks to FILE as a Chrome trace (open it in Perfetto); "
    "also FLOW_PROFILE.",
)
@click.option(
    "--cache",
    metavar="URL",
    envvar="FLOW_CACHE",
    help="Restore stale tasks' outputs from a shared artifact cache (a directory or an fsspec "
    "URL such as s3://bucket/prefix) and store what runs there; also FLOW_CACHE.",
)
@click.option(
    "--cache-prune",
    metavar="SIZE",
    help="Trim the cache to SIZE (500MB, 2GiB), least recently used first, and exit.",
)
@click.version_option(__version__, "--version", prog_name="flow", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, tokens: tuple[str, ...], **opts: Any) -> None:
    """Build TASK (and what it needs), running only what is stale.

    Parameters follow their task as n=20, --n 20 or --n=20; Task.param=value sets a parameter
    of an upstream class. With no TASK, the Flowfile's `default` (or its first task) is built.
    """
    # Which options the command line gave: those beat their [tool.flow] defaults.
    # FLOW_CACHE counts as given too (the environment beats the configuration file), marked
    # "env:NAME" for --show-config.
    sources = {name: ctx.get_parameter_source(name) for name in opts}
    env = {f"env:{n}" for n, src in sources.items() if src is ParameterSource.ENVIRONMENT}
    given = frozenset(
        {n for n, src in sources.items() if src is ParameterSource.COMMANDLINE}
        | {n.removeprefix("env:") for n in env}
        | env
    )
    ctx.exit(invoke(list(tokens), opts, {**(ctx.obj or {}), "given": given}))


def invoke(tokens: list[str], opts: dict[str, Any], obj: dict[str, Any]) -> int:
    """Run one command line; FlowErrors become a message and their exit status."""
    from .report import Reporter

    with _stdout_for_json(opts["json_mode"] or opts["graph"] is not None) as out:
        reporter = Reporter(
            quiet=opts["quiet"], verbose=opts["verbose"], json_mode=opts["json_mode"], out=out
        )
        return _report_errors(tokens, opts, obj, reporter)


@contextlib.contextmanager
def _stdout_for_json(json_mode: bool) -> Iterator[Any]:
    """With --json or --graph, stdout carries the document alone: whatever the Flowfile and its
    tasks print (and the commands they run) goes to stderr meanwhile."""
    if not json_mode:
        yield None
        return
    from .fds import redirected

    sys.stdout.flush()
    # backslashreplace: a non-UTF-8 file name (a lone surrogate) becomes a JSON escape, \udce9.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="backslashreplace")
    try:
        with redirected(2, (1,)):
            yield out
            out.flush()
    finally:
        with contextlib.suppress(Exception):
            out.close()


def _report_errors(
    tokens: list[str], opts: dict[str, Any], obj: dict[str, Any], reporter: Any
) -> int:
    try:
        return _invoke(tokens, opts, obj, reporter)
    except FlowError as exc:
        reporter.error(str(exc))
        return exc.exit_status
    except KeyboardInterrupt:
        reporter.error("interrupted")
        return EXIT_SIGINT
    except Terminated:
        reporter.error("terminated")
        return EXIT_SIGTERM


def _invoke(tokens: list[str], opts: dict[str, Any], obj: dict[str, Any], reporter: Any) -> int:
    if opts.get("completion"):
        from .complete import script

        reporter.text(script(cli, opts["completion"]).rstrip("\n"))
        return 0
    if opts["cache"]:  # a directory is relative to where flow was started, not -C's
        opts["cache"] = _cache_location(opts["cache"])
    if opts["report"]:  # so is the report's FILE
        if opts["watch"]:
            raise UsageError("--report writes the page of one run: it cannot be used with -w")
        opts["report"] = os.path.abspath(opts["report"])
    if opts["profile"]:
        if opts["watch"]:
            raise UsageError("--profile records one run: it cannot be used with -w")
        opts["profile"] = os.path.abspath(opts["profile"])
        if not os.path.isdir(os.path.dirname(opts["profile"])):
            raise UsageError(f"--profile {opts['profile']}: its directory does not exist")
    if opts["cache_prune"] is not None:
        if opts["dry_run"] or opts["check"]:
            raise UsageError("--cache-prune deletes from the cache: it cannot be used with -n")
        return _prune(opts, obj, reporter)
    if opts["directory"]:
        try:
            os.chdir(opts["directory"])
        except OSError as exc:
            raise FlowError(
                f"cannot change to directory {opts['directory']}: {exc.strerror}"
            ) from None
    graph_fmt = opts["graph"]
    if graph_fmt is not None and graph_fmt not in GRAPH_FORMATS:
        tokens.insert(0, graph_fmt)  # `--graph Task`: the word was a task, not a format
        graph_fmt = "dot"
    _serve_and_report_args(opts, tokens)
    if opts["profile"]:
        return _profiled(tokens, opts, obj, reporter, graph_fmt)
    return _load_and_run(tokens, opts, obj, reporter, graph_fmt)


def _profiled(
    tokens: list[str], opts: dict[str, Any], obj: dict[str, Any], reporter: Any, graph_fmt: Any
) -> int:
    """The run, with its phases and tasks written to ``--profile``'s FILE (even if it fails)."""
    from . import timeline

    timeline.start(opts["profile"])
    try:
        return _load_and_run(tokens, opts, obj, reporter, graph_fmt)
    finally:
        written = timeline.stop()
        if written is not None:
            try:
                path = written.write()
            except OSError as exc:
                reporter.warning(f"cannot write the profile {written.path}: {exc.strerror}")
            else:
                if not reporter.json_mode:
                    reporter.text(f"flow: wrote the profile {path}")


def _load_and_run(
    tokens: list[str], opts: dict[str, Any], obj: dict[str, Any], reporter: Any, graph_fmt: Any
) -> int:
    """Load the Flowfile, then list, plan, build or serve as the options say."""
    from .args import parse_tokens
    from .render import render_graph, render_list
    from .spine import build
    from .timeline import phase

    with phase("load Flowfile"):
        flowfile, config = _load(opts, obj, reporter)
    _serve_default(opts, obj, config)
    if opts["show_config"]:
        from .settings import show_config

        reporter.text(show_config(config, opts, obj.get("given", frozenset()), flowfile))
        return 0
    if opts["list_"]:
        names = [t for t in tokens if not t.startswith("-") and "=" not in t]
        reporter.text(render_list(flowfile, names, json_mode=opts["json_mode"]))
        if not names:  # the next --list may answer from the index (complete.py)
            from .complete import remember_listing

            remember_listing(flowfile, config, obj)
        return 0
    if opts["serve"] is not None and not tokens:
        from .ui.serve import serve

        return serve(opts["serve"], reporter, None)  # nothing to build: serve only
    from .luigi_options import strip

    tokens = strip(tokens, reporter.warning)
    with phase("create the requested tasks"):
        roots = parse_tokens(tokens, flowfile)
    jobs = opts["workers"] if opts["workers"] is not None else opts["jobs"]
    if jobs == 0:
        jobs = os.cpu_count() or 1
    if graph_fmt is not None:
        result = build(roots, dry_run=True, reporter=_Silent())
        reporter.text(render_graph(result.plan, graph_fmt))
        return 0
    options = dict(
        jobs=jobs,
        dry_run=opts["dry_run"],
        force=opts["force"],
        keep_going=opts["keep_going"],
        check=opts["check"],
        touch=opts["touch"],
        explain=opts["explain"],
        cache=opts["cache"],
    )
    if opts["dask"]:
        options["dask"] = opts["dask"]
    if opts["serve"] is not None:
        from .ui.serve import serve

        def run() -> int:
            return _run(flowfile, tokens, roots, options, opts, reporter)

        return serve(opts["serve"], reporter, run, watching=opts["watch"])
    return _run(flowfile, tokens, roots, options, opts, reporter)


def _run(
    flowfile: Any,
    tokens: list[str],
    roots: list[Any],
    options: dict[str, Any],
    opts: dict[str, Any],
    reporter: Any,
) -> int:
    """Build once (or watch and rebuild), then write the HTML report if one was asked for."""
    from .spine import build

    if opts["watch"]:
        from .watch import watch

        return watch(flowfile, tokens, roots, options, reporter, opts["watch_exclude"])
    result = build(roots, **options, reporter=reporter)
    if opts["report"]:
        from .ui.report import write_report

        written = write_report(opts["report"], result)
        if not reporter.json_mode:
            reporter.text(f"flow: wrote the report {written}")
    reporter.finish(exit_status=result.exit_status)
    return result.exit_status


def _serve_default(opts: dict[str, Any], obj: dict[str, Any], config: Any) -> None:
    """[tool.flow] ``serve`` is the address a bare ``--serve`` uses; it never serves by itself."""
    if "serve" not in obj.get("given", frozenset()):
        opts["serve"] = None
    elif opts["serve"] == "" and config.option("serve") is not None:
        from .settings import option_value

        opts["serve"] = option_value("serve", config.option("serve"))


def _serve_and_report_args(opts: dict[str, Any], tokens: list[str]) -> None:
    """``--serve Build`` names a task, not an address."""
    value = opts["serve"]
    if value and not (value.isdigit() or ":" in value):
        tokens.insert(0, value)
        opts["serve"] = ""


def _cache_location(location: str) -> str:
    if "://" in location:
        return location
    return os.path.abspath(os.path.expanduser(location))


def _prune(opts: dict[str, Any], obj: dict[str, Any], reporter: Any) -> int:
    """``--cache-prune SIZE``: needs no Flowfile, only the cache ([tool.flow] may name it)."""
    from . import config as cfg
    from .cache.prune import run_prune

    if not opts["cache"]:
        config = cfg.load_options(opts["directory"] or ".")
        if config.flow is not None:
            from .settings import apply_options

            apply_options(config, opts, obj.get("given", frozenset()))
    location = _cache_location(opts["cache"]) if opts["cache"] else None
    reporter.text(run_prune(location, opts["cache_prune"]))
    return 0


def _load(opts: dict[str, Any], obj: dict[str, Any], reporter: Any) -> tuple[Any, Any]:
    """The Flowfile and the configuration of this run: [tool.flow] fills the options the command
    line left out (it may name the Flowfile), then the parameter-default files are read."""
    from . import config as cfg
    from .flowfile import find_flowfile, from_module, load_flowfile, load_module

    invocation_dir = os.getcwd()
    module = obj.get("module")
    script = getattr(module, "__file__", None) if module is not None else opts["flowfile"]
    config = cfg.load_options(os.path.dirname(os.path.abspath(script)) if script else ".")
    if config.flow is not None:
        from .settings import apply_options

        apply_options(config, opts, obj.get("given", frozenset()))
    if module is not None:
        flowfile = from_module(module)
        os.chdir(flowfile.root)
    elif opts["module"]:
        flowfile = load_module(opts["module"])
    elif opts["list_"]:  # kept in the index: complete.py notes what the import prints
        from .complete import import_for_listing

        path = opts["flowfile"] or find_flowfile(os.getcwd())
        flowfile = import_for_listing(path, obj, script, invocation_dir)
    else:
        flowfile = load_flowfile(opts["flowfile"] or find_flowfile(os.getcwd()))
    cfg.add_parameter_files(config, flowfile.root, invocation_dir)
    cfg.use(config)
    for warning in cfg.check(config, flowfile.tasks):
        reporter.warning(warning)
    return flowfile, config


class _Silent:
    """A reporter that drops everything (the graph view prints only the graph)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def main(argv: list[str] | None = None, module: ModuleType | None = None) -> NoReturn:
    """Console-script entry point (and ``flow.run``): exits with the SPEC's status."""
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)
    if "_FLOW_COMPLETE" in os.environ:  # a Tab in the shell: flow's completion classes
        from .complete import install

        install()
    try:
        cli.main(args=argv, prog_name="flow", obj={"module": module}, standalone_mode=True)
    except BrokenPipeError:
        # `flow ... | head -1`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    sys.exit(EXIT_USAGE)  # pragma: no cover - cli.main always exits in standalone mode
