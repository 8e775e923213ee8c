"""Watch mode (`flow -w`): rebuild on save, survive bad edits, never loop on flow's own writes."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Live, Project
from flow.watch import WatchSet, match_segments

# An input flow did not write (in.txt), a task that reads it, and one that copies the result
# with a shell command (a direct, non-atomic write) beside the input, in a watched directory.
PIPELINE = """
class Source(flow.ExternalTask):
    def output(self):
        return flow.LocalTarget("in.txt")

class Upper(flow.Task):
    def requires(self):
        return Source()
    def output(self):
        return flow.LocalTarget("upper.txt")
    def run(self):
        with self.input().open() as f, self.output().open("w") as g:
            g.write(f.read().upper())

class Copy(flow.Task):
    def requires(self):
        return Upper()
    def output(self):
        return flow.LocalTarget("copy.txt")
    def run(self):
        flow.sh("cp upper.txt copy.txt", echo=False)
"""


class Watcher(Live):
    """`flow -w ...` as a subprocess; its output lines are collected by reader threads."""

    def __init__(self, project: Project, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(project.root, "-w", *args, env=env)

    def changed_lines(self) -> list[str]:
        """The lines that begin a re-plan: "flow: PATH changed" or "flow: PATH and N more changed"."""
        with self._lock:
            return [ln for ln in self.lines if ln.startswith("flow: ") and ln.endswith(" changed")]

    def rebuilds(self) -> int:
        """How many re-plans began."""
        return len(self.changed_lines())

    def wait_watching(self, n: int) -> None:
        """Wait for the n-th "watching" status line: the n-th build is over."""
        self.wait_for(lambda: self.count("flow: watching") >= n, f"status line #{n}")

    def wait_idle(self) -> None:
        """Wait until every re-plan begun so far has finished (its "watching" line is out)."""
        self.wait_for(
            lambda: self.count("flow: watching") == self.rebuilds() + 1, "the watcher to be idle"
        )


@pytest.fixture
def watcher(project: Project) -> Callable[..., Watcher]:
    def start(*args: str, env: dict[str, str] | None = None) -> Watcher:
        w = Watcher(project, *args, env=env)
        project.started.append(w)  # the project fixture kills it at the end
        return w

    return start


def _file_is(path: Path, text: str) -> Callable[[], bool]:
    return lambda: path.exists() and path.read_text() == text


def _save(path: Path, text: str) -> None:
    """Save as many editors do: write a temporary beside the file, rename it over the file. The
    change is one event, so a writer stalled by a loaded machine cannot split it across two
    re-plans (an in-place write truncates first, then writes)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_editing_an_input_rebuilds_what_needs_it(project, watcher):
    """A running watcher sees in.txt change and rebuilds both tasks below it."""
    project.flowfile(PIPELINE)
    project.write("in.txt", "hello\n")
    w = watcher("Copy")
    w.wait_watching(1)
    assert project.read("copy.txt") == "HELLO\n"
    project.write("in.txt", "world\n")
    w.wait_for(_file_is(project.root / "copy.txt", "WORLD\n"), "copy.txt to be rebuilt")
    w.wait_watching(2)
    assert w.count("Upper()") == 2 and w.count("Copy()") == 2


def test_flows_own_writes_and_an_idle_watcher_cause_no_runs(project, watcher):
    """Outputs written beside the input (atomically and by a shell command), the temporaries and
    .flow/ never trigger a run: after a build, nothing happens until a user edits something."""
    project.flowfile(PIPELINE)
    project.write("in.txt", "hello\n")
    w = watcher("Copy")
    w.wait_watching(1)
    _save(project.root / "in.txt", "again\n")
    w.wait_watching(2)
    # "Nothing happens" is shown by what happens next: one more edit. The events of the second
    # build's own writes reach the watcher before this edit's; had any been wanted, it would
    # start a re-plan of its own or join this one, and either way a changed line would say so.
    _save(project.root / "in.txt", "third\n")
    w.wait_for(_file_is(project.root / "copy.txt", "THIRD\n"), "the rebuild after the last edit")
    w.wait_idle()
    assert w.changed_lines() == ["flow: in.txt changed"] * 2, w.text
    assert w.count("Upper()") == 3
    assert w.proc.poll() is None


