"""Save-to-rebuild-start latency of `flow -w` on a small graph (median of N edits).

Usage: python benchmarks/watch.py [--edits 10] [--polling] [--burst 1000]

It writes a Flowfile (an input file feeding a chain of three tasks) into a temporary directory,
starts `flow -w` there, then edits the input N times. For each edit it measures the time from
the write to the watcher's "flow: in.txt changed" line, printed just before the re-plan starts,
and waits for the rebuild to finish before the next edit. The latency includes the debounce
(flow.watch.QUIET): a burst of events ends only after that long without another.

With --burst N it measures instead how a burst of N changed files written by a live process
(as a `git checkout` does) is gathered: how long the writes took and how many re-plans they
made, one being the aim. tests/test_watch.py proves the gathering with flow stopped while the
files are written, so that a loaded CI machine cannot space the writes out; this is the same
claim with a writer running beside flow, which is a matter of speed (flow.watch.QUIET, MAX_WAIT).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

FLOWFILE = textwrap.dedent(
    """
    import flow

    class Source(flow.ExternalTask):
        def output(self):
            return flow.LocalTarget("in.txt")

    class Step(flow.Task):
        k = flow.IntParameter()
        def requires(self):
            return Step(k=self.k - 1) if self.k > 1 else Source()
        def output(self):
            return flow.LocalTarget(f"out/step{self.k}.txt")
        def run(self):
            with self.input().open() as f, self.output().open("w") as g:
                g.write(f.read() + str(self.k))
    """
)


class Lines:
    """The watcher's output lines, each with the time it was read."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.items: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        for stream in (proc.stdout, proc.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self.cond:
                self.items.append((time.perf_counter(), line.rstrip("\n")))
                self.cond.notify_all()

    def wait(self, start: int, predicate: object, timeout: float = 20) -> tuple[int, float]:
        """The index and time of the first line from ``start`` on that satisfies ``predicate``."""
        deadline = time.perf_counter() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.items)):
                    if predicate(self.items[i][1]):  # type: ignore[operator]
                        return i, self.items[i][0]
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise SystemExit(
                        "timed out; output so far:\n" + "\n".join(text for _, text in self.items)
                    )
                self.cond.wait(left)


BURST_FLOWFILE = textwrap.dedent(
    """
    import flow

    class Concat(flow.Task):
        def requires(self):
            return flow.Files("data/*.txt")
        def output(self):
            return flow.LocalTarget("all.txt")
        def run(self):
            with self.output().open("w") as out:
                for t in self.input():
                    with t.open() as f:
                        out.write(f.read())
    """
)


def _watch(tmp: str, words: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """`flow -w WORDS` in ``tmp``, its output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "flow", "-w", *words],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def idle(lines: Lines) -> bool:
    """Whether each re-plan begun (a "changed" line) has ended (a "watching" line after it)."""
    with lines.cond:
        texts = [text for _, text in lines.items]
    watching = sum(t.startswith("flow: watching") for t in texts)
    return watching == sum(t.endswith(" changed") for t in texts) + 1


def burst(n: int, env: dict[str, str]) -> None:
    """N files rewritten in one go beside a running `flow -w`: how many re-plans follow."""
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "Flowfile.py"), "w") as f:
            f.write(BURST_FLOWFILE)
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        names = [os.path.join(data, f"{i:05d}.txt") for i in range(n)]
        for name in names:
            with open(name, "w") as f:
                f.write("a")
        proc = _watch(tmp, ["Concat"], env)
        try:
            lines = Lines(proc)
            pos, _ = lines.wait(0, lambda s: s.startswith("flow: watching"))
            start = time.perf_counter()
            for name in names:
                with open(name, "w") as f:
                    f.write("b")
            written = time.perf_counter() - start
            # One more file, once the burst's rebuild is over: every "changed" line before its
            # own belongs to the burst (and its own names more paths if the burst leaked into it).
            all_txt = os.path.join(tmp, "all.txt")
            for text in ("b" * n, "b" * n + "c"):
                deadline = time.perf_counter() + 60
                while not (os.path.exists(all_txt) and open(all_txt).read() == text):
                    if time.perf_counter() > deadline:
                        raise SystemExit("timed out waiting for a rebuild")
                    time.sleep(0.05)
                if text == "b" * n:
                    with open(os.path.join(data, "zz.txt"), "w") as f:
                        f.write("c")
            while not idle(lines):  # every re-plan begun has ended
                if time.perf_counter() > deadline:
                    raise SystemExit("timed out waiting for the last rebuild")
                time.sleep(0.05)
            end = len(lines.items)
        finally:
            proc.kill()
            proc.wait()
    *replans, last = [text for _, text in lines.items[pos + 1 : end] if text.endswith(" changed")]
    leaked = "" if last == "flow: data/zz.txt changed" else f" (and some joined the next: {last})"
    print(
        f"flow -w: a burst of {n} rewritten files (written in {written * 1000:.0f} ms) made "
        f"{len(replans)} re-plan{'' if len(replans) == 1 else 's'}{leaked}: " + "; ".join(replans)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--polling", action="store_true", help="measure FLOW_WATCH_POLLING=1")
    parser.add_argument("--burst", type=int, metavar="N", help="measure a burst of N writes")
    args = parser.parse_args()
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    if args.polling:
        env["FLOW_WATCH_POLLING"] = "1"
    if args.burst:
        burst(args.burst, env)
        return
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "Flowfile.py"), "w") as f:
            f.write(FLOWFILE)
        with open(os.path.join(tmp, "in.txt"), "w") as f:
            f.write("0")
        proc = _watch(tmp, ["Step", "k=3"], env)
        try:
            lines = Lines(proc)
            pos, _ = lines.wait(0, lambda s: s.startswith("flow: watching"))
            latencies = []
            for n in range(1, args.edits + 1):
                time.sleep(0.3)  # a pause between saves, as a person makes
                start = time.perf_counter()
                with open(os.path.join(tmp, "in.txt"), "w") as f:
                    f.write(str(n))
                pos, seen = lines.wait(pos + 1, lambda s: s.endswith(" changed"))
                latencies.append(seen - start)
                pos, _ = lines.wait(pos + 1, lambda s: s.startswith("flow: watching"))
        finally:
            proc.kill()
            proc.wait()
    ms = sorted(x * 1000 for x in latencies)
    mode = "polling" if args.polling else "native"
    print(
        f"flow -w ({mode}): save-to-rebuild-start latency over {len(ms)} edits: "
        f"median {statistics.median(ms):.0f} ms (min {ms[0]:.0f}, max {ms[-1]:.0f})"
    )


if __name__ == "__main__":
    main()
