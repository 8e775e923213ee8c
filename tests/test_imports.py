"""The CLI's import path stays light: completion and every no-op re-run the program."""

import json
import subprocess
import sys

HEAVY = [
    "fsspec",
    "s3fs",
    "botocore",
    "paramiko",
    "ftplib",
    "watchdog",
    "dask",
    "distributed",
    "concurrent.futures",
    "multiprocessing",
    "asyncio",
]


def test_importing_the_cli_pulls_in_no_heavy_module():
    """Importing flow.cli (what the console script does) must not import optional backends."""
    code = "import json, sys, flow.cli; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    assert not [m for m in HEAVY if m in loaded]


def test_a_local_no_op_build_imports_no_heavy_module(project):
    """A no-op of a local graph neither needs nor imports the process pool or remote backends."""
    project.flowfile(
        """
        class Hello(flow.Task):
            def output(self):
                return flow.LocalTarget("hello.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("hi")
        """
    )
    assert project.run("Hello").returncode == 0
    code = (
        "import sys, json\n"
        "from flow.cli import main\n"
        "try:\n    main(['-q', 'Hello'])\nexcept SystemExit as e:\n    code = e.code\n"
        "print(json.dumps([code, sorted(sys.modules)]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True
    )
    status, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status == 0
    assert not [m for m in HEAVY if m in set(loaded)]
    # Needed only after a failure, an interruption or a hand edit: never on a clean no-op.
    assert not [m for m in ("pathlib", "shutil", "traceback", "glob", "subprocess") if m in loaded]


def test_version_imports_click_and_the_cli_but_not_the_engine():
    """`flow --version` (and every completion Tab) must not load the build engine."""
    code = (
        "import sys, json\n"
        "from flow.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    loaded = set(json.loads(out.strip().splitlines()[-1]))
    engine = [
        "flow.spine",
        "flow.decide",
        "flow.executor",
        "flow.store.records",
        "flow.task",
        "sqlite3",
    ]
    assert [m for m in engine if m in loaded] == []