def test_a_broken_flowfile_is_reported_and_the_fix_rebuilds(project, watcher):
    """A syntax error prints flow's usual message and the watcher lives on; saving the fix rebuilds
    with the new code."""
    flowfile = project.flowfile(PIPELINE)
    project.write("in.txt", "hello\n")
    w = watcher("Copy")
    w.wait_watching(1)
    good = flowfile.read_text()
    flowfile.write_text(good + "\nbroken = (\n")
    w.wait_for(lambda: "was never closed" in w.text, "the syntax error")
    w.wait_watching(2)
    assert w.proc.poll() is None
    assert "Traceback" not in w.text
    flowfile.write_text(good.replace("f.read().upper()", "f.read().upper() + '!'"))
    w.wait_for(_file_is(project.root / "copy.txt", "HELLO\n!"), "the rebuild with the fixed code")


def test_an_import_error_keeps_the_last_good_graph_watched(project, watcher):
    """A Flowfile raising on import is reported; inputs of the last good graph are still watched,
    and once the Flowfile is fixed an input edit made meanwhile is built."""
    flowfile = project.flowfile(PIPELINE)
    project.write("in.txt", "hello\n")
    w = watcher("Copy")
    w.wait_watching(1)
    good = flowfile.read_text()
    flowfile.write_text(good + "\nundefined_name\n")
    w.wait_for(lambda: "NameError" in w.text, "the import error")
    w.wait_watching(2)
    project.write("in.txt", "meanwhile\n")
    w.wait_watching(3)  # still broken: the error again, nothing built from code not on disk
    assert w.count("NameError") == 2
    flowfile.write_text(good)
    w.wait_for(_file_is(project.root / "copy.txt", "MEANWHILE\n"), "the rebuild after the fix")


