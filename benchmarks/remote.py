"""Remote targets against local files: the same 1,000-task graph on moto's S3 server and on disk.

Usage: python benchmarks/remote.py [--n 1000] [--runs 3] [--out FILE]

Each task reads its own input object (``in/I.txt``) and writes an output object (``out/I.txt``).
For S3 the harness starts ``python -m moto.server`` on 127.0.0.1 (needs the ``test`` extra),
uploads the inputs with boto3, and counts the HTTP requests flow makes from the server's log.
It reports the full build and the median no-op of each, and the no-op's request count (and how
many of those read an object's bytes: a no-op must read none).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

FLOWFILE = textwrap.dedent(
    """
    import os
    import flow

    BASE = os.environ["BENCH_BASE"]

    def target(path):
        return flow.target_for(BASE + path)

    class Input(flow.ExternalTask):
        i = flow.IntParameter()
        def output(self):
            return target(f"in/{self.i}.txt")

    class Step(flow.Task):
        i = flow.IntParameter()
        def requires(self):
            return Input(i=self.i)
        def output(self):
            return target(f"out/{self.i}.txt")
        def run(self):
            with self.input().open() as fin, self.output().open("w") as fout:
                fout.write(fin.read())

    class All(flow.WrapperTask):
        n = flow.IntParameter()
        def requires(self):
            return [Step(i=i) for i in range(self.n)]
    """
)


def _timed(cwd: Path, env: dict[str, str], n: int) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "flow", "-q", "All", f"n={n}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(f"flow failed:\n{proc.stderr}")
    return time.perf_counter() - started


def _measure(name: str, cwd: Path, env: dict[str, str], n: int, runs: int, log: Any) -> dict:
    full = _timed(cwd, env, n)
    mark = len(log()) if log else 0
    noops = [_timed(cwd, env, n) for _ in range(runs)]
    requests = log()[mark:] if log else []
    per_run = [r for r in requests if '"' in r]
    data = [r for r in per_run if re.search(r'"GET /[^ ?]+/(in|out)/\d+\.txt[ ?]', r)]
    return {
        "name": name,
        "full": full,
        "noop": statistics.median(noops),
        "requests": len(per_run) / runs if log else None,
        "data_gets": len(data) / runs if log else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from servers import S3

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        local = root / "local"
        (local / "in").mkdir(parents=True)
        (local / "Flowfile.py").write_text(FLOWFILE)
        for i in range(args.n):
            (local / "in" / f"{i}.txt").write_text(f"line {i}\n")
        env = {**os.environ, "BENCH_BASE": ""}
        rows.append(_measure("local files", local, env, args.n, args.runs, None))

        s3 = S3(root / "moto.log")
        try:
            client = s3.client()
            client.create_bucket(Bucket="bench")
            for i in range(args.n):
                client.put_object(Bucket="bench", Key=f"in/{i}.txt", Body=f"line {i}\n".encode())
            remote = root / "remote"
            remote.mkdir()
            (remote / "Flowfile.py").write_text(FLOWFILE)
            env = {**os.environ, **s3.env, "BENCH_BASE": "s3://bench/"}
            rows.append(_measure("S3 (moto)", remote, env, args.n, args.runs, s3.requests))
        finally:
            s3.stop()
    lines = [
        f"N = {args.n} tasks, each reading one input and writing one output; no-op median of "
        f"{args.runs}.",
        "",
        "| targets | full build | no-op | no-op requests | data GETs in a no-op |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        req = "—" if r["requests"] is None else f"{r['requests']:.0f}"
        gets = "—" if r["data_gets"] is None else f"{r['data_gets']:.0f}"
        lines.append(
            f"| {r['name']} | {r['full']:.2f} s | {r['noop'] * 1000:.0f} ms | {req} | {gets} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
