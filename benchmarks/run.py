"""Benchmark flow against make, doit, Luigi and pytask; print a markdown table.

    python benchmarks/run.py [--quick] [--n 100,1000,10000] [--runs 5]
                             [--tools flow,make,doit,luigi,pytask] [--workloads w1,w2,w3]
                             [--big] [--cap 120] [--out FILE]

Run it with the Python of the environment that has flow installed (e.g. ``.venv/bin/python``):
flow is run through that environment's ``flow`` console script (what users run), doit and pytask
through their console scripts, Luigi through ``python pipeline.py`` calling ``luigi.build``.
Each measurement is one child process: wall time from fork to ``os.wait4``, and the child's peak
resident memory from the rusage ``wait4`` returns. Only the standard library is needed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import DESCRIPTIONS, WORKLOADS, Workload, make_workload, supports  # noqa: E402

ALL_TOOLS = ("flow", "make", "doit", "luigi", "pytask")
SCENARIOS = ("full -j1", "full -j2", "no-op", "incremental")
BIN = os.path.dirname(sys.executable)
# Every Python tool is measured as its users run it: with compiled bytecode cached in
# __pycache__. A shell with PYTHONDONTWRITEBYTECODE set (some sandboxes and CI images set it)
# would recompile every module of flow, doit, Luigi and pytask on every run: ~0.1-0.2 s each.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Sample:
    """The runs of one measurement: wall seconds and peak RSS (MiB) of each child."""

    times: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    cpu: list[tuple[float, float]] = field(default_factory=list)  # (user, system) seconds
    note: str = ""  # "skipped (>cap)", "failed: ...", "n/a: ..."

    @property
    def ok(self) -> bool:
        return bool(self.times) and not self.note

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def cpu_text(self) -> str:
        """User + system CPU of the run whose wall time is the median."""
        if not self.cpu:
            return ""
        k = sorted(range(len(self.times)), key=self.times.__getitem__)[(len(self.times) - 1) // 2]
        user, system = self.cpu[k]
        return f"{fmt_s(user)} + {fmt_s(system)}"


@dataclass
class Timed:
    seconds: float
    rss_mib: float
    user: float
    system: float
    status: int
    timed_out: bool
    log: str


def run_child(argv: list[str], cwd: str, cap: float, log_path: str) -> Timed:
    """Run one command; wall time and peak RSS come from this child alone (``os.wait4``)."""
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(cap, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    with open(log_path, "rb") as f:
        tail = f.read()[-2000:].decode(errors="replace")
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    rss = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return Timed(
        seconds, rss, usage.ru_utime, usage.ru_stime, proc.returncode, killed.is_set(), tail
    )


# ---------------------------------------------------------------------------------------------
# How each tool is run.


def tool_argv(tool: str, workload: str, jobs: int) -> list[str] | None:
    """The command line for one build, or None when the tool cannot do ``jobs`` here."""
    if tool == "flow":
        return [os.path.join(BIN, "flow"), f"-j{jobs}"]
    if tool == "make":
        return ["make", f"-j{jobs}"]
    if tool == "doit":
        return [os.path.join(BIN, "doit")] + (["-n", str(jobs)] if jobs > 1 else [])
    if tool == "luigi":
        return [sys.executable, "pipeline.py", str(jobs)]
    if tool == "pytask":
        return [os.path.join(BIN, "pytask")] if jobs == 1 else None  # -n needs pytask-parallel
    raise ValueError(tool)


def tool_available(tool: str) -> str | None:
    """None if the tool can run, else why not."""
    if tool == "make":
        return None if shutil.which("make") else "make not found on PATH"
    if tool == "flow":
        return None if os.path.exists(os.path.join(BIN, "flow")) else f"no flow script in {BIN}"
    if importlib.util.find_spec(tool) is None:
        return f"{tool} is not importable (pip install -e '.[bench]')"
    return None


def tool_version(tool: str) -> str:
    if tool == "make":
        out = subprocess.run(["make", "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0].replace("GNU Make ", "") if out else "?"
    name = {"flow": "flow-build"}.get(tool, tool)
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


# ---------------------------------------------------------------------------------------------
# Measuring one (workload, N, tool).


class Bench:
    def __init__(self, args: argparse.Namespace, scratch: str) -> None:
        self.args = args
        self.scratch = scratch
        self.results: dict[tuple[str, int, str], dict[str, Sample]] = {}
        self.last_full: dict[tuple[str, str], tuple[int, float]] = {}
        self.log_n = 0

    def say(self, msg: str) -> None:
        if not self.args.quiet:
            print(msg, file=sys.stderr, flush=True)

    def once(self, w: Workload, argv: list[str]) -> Timed:
        self.log_n += 1
        log = os.path.join(self.scratch, "logs", f"{self.log_n}.log")
        return run_child(argv, w.root, self.args.cap, log)

    def repeat(self, w: Workload, argv: list[str], before: object, runs: int) -> Sample:
        """Run ``runs`` times (fewer if the runs add up past the budget), ``before()`` untimed."""
        s = Sample()
        spent = 0.0
        for k in range(runs):
            before(k)  # type: ignore[operator]
            t = self.once(w, argv)
            if t.timed_out:
                s.note = f"skipped (>{self.args.cap:g} s)"
                return s
            if t.status != 0:
                s.note = f"failed (exit {t.status}{_error_name(t.log)})"
                self.say(f"    FAILED {shlex.join(argv)} in {w.root}:\n{t.log}")
                return s
            s.times.append(t.seconds)
            s.rss.append(t.rss_mib)
            s.cpu.append((t.user, t.system))
            spent += t.seconds
            if spent > self.args.budget:
                break
        return s

    def measure(self, name: str, n: int, tool: str, scenarios: tuple[str, ...]) -> None:
        key = (name, n, tool)
        out = self.results[key] = {}
        prev = self.last_full.get((name, tool))
        if prev is not None and tool != "flow":
            estimate = prev[1] * n / prev[0]
            if estimate > self.args.cap:
                for sc in scenarios:
                    out[sc] = Sample(note=f"skipped (>{self.args.cap:g} s, est. {estimate:.0f} s)")
                self.say(f"  {name} N={n} {tool}: skipped, full build estimated {estimate:.0f} s")
                return
        root = os.path.join(self.scratch, f"{name}-{n}-{tool}")
        shutil.rmtree(root, ignore_errors=True)
        w = make_workload(name, tool, n, root)
        runs = self.args.runs
        clean = lambda k: w.clean()  # noqa: E731
        nothing = lambda k: None  # noqa: E731
        edit = lambda k: w.edit_source(k)  # noqa: E731
        # The full builds come first: each cleans; the last one leaves a built tree for the rest.
        order = [sc for sc in ("full -j2", "full -j1") if sc in scenarios]
        if not order:
            order = ["full -j1"]
        for sc in order:
            argv = tool_argv(tool, name, 2 if sc == "full -j2" else 1)
            if argv is None:
                out[sc] = Sample(note="n/a")
                continue
            self.say(f"  {name} N={n} {tool}: {sc}")
            out[sc] = self.repeat(w, argv, clean, 1 if sc not in scenarios else runs)
        built = out.get("full -j1") or out.get("full -j2")
        if built is None or not built.ok:
            for sc in scenarios:
                out.setdefault(sc, Sample(note=built.note if built else "n/a"))
            return
        self.last_full[(name, tool)] = (n, built.median)
        for sc, before in (("no-op", nothing), ("incremental", edit)):
            if sc in scenarios:
                self.say(f"  {name} N={n} {tool}: {sc}")
                out[sc] = self.repeat(w, tool_argv(tool, name, 1), before, runs)  # type: ignore[arg-type]
        if not self.args.keep:
            shutil.rmtree(root, ignore_errors=True)

    def startup(self, runs: int, completion_runs: int) -> dict[str, Sample]:
        """python -c pass, flow --version, flow --list, and a completion round trip."""
        d = os.path.join(self.scratch, "startup")
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(REPO, "Flowfile.example"), os.path.join(d, "Flowfile.py"))
        shutil.copy(os.path.join(REPO, "Flowfile.example"), os.path.join(d, "Flowfile.example"))
        flow = os.path.join(BIN, "flow")
        cases = {
            "python -c pass": ([sys.executable, "-c", "pass"], runs, None),
            "flow --version": ([flow, "--version"], runs, None),
            "flow -f Flowfile.example --list": (
                [flow, "-f", "Flowfile.example", "--list"],
                runs,
                None,
            ),
            "completion `flow Squ<Tab>`": (
                [flow],
                completion_runs,
                {"_FLOW_COMPLETE": "bash_complete", "COMP_WORDS": "flow Squ", "COMP_CWORD": "1"},
            ),
            "flow --version (x completion runs)": ([flow, "--version"], completion_runs, None),
        }
        out = {}
        for label, (argv, k, env) in cases.items():
            self.say(f"  start-up: {label}")
            s = Sample()
            for _ in range(k):
                self.log_n += 1
                log = os.path.join(self.scratch, "logs", f"{self.log_n}.log")
                t = _run_env(argv, d, env, self.args.cap, log)
                if t.status != 0:
                    s.note = f"failed (exit {t.status})"
                    self.say(t.log)
                    break
                s.times.append(t.seconds)
                s.rss.append(t.rss_mib)
                s.cpu.append((t.user, t.system))
            out[label] = s
        return out


def _error_name(log: str) -> str:
    """The exception named last in a failed run's output (", RecursionError"), if any."""
    found = re.findall(r"\b([A-Z][A-Za-z]*(?:Error|Exception))\b", log)
    return f", {found[-1]}" if found else ""


