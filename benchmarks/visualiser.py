"""Measure the visualiser's costs: run-history overhead on W1 (fan-in) and page load in Chromium.

    python benchmarks/visualiser.py --baseline /path/to/other/checkout/src [--n 10000] [--runs 5]

History overhead: the same W1 flow workload is built (full, then no-op) alternately by this
checkout and by ``--baseline`` (a checkout without run history), each through ``python -m flow``.
Page load: ``--page 1000,10000`` records a run of a W1 graph of that size, serves it, and times
in headless Chromium from navigation until the graph is drawn and searchable. ``--shots DIR``
saves screenshots (the run list, a 1,000-task graph).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
sys.path.insert(0, HERE)

from workloads import generate  # noqa: E402

CPU: list[float] = []  # CPU seconds (user + system) of each flow() call, in order


def flow(src: str, root: str, *args: str) -> float:
    """Run flow from ``src`` in ``root``; return its wall time (its CPU time goes to CPU)."""
    env = {**os.environ, "PYTHONPATH": src, "NO_COLOR": "1"}
    before = os.times()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flow", *args], cwd=root, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    after = os.times()
    CPU.append(
        after.children_user - before.children_user + after.children_system - before.children_system
    )
    return time.perf_counter() - start


def overhead(baseline: str, n: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        w = generate("w1", "flow", n, os.path.join(scratch, "w1"))
        times: dict[tuple[str, str], list[float]] = {}
        cpu: dict[tuple[str, str], list[float]] = {}
        for _ in range(runs):
            for label, src in (("history", SRC), ("baseline", baseline)):
                w.clean()
                times.setdefault((label, "full"), []).append(flow(src, w.root))
                cpu.setdefault((label, "full"), []).append(CPU[-1])
                times.setdefault((label, "no-op"), []).append(flow(src, w.root))
                cpu.setdefault((label, "no-op"), []).append(CPU[-1])
        for scenario in ("full", "no-op"):
            a = statistics.median(times[("history", scenario)])
            b = statistics.median(times[("baseline", scenario)])
            lo_a = min(times[("history", scenario)])
            lo_b = min(times[("baseline", scenario)])
            print(f"W1 N={n} {scenario}: history {a:.3f} s, baseline {b:.3f} s, "
                  f"{100 * (a - b) / b:+.1f} % (median of {runs}); fastest {lo_a:.3f} s vs "
                  f"{lo_b:.3f} s, {100 * (lo_a - lo_b) / lo_b:+.1f} %")  # fmt: skip
            ca = statistics.median(cpu[("history", scenario)])
            cb = statistics.median(cpu[("baseline", scenario)])
            print(f"W1 N={n} {scenario}: CPU (user + system) history {ca:.3f} s, baseline "
                  f"{cb:.3f} s, {100 * (ca - cb) / cb:+.1f} % (median of {runs})")  # fmt: skip


# Run inside the flow process: time spent in the Recorder's event handlers on the main thread,
# and the CPU time of its writer thread, against the wall time of the whole build.
_ACCOUNT = """
import sys, time, threading
from flow import history
spent = [0.0, 0.0]
def timed(fn):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t
    return wrapper
for name in ("run_started", "task_started", "task_progress", "task_finished", "run_finished",
             "close"):
    setattr(history.Recorder, name, timed(getattr(history.Recorder, name)))
writer = history.Recorder._writer_thread
def counted(self, plan):
    try:
        writer(self, plan)
    finally:
        spent[1] += time.thread_time()
history.Recorder._writer_thread = counted
from flow.cli import main
start = time.perf_counter()
try:
    main([])
except SystemExit:
    pass
wall = time.perf_counter() - start
print(f"{wall:.3f} {spent[0]:.3f} {spent[1]:.3f}", file=sys.stderr)
"""


def accounted(n: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        w = generate("w1", "flow", n, os.path.join(scratch, "w1"))
        for scenario in ("full", "no-op"):
            shares = []
            for _ in range(runs):
                if scenario == "full":
                    w.clean()
                else:
                    flow(SRC, w.root)
                env = {**os.environ, "PYTHONPATH": SRC, "NO_COLOR": "1"}
                proc = subprocess.run([sys.executable, "-c", _ACCOUNT], cwd=w.root, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
                wall, main_thread, writer = map(float, proc.stderr.split()[-3:])
                shares.append(((main_thread + writer) / wall, wall, main_thread, writer))
            share, wall, main_thread, writer = sorted(shares)[len(shares) // 2]
            print(f"W1 N={n} {scenario}: build {wall:.3f} s; history on the main thread "
                  f"{main_thread:.3f} s + writer thread CPU {writer:.3f} s = {100 * share:.1f} % "
                  f"(median of {runs})")  # fmt: skip


def page(sizes: list[int], shots: str | None) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

    for n in sizes:
        with tempfile.TemporaryDirectory() as scratch:
            w = generate("w1", "flow", n, os.path.join(scratch, "w1"))
            flow(SRC, w.root)
            server = subprocess.Popen(
                [sys.executable, "-m", "flow", "--serve", "127.0.0.1:0"], cwd=w.root,
                env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                line = server.stdout.readline()  # type: ignore[union-attr]
                url = line.split(" at ", 1)[1].split(" ", 1)[0]
                measure(url, n, shots)
            finally:
                server.send_signal(signal.SIGINT)  # Ctrl-C: flow stops serving cleanly
                server.wait()


def measure(url: str, n: int, shots: str | None) -> None:
    import pytest

    try:
        from test_visualiser_browser import open_browser

        driver = open_browser()
    except pytest.skip.Exception as exc:
        print(f"page load: skipped ({exc})")
        return
    loads = []
    try:
        for _ in range(3):
            start = time.perf_counter()
            driver.get(url)
            ready = "return document.querySelectorAll('#viewport .node').length > 0"
            while not driver.execute_script(ready):
                time.sleep(0.01)
            driver.find_element("id", "search").send_keys("Square(i=7")
            while not driver.execute_script(
                "return document.querySelectorAll('#matches li').length"
            ):
                time.sleep(0.01)
            loads.append(time.perf_counter() - start)
        drawn = driver.execute_script("return document.querySelectorAll('#viewport .node').length")
        print(f"page load, {n} tasks ({drawn} nodes drawn): median {statistics.median(loads):.2f} s "
              f"of {loads}")  # fmt: skip
        if shots:
            os.makedirs(shots, exist_ok=True)
            driver.find_element("id", "search").clear()
            driver.execute_script("document.getElementById('matches').textContent = ''")
            driver.save_screenshot(os.path.join(shots, f"visualiser-{n}-tasks.png"))
    finally:
        driver.quit()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", help="src/ of a checkout without run history")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--account", action="store_true", help="time the history inside flow")
    p.add_argument("--page", default="", help="comma-separated graph sizes to load in Chromium")
    p.add_argument("--shots", help="save screenshots into this directory")
    args = p.parse_args()
    if args.baseline:
        overhead(args.baseline, args.n, args.runs)
    if args.account:
        accounted(args.n, args.runs)
    if args.page:
        page([int(x) for x in args.page.split(",")], args.shots)


if __name__ == "__main__":
    main()