def test_a_thousand_changed_inputs_rebuild_once(project, watcher):
    """A `git checkout`-like burst of 1,000 changed files is one re-plan and one run."""
    project.flowfile(
        """
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
    data = project.root / "data"
    data.mkdir()
    for i in range(1000):
        (data / f"{i:04d}.txt").write_text("a")
    w = watcher("Concat")
    w.wait_watching(1)
    # The burst arrives as fast as a checkout makes it: flow is stopped while the files change,
    # so a loaded machine cannot space the test's writes out beyond the debounce (QUIET).
    w.proc.send_signal(signal.SIGSTOP)
    try:
        for i in range(1000):
            (data / f"{i:04d}.txt").write_text("b")
    finally:
        w.proc.send_signal(signal.SIGCONT)
    w.wait_for(_file_is(project.root / "all.txt", "b" * 1000), "the rebuild")
    w.wait_idle()
    # One more edit shows the burst is over: any of its events still pending would reach the
    # watcher first, and start a re-plan of their own or join this one.
    _save(data / "0000.txt", "c")
    w.wait_for(_file_is(project.root / "all.txt", "c" + "b" * 999), "the rebuild after one edit")
    w.wait_idle()
    assert w.changed_lines() == [
        "flow: data/0000.txt and 999 more changed",
        "flow: data/0000.txt changed",
    ], w.text
    assert w.count("Concat()") == 3, w.text


def test_a_new_file_matching_a_files_glob_is_picked_up(project, watcher):
    """flow.Files("src/**/*.c"): a file created in a new subdirectory joins the inputs."""
    project.flowfile(
        """
        class Count(flow.Task):
            def requires(self):
                return flow.Files("src/**/*.c")
            def output(self):
                return flow.LocalTarget("count.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(str(len(self.input())))
        """
    )
    project.write("src/a.c", "int a;")
    w = watcher("Count")
    w.wait_watching(1)
    project.write("src/notes.txt", "not an input")  # matches nothing: no rebuild
    project.write("src/lib/b.c", "int b;")
    w.wait_for(_file_is(project.root / "count.txt", "2"), "count.txt to count the new file")
    assert "notes.txt" not in w.text


def test_a_changed_project_module_is_reloaded(project, watcher):
    """A module the Flowfile imports from the project is watched and re-imported on a change."""
    project.write("settings.py", 'GREETING = "hello"\n')
    project.flowfile(
        """
        import settings

        class Greet(flow.Task):
            def output(self):
                return flow.LocalTarget(f"out/{settings.GREETING}.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(settings.GREETING)
        """
    )
    w = watcher("Greet")
    w.wait_watching(1)
    project.write("settings.py", 'GREETING = "howdy"\n')
    w.wait_for(_file_is(project.root / "out/howdy.txt", "howdy"), "the reloaded module's output")


def test_a_failing_task_does_not_stop_the_watcher(project, watcher):
    """A task failure is reported; the next edit that fixes the input rebuilds."""
    project.flowfile(
        """
        class Source(flow.ExternalTask):
            def output(self):
                return flow.LocalTarget("in.txt")

        class Check(flow.Task):
            def requires(self):
                return Source()
            def output(self):
                return flow.LocalTarget("ok.txt")
            def run(self):
                text = self.input().open().read()
                if "bad" in text:
                    raise ValueError("bad input")
                with self.output().open("w") as f:
                    f.write(text)
        """
    )
    project.write("in.txt", "good\n")
    w = watcher("Check")
    w.wait_watching(1)
    project.write("in.txt", "bad\n")
    w.wait_for(lambda: "FAILED" in w.text, "the failure")
    w.wait_watching(2)
    project.write("in.txt", "fine\n")
    w.wait_for(_file_is(project.root / "ok.txt", "fine\n"), "the rebuild after the fix")


def test_excluded_paths_do_not_trigger_a_rebuild(project, watcher):
    """--watch-exclude GLOB: changes to matching paths are ignored; others still rebuild."""
    flowfile = project.flowfile(PIPELINE)
    project.write("in.txt", "hello\n")
    w = watcher("--watch-exclude", "in.*", "Copy")
    w.wait_watching(1)
    project.write("in.txt", "ignored\n")
    # A change that is not excluded, after it: in.txt's events reach the watcher first; were they
    # wanted, they would start a re-plan of their own or join this one, and the line would say so.
    _save(flowfile, flowfile.read_text() + "# saved again\n")
    w.wait_watching(2)
    assert w.changed_lines() == ["flow: Flowfile.py changed"], w.text


def test_ctrl_c_exits_cleanly_with_status_0(project, watcher):
    """SIGINT to an idle watcher ends it with status 0 and no traceback."""
    project.flowfile(PIPELINE)
    project.write("in.txt", "hello\n")
    w = watcher("Copy")
    w.wait_watching(1)
    w.proc.send_signal(signal.SIGINT)
    code, _, _ = w.finish()  # the exit status, once its output is read to the end
    assert code == 0
    assert "Traceback" not in w.text


def test_polling_is_used_when_asked(project, watcher):
    """FLOW_WATCH_POLLING=1 (for network filesystems) polls, says so, and still rebuilds."""
    project.flowfile(PIPELINE)
    project.write("in.txt", "hello\n")
    w = watcher("Copy", env={"FLOW_WATCH_POLLING": "1"})
    w.wait_watching(1)
    assert "polling" in w.text
    # No wait needed: the first scan is taken when the directory is scheduled, before the
    # "watching" line, and the edit changes in.txt's size.
    project.write("in.txt", "polled\n")
    w.wait_for(_file_is(project.root / "copy.txt", "POLLED\n"), "the polled rebuild")


def test_native_watching_failure_falls_back_to_polling(monkeypatch):
    """If the native observer cannot watch (an inotify limit), flow warns and polls instead."""
    import watchdog.observers

    from flow.watch import Observer

    class Broken(watchdog.observers.Observer):  # type: ignore[misc,valid-type]
        def schedule(self, *args, **kwargs):
            raise OSError(28, "inotify watch limit reached")

    warnings: list[str] = []

    class Reporter:
        def warning(self, message: str) -> None:
            warnings.append(message)

    monkeypatch.setattr(watchdog.observers, "Observer", Broken)
    observer = Observer(Reporter())
    try:
        observer.watch({os.getcwd(): False})
        assert observer.polling
        assert warnings and "polling" in warnings[0]
    finally:
        observer.stop()


def test_glob_segments_match_like_glob_does():
    """`**` spans directories (or none); wildcards skip dot-files, as glob.glob does."""
    assert match_segments(["**", "*.c"], ["a.c"])
    assert match_segments(["**", "*.c"], ["x", "y", "a.c"])
    assert not match_segments(["*.c"], ["x", "a.c"])
    assert not match_segments(["*.c"], [".hidden.c"])
    assert not match_segments(["**", "*.c"], [".git", "a.c"])
    assert match_segments(["*", "*.txt"], ["d", "a.txt"])


def test_outputs_and_flows_files_are_ignored(tmp_path):
    """The watch set's judge: inputs count; outputs, things below output dirs, .flow/ and
    temporaries do not."""
    root = str(tmp_path)
    ws = WatchSet(root)
    ws.add_input(os.path.join(root, "in.txt"))
    ws.produced.add(os.path.join(root, "out"))
    assert ws.wants(os.path.join(root, "in.txt"))
    assert not ws.wants(os.path.join(root, "other.txt"))
    assert not ws.wants(os.path.join(root, "out", "a.txt"))
    assert not ws.wants(os.path.join(root, ".flow", "manifest.db"))
    assert not ws.wants(os.path.join(root, ".in.txt.0a1b2c3d.flow-tmp"))