def _run_env(argv: list[str], cwd: str, env: dict[str, str] | None, cap: float, log: str) -> Timed:
    if env is None:
        return run_child(argv, cwd, cap, log)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return run_child(argv, cwd, cap, log)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------------------------------
# Reporting.


def fmt_s(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"


def ratio(a: float, b: float) -> str:
    r = a / b
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


def machine_line() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load ?"
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; {load}"
    )


def render(
    bench: Bench,
    startup: dict[str, Sample],
    tools: list[str],
    command: str,
    skipped_tools: dict[str, str],
    started: float,
) -> str:
    args = bench.args
    lines = [
        "# flow benchmark",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine_line()} (at the end of the run)",
        "- Versions: " + ", ".join(f"{t} {tool_version(t)}" for t in tools),
        f"- flow is run as `{os.path.join(BIN, 'flow')}` (the console script); each cell is the "
        f"median of up to {args.runs} runs (fewer when the runs of one cell pass "
        f"{args.budget:g} s); a run over {args.cap:g} s is killed.",
        f"- Total time: {time.perf_counter() - started:.0f} s",
    ]
    for t, why in skipped_tools.items():
        lines.append(f"- {t}: not run ({why})")
    lines += [
        "",
        "Workloads: " + "; ".join(f"**{k.upper()}** {v}" for k, v in DESCRIPTIONS.items()),
        "",
    ]

    # Main table: medians, ratio to make.
    lines += [
        "## Times (median; ratio against make at the same workload and N)",
        "",
        "| workload | N | tool | full -j1 | full -j2 | no-op | incremental | peak RSS no-op / full |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for (name, n, tool), samples in bench.results.items():
        make = bench.results.get((name, n, "make"), {})
        cells = []
        for sc in SCENARIOS:
            s = samples.get(sc)
            if s is None:
                cells.append("")
            elif not s.ok:
                cells.append(s.note or "—")
            else:
                c = fmt_s(s.median)
                m = make.get(sc)
                if tool != "make" and m is not None and m.ok:
                    c += f" ({ratio(s.median, m.median)})"
                cells.append(c)
        mem = []
        for sc in ("no-op", "full -j1"):
            s = samples.get(sc)
            mem.append(f"{max(s.rss):.0f}" if s is not None and s.ok else "—")
        lines.append(
            f"| {name.upper()} | {n:,} | {tool} | "
            + " | ".join(cells)
            + f" | {' / '.join(mem)} MiB |"
        )

    # flow against each peer.
    peers = [t for t in tools if t not in ("flow", "make")]
    if "flow" in tools and peers:
        lines += [
            "",
            "## flow against each peer (peer time / flow time: above 1× flow is faster)",
            "",
            "| workload | N | peer | full -j1 | full -j2 | no-op | incremental |",
            "|---|---:|---|---:|---:|---:|---:|",
        ]
        for (name, n, tool), samples in bench.results.items():
            if tool not in peers:
                continue
            flow = bench.results.get((name, n, "flow"), {})
            cells = []
            for sc in SCENARIOS:
                p, f = samples.get(sc), flow.get(sc)
                if p is not None and f is not None and p.ok and f.ok:
                    cells.append(ratio(p.median, f.median))
                else:
                    cells.append(p.note if p is not None and p.note else "—")
            lines.append(f"| {name.upper()} | {n:,} | {tool} | " + " | ".join(cells) + " |")

    if startup:
        py = startup.get("python -c pass")
        lines += [
            "",
            "## Start-up (median; ratio against `python -c pass`)",
            "",
            "| command | runs | median | min | max | ratio | CPU user + sys | peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for label, s in startup.items():
            if not s.ok:
                lines.append(f"| {label} | | {s.note} | | | | | |")
                continue
            r = ratio(s.median, py.median) if py is not None and py.ok else ""
            lines.append(
                f"| {label} | {len(s.times)} | {fmt_s(s.median)} | {fmt_s(min(s.times))} | "
                f"{fmt_s(max(s.times))} | {r} | {s.cpu_text()} | {max(s.rss):.0f} MiB |"
            )

    lines += targets(bench, startup)
    lines += [
        "",
        "## Every measurement (wall median, min, max; CPU user + system of the median run)",
        "",
        "| workload | N | tool | scenario | median | min | max | runs | CPU user + sys | peak RSS |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, n, tool), samples in bench.results.items():
        for sc in SCENARIOS:
            s = samples.get(sc)
            if s is None:
                continue
            if not s.ok:
                lines.append(f"| {name.upper()} | {n:,} | {tool} | {sc} | {s.note} | | | | | |")
                continue
            lines.append(
                f"| {name.upper()} | {n:,} | {tool} | {sc} | {fmt_s(s.median)} | "
                f"{fmt_s(min(s.times))} | {fmt_s(max(s.times))} | {len(s.times)} | "
                f"{s.cpu_text()} | {max(s.rss):.0f} MiB |"
            )
    lines += [
        "",
        "Notes:",
        "- pytask `-j2` needs the pytask-parallel plugin, which the bench extra leaves out (n/a).",
        "- Luigi decides by existence only: its incremental run does not rebuild the edited "
        "source's task (it measures a no-op that finds everything complete).",
        "- W2 incremental edits the seed, so the whole chain reruns; W1 and W3 edit source N/2.",
        "- CPU user + sys: `ru_utime` + `ru_stime` from the same `wait4` (with the children the "
        "tool waited for); file creation on a busy disk shows up as system time.",
        "- Peak RSS is `ru_maxrss` of the child from `os.wait4` (for make: the largest of make "
        "and the children it waited for).",
    ]
    return "\n".join(lines) + "\n"


def targets(bench: Bench, startup: dict[str, Sample]) -> list[str]:
    """Issue 16's targets, checked against this run's medians (only those it measured)."""
    r = bench.results

    def med(name: str, n: int, tool: str, sc: str) -> float | None:
        s = r.get((name, n, tool), {}).get(sc)
        return s.median if s is not None and s.ok else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    rows = []

    def check(what: str, value: float | None, limit: float, unit: str, below: bool = True) -> None:
        if value is None:
            rows.append(f"| {what} | not measured | {'≤' if below else '≥'} {limit:g}{unit} | — |")
            return
        met = value <= limit if below else value >= limit
        rows.append(
            f"| {what} | {value:.2f}{unit} | {'≤' if below else '≥'} {limit:g}{unit} | "
            f"{'met' if met else '**missed**'} |"
        )

    big = 10_000
    noop = med("w1", big, "flow", "no-op")
    check("W1 N=10,000 no-op: flow / make", ratio(noop, med("w1", big, "make", "no-op")), 4, "×")
    check(
        "W1 N=10,000 no-op: doit / flow",
        ratio(med("w1", big, "doit", "no-op"), noop),
        5,
        "×",
        below=False,
    )
    check(
        "W1 N=1,000 no-op: doit / flow",
        ratio(med("w1", 1000, "doit", "no-op"), med("w1", 1000, "flow", "no-op")),
        1,
        "×",
        below=False,
    )
    check(
        "W1F (flow.Files per task) N=10,000 no-op: flow / make",
        ratio(med("w1f", big, "flow", "no-op"), med("w1f", big, "make", "no-op")),
        4,
        "×",
    )
    check(
        "W1 N=10,000 full -j1: flow / make",
        ratio(med("w1", big, "flow", "full -j1"), med("w1", big, "make", "full -j1")),
        0.6,
        "×",
    )
    for name in ("w1", "w1f", "w2", "w3"):
        check(
            f"{name.upper()} N=10,000 full: flow -j2 / flow -j1",
            ratio(med(name, big, "flow", "full -j2"), med(name, big, "flow", "full -j1")),
            1,
            "×",
        )
    check(
        "W3 N=10,000 full -j2: flow / make -j2",
        ratio(med("w3", big, "flow", "full -j2"), med("w3", big, "make", "full -j2")),
        1.5,
        "×",
    )
    for sc in ("full -j1", "incremental"):
        check(
            f"W2 N=10,000 {sc}: flow / doit",
            ratio(med("w2", big, "flow", sc), med("w2", big, "doit", sc)),
            1,
            "×",
        )
    py = startup.get("python -c pass")
    for label in (
        "completion `flow Squ<Tab>`",
        "flow -f Flowfile.example --list",
        "flow --version",
    ):
        s = startup.get(label)
        value = s.median / py.median if s and py and s.ok and py.ok else None
        check(f"{label} / `python -c pass`", value, 3, "×")
    check(
        "W1 flow no-op growth N=10,000 → 100,000",
        ratio(med("w1", 100_000, "flow", "no-op"), noop),
        12,
        "×",
    )
    s = r.get(("w1", 100_000, "flow"), {}).get("no-op")
    check(
        "W1 N=100,000 flow no-op peak RSS",
        max(s.rss) if s is not None and s.ok else None,
        400,
        " MiB",
    )
    return [
        "",
        "## Issue 16 targets",
        "",
        "| target | measured | limit | verdict |",
        "|---|---:|---:|---|",
        *rows,
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="N=100 only, 3 runs (a quick look)")
    p.add_argument("--n", default=None, help="comma-separated task counts (default 100,1000,10000)")
    p.add_argument("--runs", type=int, default=None, help="runs per measurement (default 5)")
    p.add_argument("--tools", default=",".join(ALL_TOOLS))
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="any of: full -j1, full -j2, no-op, incremental",
    )
    p.add_argument(
        "--big",
        action="store_true",
        help="also flow's W1 no-op and memory at N=100,000 (takes minutes)",
    )
    p.add_argument("--cap", type=float, default=120.0, help="kill a single run after this many s")
    p.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="stop repeating a measurement once its runs add up to this many s",
    )
    p.add_argument("--startup-runs", type=int, default=None, help="default: 10 (3 with --quick)")
    p.add_argument("--completion-runs", type=int, default=20)
    p.add_argument("--no-startup", action="store_true", help="skip the start-up section")
    p.add_argument("--out", help="also write the markdown to FILE")
    p.add_argument("--keep", action="store_true", help="keep the scratch directories")
    p.add_argument("--scratch", help="where to generate workloads (default: a new temp dir)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.n is None:
        args.n = "100" if args.quick else "100,1000,10000"
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.startup_runs is None:
        args.startup_runs = 3 if args.quick else 10
    return args


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    command = shlex.join(
        [
            os.path.relpath(sys.executable) if sys.executable.startswith(REPO) else sys.executable,
            "benchmarks/run.py",
            *(sys.argv[1:] if argv is None else argv),
        ]
    )
    ns = [int(x.replace("_", "")) for x in args.n.split(",") if x]
    wanted = [t.strip() for t in args.tools.split(",") if t.strip()]
    names = [w.strip().lower() for w in args.workloads.split(",") if w.strip()]
    scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    for t in wanted:
        if t not in ALL_TOOLS:
            sys.exit(f"unknown tool {t!r}: choose from {', '.join(ALL_TOOLS)}")
    skipped = {t: why for t in wanted if (why := tool_available(t)) is not None}
    for t, why in skipped.items():
        print(f"note: skipping {t}: {why}", file=sys.stderr)
    tools = [t for t in wanted if t not in skipped]
    # A SIGTERM (a CI timeout) unwinds through the finally below, which removes the scratch dir.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    scratch = args.scratch or tempfile.mkdtemp(prefix="flow-bench-")
    os.makedirs(os.path.join(scratch, "logs"), exist_ok=True)
    bench = Bench(args, scratch)
    bench.say(f"{command}\n{machine_line()}\nscratch: {scratch}")
    try:
        startup = (
            {}
            if args.no_startup or "flow" not in tools
            else bench.startup(args.startup_runs, args.completion_runs)
        )
        for name in names:
            for n in ns:
                for tool in ["make"] + [t for t in tools if t != "make"]:
                    if tool in tools and supports(name, tool):
                        bench.measure(name, n, tool, scenarios)
        if args.big and "flow" in tools and "w1" in names:
            bench.measure("w1", 100_000, "flow", ("full -j1", "no-op"))
    finally:
        if not args.keep and not args.scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    text = render(bench, startup, tools, command, skipped, started)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
