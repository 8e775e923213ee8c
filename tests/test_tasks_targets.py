"""Tasks, targets and in-process builds (SPEC §1, §3, §4, §8): the Luigi-shaped Python API."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

import flow
from flow.errors import ParameterError
from flow.target import TMP_SUFFIX


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file and directory under root, with file contents: a snapshot of the disk."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = None
        for f in filenames:
            full = os.path.join(dirpath, f)
            out[os.path.relpath(full, root)] = Path(full).read_bytes()
    return out


def leftovers(directory: Path) -> list[str]:
    """Temporary siblings left behind by atomic writes."""
    return [p.name for p in directory.iterdir() if TMP_SUFFIX in p.name or p.name.startswith(".")]


# -- identity, ids, parameters ----------------------------------------------------------------


class UniqueFoo(flow.Task):
    n = flow.IntParameter()
    label = flow.Parameter(default="x")


def test_instances_are_unique_per_class_and_parameter_values():
    assert UniqueFoo(n=3) is UniqueFoo(n=3)
    assert UniqueFoo(n=3) is UniqueFoo(3)
    assert UniqueFoo(n=3) is UniqueFoo(n=3, label="x")
    assert UniqueFoo(n=3) is not UniqueFoo(n=4)
    assert UniqueFoo(n=3) is not UniqueFoo(n=3, label="y")


def test_task_id_reads_family_with_parameters():
    class IdFoo(flow.Task):
        n = flow.IntParameter()

    class IdNoParams(flow.Task):
        pass

    assert IdFoo(n=3).task_id == "IdFoo(n=3)"
    assert IdNoParams().task_id == "IdNoParams()"
    assert UniqueFoo(n=3, label="y").task_id == "UniqueFoo(n=3, label=y)"


def test_positional_arguments_follow_declaration_order():
    class PositionalFoo(flow.Task):
        b = flow.IntParameter()
        a = flow.IntParameter()
        c = flow.Parameter(default="z")

    t = PositionalFoo(100, 2)
    assert (t.b, t.a, t.c) == (100, 2, "z")
    assert t is PositionalFoo(b=100, a=2)
    assert t.task_id == "PositionalFoo(b=100, a=2, c=z)"


def test_subclass_parameters_follow_inherited_ones():
    class PositionalBase(flow.Task):
        x = flow.IntParameter()

    class PositionalChild(PositionalBase):
        y = flow.IntParameter()

    t = PositionalChild(1, 2)
    assert (t.x, t.y) == (1, 2)


def test_unknown_parameter_is_a_clear_error_suggesting_names():
    class UnknownParamFoo(flow.Task):
        count = flow.IntParameter(default=1)

    with pytest.raises(ParameterError) as info:
        UnknownParamFoo(cuont=3)
    message = str(info.value)
    assert "cuont" in message
    assert "UnknownParamFoo" in message
    assert "count" in message


def test_missing_parameter_is_a_clear_error_naming_it():
    class MissingParamFoo(flow.Task):
        n = flow.IntParameter()

    with pytest.raises(ParameterError) as info:
        MissingParamFoo()
    message = str(info.value)
    assert "'n'" in message or " n " in message or "n=" in message
    assert "MissingParamFoo" in message
    assert "missing" in message


def test_too_many_positional_arguments_is_a_parameter_error():
    class TooManyFoo(flow.Task):
        n = flow.IntParameter()

    with pytest.raises(ParameterError) as info:
        TooManyFoo(1, 2)
    assert "TooManyFoo" in str(info.value)


def test_same_parameter_given_positionally_and_by_name_is_a_parameter_error():
    class TwiceFoo(flow.Task):
        n = flow.IntParameter()

    with pytest.raises(ParameterError) as info:
        TwiceFoo(1, n=2)
    assert "n" in str(info.value)


# -- requires() and input() -------------------------------------------------------------------


class ShapeLeaf(flow.Task):
    i = flow.IntParameter()

    def output(self):
        return flow.LocalTarget(f"leaf_{self.i}.txt")


def _paths(struct):
    if isinstance(struct, dict):
        return {k: _paths(v) for k, v in struct.items()}
    if isinstance(struct, tuple):
        return tuple(_paths(v) for v in struct)
    if isinstance(struct, list):
        return [_paths(v) for v in struct]
    return struct.path


def test_input_of_a_single_requirement_is_its_output():
    class InputSingle(flow.Task):
        def requires(self):
            return ShapeLeaf(1)

    assert isinstance(InputSingle().input(), flow.LocalTarget)
    assert InputSingle().input().path == "leaf_1.txt"


def test_input_mirrors_a_list_of_requirements():
    class InputList(flow.Task):
        def requires(self):
            return [ShapeLeaf(1), ShapeLeaf(2)]

    assert _paths(InputList().input()) == ["leaf_1.txt", "leaf_2.txt"]


def test_input_mirrors_a_tuple_of_requirements():
    class InputTuple(flow.Task):
        def requires(self):
            return (ShapeLeaf(1), ShapeLeaf(2))

    assert _paths(InputTuple().input()) == ("leaf_1.txt", "leaf_2.txt")


def test_input_mirrors_a_dict_of_requirements():
    class InputDict(flow.Task):
        def requires(self):
            return {"a": ShapeLeaf(1), "b": [ShapeLeaf(2), ShapeLeaf(3)]}

    assert _paths(InputDict().input()) == {"a": "leaf_1.txt", "b": ["leaf_2.txt", "leaf_3.txt"]}


def test_input_of_a_generator_requires_is_a_list_in_order():
    class InputGenerator(flow.Task):
        def requires(self):
            for i in range(3):
                yield ShapeLeaf(i)

    assert _paths(InputGenerator().input()) == ["leaf_0.txt", "leaf_1.txt", "leaf_2.txt"]
    assert [t.task_id for t in InputGenerator().deps()] == [
        "ShapeLeaf(i=0)",
        "ShapeLeaf(i=1)",
        "ShapeLeaf(i=2)",
    ]


def test_input_mirrors_dict_outputs_of_a_requirement():
    class DictOutputs(flow.Task):
        def output(self):
            return {"x": flow.LocalTarget("x.txt"), "y": flow.LocalTarget("y.txt")}

    class InputOfDictOutputs(flow.Task):
        def requires(self):
            return DictOutputs()

    assert _paths(InputOfDictOutputs().input()) == {"x": "x.txt", "y": "y.txt"}


def test_input_of_no_requirements_is_empty():
    class InputNone(flow.Task):
        def requires(self):
            return None

    assert not InputNone().input()


# -- clone, namespace, wrapper, external ------------------------------------------------------


def test_clone_copies_shared_parameters_and_applies_overrides():
    class CloneSource(flow.Task):
        n = flow.IntParameter()
        mode = flow.Parameter(default="fast")

    class CloneTarget(flow.Task):
        n = flow.IntParameter()
        extra = flow.IntParameter(default=0)

    src = CloneSource(n=5, mode="slow")
    assert src.clone() is src
    assert src.clone(mode="safe") is CloneSource(n=5, mode="safe")
    other = src.clone(CloneTarget, extra=2)
    assert other is CloneTarget(n=5, extra=2)


def test_task_namespace_prefixes_the_family_and_task_id():
    class NamespacedBar(flow.Task):
        task_namespace = "examples"
        n = flow.IntParameter(default=1)

    assert NamespacedBar.task_family == "examples.NamespacedBar"
    assert NamespacedBar().task_family == "examples.NamespacedBar"
    assert NamespacedBar().task_id == "examples.NamespacedBar(n=1)"


class ExistsFlag(flow.Target):
    """A custom target: only exists() (SPEC: a ten-line class)."""

    def __init__(self, present: bool) -> None:
        self.present = present

    def exists(self) -> bool:
        return self.present


def test_wrapper_task_is_complete_exactly_when_its_requirements_are():
    class WrapLeaf(flow.Task):
        ok = flow.BoolParameter()

        def output(self):
            return ExistsFlag(self.ok)

    class WrapAllDone(flow.WrapperTask):
        def requires(self):
            return [WrapLeaf(ok=True), WrapLeaf(ok=True)]

    class WrapOneMissing(flow.WrapperTask):
        def requires(self):
            return [WrapLeaf(ok=True), WrapLeaf(ok=False)]

    assert WrapAllDone().complete() is True
    assert WrapOneMissing().complete() is False


def test_task_without_outputs_is_never_complete():
    class PhonyNeverComplete(flow.Task):
        pass

    assert PhonyNeverComplete().complete() is False


def test_task_complete_follows_output_existence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    class CompleteByOutput(flow.Task):
        def output(self):
            return flow.LocalTarget("c.txt")

    assert not CompleteByOutput().complete()
    Path("c.txt").write_text("x")
    assert CompleteByOutput().complete()


def test_custom_target_with_only_exists_works_as_an_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = []

    class CustomTargetDone(flow.Task):
        def output(self):
            return ExistsFlag(True)

        def run(self):
            ran.append(self.task_id)

    class CustomTargetNotDone(flow.Task):
        def output(self):
            return ExistsFlag(False)

        def run(self):
            ran.append(self.task_id)

    assert ExistsFlag(True).fingerprint() is None
    assert flow.build([CustomTargetDone()])
    assert ran == []
    result = flow.build([CustomTargetNotDone()])
    # run() ran but the target still does not exist: the task fails naming its output.
    assert ran == ["CustomTargetNotDone()"]
    assert not result
    assert result.failed == ["CustomTargetNotDone()"]


def test_external_task_with_existing_output_builds_and_its_dependent_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("raw.csv").write_text("1\n2\n")

    class ExternalRaw(flow.ExternalTask):
        def output(self):
            return flow.LocalTarget("raw.csv")

    class UsesExternalRaw(flow.Task):
        def requires(self):
            return ExternalRaw()

        def output(self):
            return flow.LocalTarget("total.txt")

        def run(self):
            with self.input().open() as f, self.output().open("w") as out:
                out.write(str(sum(int(x) for x in f)))

    assert ExternalRaw().complete()
    result = flow.build([UsesExternalRaw()])
    assert result
    assert Path("total.txt").read_text() == "3"
    assert result.ran == ["UsesExternalRaw()"]


def test_missing_external_output_fails_the_build_without_running_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = []

    class ExternalAbsent(flow.ExternalTask):
        def output(self):
            return flow.LocalTarget("absent.csv")

    class UsesExternalAbsent(flow.Task):
        def requires(self):
            return ExternalAbsent()

        def output(self):
            return flow.LocalTarget("never.txt")

        def run(self):
            ran.append(1)

    assert not ExternalAbsent().complete()
    result = flow.build([UsesExternalAbsent()])
    assert not result
    assert ran == []
    assert "absent.csv" in result.plan.missing
    assert not Path("never.txt").exists()


# -- LocalTarget ------------------------------------------------------------------------------


def test_local_target_write_then_read_text(tmp_path):
    t = flow.LocalTarget(tmp_path / "a.txt")
    assert not t.exists()
    with t.open("w") as f:
        f.write("hello\n")
    assert t.exists()
    with t.open("r") as f:
        assert f.read() == "hello\n"
    assert t.path == str(tmp_path / "a.txt")


def test_local_target_write_is_invisible_until_the_with_block_exits(tmp_path):
    t = flow.LocalTarget(tmp_path / "b.txt")
    with t.open("w") as f:
        f.write("partial")
        f.flush()
        assert not t.exists()
    assert t.exists()


def test_exception_inside_with_leaves_no_file_and_no_temporary_sibling(tmp_path):
    t = flow.LocalTarget(tmp_path / "c.txt")
    with pytest.raises(RuntimeError):
        with t.open("w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert not t.exists()
    assert list(tmp_path.iterdir()) == []


def test_exception_inside_with_keeps_the_previous_content(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("old")
    t = flow.LocalTarget(path)
    with pytest.raises(RuntimeError):
        with t.open("w") as f:
            f.write("new")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_close_without_with_commits_the_file(tmp_path):
    t = flow.LocalTarget(tmp_path / "d.txt")
    f = t.open("w")
    f.write("luigi habit")
    assert not t.exists()
    f.close()
    assert (tmp_path / "d.txt").read_text() == "luigi habit"
    assert leftovers(tmp_path) == []


def test_writer_dropped_without_close_leaves_nothing(tmp_path):
    t = flow.LocalTarget(tmp_path / "e.txt")
    f = t.open("w")
    f.write("never committed")
    del f
    gc.collect()
    assert not t.exists()
    assert list(tmp_path.iterdir()) == []


def test_binary_write_and_read_round_trip(tmp_path):
    t = flow.LocalTarget(tmp_path / "blob.bin")
    data = bytes(range(256)) * 4
    with t.open("wb") as f:
        f.write(data)
    with t.open("rb") as f:
        assert f.read() == data


def test_text_mode_refuses_bytes_and_binary_mode_refuses_text(tmp_path):
    with pytest.raises(TypeError), flow.LocalTarget(tmp_path / "t.txt").open("w") as f:
        f.write(b"bytes")
    with pytest.raises(TypeError), flow.LocalTarget(tmp_path / "b.bin").open("wb") as f:
        f.write("text")
    assert list(tmp_path.iterdir()) == []


def test_unsupported_open_mode_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError) as info:
        flow.LocalTarget(tmp_path / "x").open("a")
    assert "'a'" in str(info.value)


def test_remove_deletes_the_file_and_a_missing_file_is_not_an_error(tmp_path):
    path = tmp_path / "gone.txt"
    path.write_text("x")
    t = flow.LocalTarget(path)
    t.remove()
    assert not path.exists()
    t.remove()


def test_remove_deletes_a_directory_target(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "f").write_text("x")
    flow.LocalTarget(tmp_path / "d").remove()
    assert not (tmp_path / "d").exists()


def test_writing_creates_parent_directories(tmp_path):
    t = flow.LocalTarget(tmp_path / "deep" / "er" / "f.txt")
    with t.open("w") as f:
        f.write("x")
    assert (tmp_path / "deep" / "er" / "f.txt").read_text() == "x"


def test_temporary_path_moves_into_place_on_success(tmp_path):
    t = flow.LocalTarget(tmp_path / "out" / "made.txt")
    with t.temporary_path() as tmp:
        assert tmp != t.path
        assert os.path.dirname(tmp) == os.path.dirname(t.path)
        Path(tmp).write_text("via temp")
        assert not t.exists()
    assert Path(t.path).read_text() == "via temp"
    assert os.listdir(tmp_path / "out") == ["made.txt"]


def test_temporary_path_discards_on_error(tmp_path):
    t = flow.LocalTarget(tmp_path / "made.txt")
    with pytest.raises(RuntimeError), t.temporary_path() as tmp:
        Path(tmp).write_text("partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_local_targets_with_one_path_are_equal():
    assert flow.LocalTarget("a/b.txt") == flow.LocalTarget("a/b.txt")
    assert len({flow.LocalTarget("a/b.txt"), flow.LocalTarget("a/b.txt")}) == 1
    assert flow.LocalTarget("a/b.txt") != flow.LocalTarget("a/c.txt")


# -- flow.build in-process --------------------------------------------------------------------


class BuildNumbers(flow.Task):
    n = flow.IntParameter(default=3)
    log: list[str] = []

    def output(self):
        return flow.LocalTarget(f"out/numbers_{self.n}.txt")

    def run(self):
        BuildNumbers.log.append(self.task_id)
        with self.output().open("w") as f:
            for i in range(1, self.n + 1):
                f.write(f"{i}\n")


class BuildSquares(flow.Task):
    n = flow.IntParameter(default=3)
    log: list[str] = []

    def requires(self):
        return [BuildNumbers(n=self.n)]

    def output(self):
        return flow.LocalTarget(f"out/squares_{self.n}.txt")

    def run(self):
        BuildSquares.log.append(self.task_id)
        with self.input()[0].open() as fin, self.output().open("w") as fout:
            for line in fin:
                k = int(line)
                fout.write(f"{k}: {k * k}\n")


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    BuildNumbers.log.clear()
    BuildSquares.log.clear()
    return tmp_path


def test_build_runs_tasks_in_order_and_is_truthy(build_dir):
    result = flow.build([BuildSquares(n=3)])
    assert result
    assert result.ran == ["BuildNumbers(n=3)", "BuildSquares(n=3)"]
    assert (build_dir / "out" / "squares_3.txt").read_text() == "1: 1\n2: 4\n3: 9\n"


def test_build_accepts_luigi_keywords_and_a_single_task(build_dir):
    assert flow.build([BuildSquares(n=2)], local_scheduler=True, workers=1)
    assert flow.build(BuildSquares(n=2))


def test_second_build_has_nothing_to_do(build_dir):
    assert flow.build([BuildSquares(n=3)])
    result = flow.build([BuildSquares(n=3)])
    assert result
    assert result.ran == []
    assert set(result.up_to_date) == {"BuildNumbers(n=3)", "BuildSquares(n=3)"}
    assert BuildNumbers.log == ["BuildNumbers(n=3)"]


def test_force_reruns_the_task_and_its_upstream(build_dir):
    assert flow.build([BuildSquares(n=3)])
    result = flow.build([BuildSquares(n=3)], force=True)
    assert result
    assert result.ran == ["BuildNumbers(n=3)", "BuildSquares(n=3)"]
    assert BuildSquares.log == ["BuildSquares(n=3)", "BuildSquares(n=3)"]


def test_dry_run_changes_nothing_on_disk(build_dir):
    (build_dir / "keep.txt").write_text("x")
    before = tree(build_dir)
    result = flow.build([BuildSquares(n=3)], dry_run=True)
    assert tree(build_dir) == before
    assert BuildNumbers.log == [] and BuildSquares.log == []
    assert result.plan.to_run == ["BuildNumbers(n=3)", "BuildSquares(n=3)"]


def test_dry_run_after_a_build_changes_nothing_on_disk(build_dir):
    assert flow.build([BuildSquares(n=3)])
    (build_dir / "out" / "numbers_3.txt").write_text("1\n2\n3\n4\n")
    before = tree(build_dir)
    result = flow.build([BuildSquares(n=3)], dry_run=True)
    assert tree(build_dir) == before
    assert result.plan.to_run  # something is stale, yet nothing ran
    assert BuildSquares.log == ["BuildSquares(n=3)"]


class FailingRun(flow.Task):
    def output(self):
        return flow.LocalTarget("out/failing.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write("half")
            raise ValueError("deliberate failure in run()")


class AfterFailingRun(flow.Task):
    ran = False

    def requires(self):
        return FailingRun()

    def output(self):
        return flow.LocalTarget("out/after.txt")

    def run(self):
        AfterFailingRun.ran = True
        self.output().open("w").close()


def test_failing_run_does_not_raise_and_result_lists_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    AfterFailingRun.ran = False
    result = flow.build([AfterFailingRun()])
    assert not result
    assert result.failed == ["FailingRun()"]
    assert result.skipped == ["AfterFailingRun()"]
    assert AfterFailingRun.ran is False
    assert "deliberate failure in run()" in result.results["FailingRun()"].error
    assert not (tmp_path / "out" / "failing.txt").exists()
    assert leftovers(tmp_path / "out") == []


def test_run_that_writes_its_output_directly_then_fails_leaves_no_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    class DirectWriteFails(flow.Task):
        def output(self):
            return flow.LocalTarget("direct.txt")

        def run(self):
            Path("direct.txt").write_text("half")
            raise RuntimeError("after writing")

    result = flow.build([DirectWriteFails()])
    assert not result
    assert result.failed == ["DirectWriteFails()"]
    assert not (tmp_path / "direct.txt").exists()


def test_run_that_creates_no_output_fails_naming_the_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    class ForgetsOutput(flow.Task):
        def output(self):
            return flow.LocalTarget("forgotten.txt")

        def run(self):
            pass

    result = flow.build([ForgetsOutput()])
    assert not result
    assert result.failed == ["ForgetsOutput()"]
    assert "forgotten.txt" in result.results["ForgetsOutput()"].error


def test_phony_task_runs_every_time(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []

    class PhonyEveryTime(flow.Task):
        def run(self):
            calls.append(1)

    assert flow.build([PhonyEveryTime()])
    assert flow.build([PhonyEveryTime()])
    assert calls == [1, 1]


class DynLeaf(flow.Task):
    i = flow.IntParameter()

    def output(self):
        return flow.LocalTarget(f"dyn/leaf_{self.i}.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write(str(self.i * 10))


class DynParent(flow.Task):
    def output(self):
        return flow.LocalTarget("dyn/total.txt")

    def run(self):
        first = yield DynLeaf(1)
        rest = yield [DynLeaf(2), DynLeaf(3)]
        targets = [first, *rest]
        total = sum(int(Path(t.path).read_text()) for t in targets)
        with self.output().open("w") as f:
            f.write(str(total))


def test_dynamic_dependencies_are_built_and_their_outputs_sent_back(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = flow.build([DynParent()])
    assert result, result.results
    assert (tmp_path / "dyn" / "total.txt").read_text() == "60"
    for i in (1, 2, 3):
        assert f"DynLeaf(i={i})" in result.ran
    assert result.ran[-1] == "DynParent()"


class DynReqLeaf(flow.Task):
    name = flow.Parameter()

    def output(self):
        return flow.LocalTarget(f"dynreq/{self.name}.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write(self.name.upper())


class DynReqParent(flow.Task):
    checked: list[bool] = []

    def output(self):
        return flow.LocalTarget("dynreq/joined.txt")

    def run(self):
        reqs = {"a": DynReqLeaf("a"), "b": DynReqLeaf("b")}

        def custom_complete(complete_fn):
            done = all(complete_fn(t) for t in reqs.values())
            DynReqParent.checked.append(done)
            return done

        got = yield flow.DynamicRequirements(reqs, custom_complete)
        assert set(got) == {"a", "b"}
        text = Path(got["a"].path).read_text() + Path(got["b"].path).read_text()
        with self.output().open("w") as f:
            f.write(text)


def test_dynamic_requirements_object_is_built_and_its_outputs_sent_back_in_shape(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = flow.build([DynReqParent()])
    assert result, result.results
    assert (tmp_path / "dynreq" / "joined.txt").read_text() == "AB"


def test_dynamic_requirements_complete_uses_custom_complete():
    class DynCompleteLeaf(flow.Task):
        def output(self):
            return ExistsFlag(False)

    seen = []
    reqs = flow.DynamicRequirements([DynCompleteLeaf()], lambda fn: seen.append(fn) or True)
    assert reqs.flat_requirements == [DynCompleteLeaf()]
    assert reqs.complete() is True
    assert len(seen) == 1
    assert flow.DynamicRequirements([DynCompleteLeaf()]).complete() is False


def test_failing_dynamic_dependency_fails_the_parent_without_raising(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    class DynBadLeaf(flow.Task):
        def output(self):
            return flow.LocalTarget("bad.txt")

        def run(self):
            raise RuntimeError("leaf broke")

    class DynBadParent(flow.Task):
        def output(self):
            return flow.LocalTarget("parent.txt")

        def run(self):
            yield DynBadLeaf()
            self.output().open("w").close()

    result = flow.build([DynBadParent()])
    assert not result
    assert "DynBadParent()" in result.failed
    assert not (tmp_path / "parent.txt").exists()


def test_wrapper_task_build_runs_what_it_requires(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    BuildNumbers.log.clear()

    class BuildAllNumbers(flow.WrapperTask):
        def requires(self):
            return [BuildNumbers(n=1), BuildNumbers(n=2)]

    assert not BuildAllNumbers().complete()
    result = flow.build([BuildAllNumbers()])
    assert result
    assert sorted(BuildNumbers.log) == ["BuildNumbers(n=1)", "BuildNumbers(n=2)"]
    assert BuildAllNumbers().complete()


def test_overridden_complete_decides_whether_the_task_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []

    class CompleteOverride(flow.Task):
        done = flow.BoolParameter()

        def complete(self):
            return self.done

        def run(self):
            calls.append(self.done)

    assert flow.build([CompleteOverride(done=True)])
    assert calls == []
    flow.build([CompleteOverride(done=False)])
    assert calls == [False]


def test_temporary_path_replaces_an_existing_directory_output(project):
    """A task rebuilding a directory output through temporary_path(): the new tree replaces the
    old one (a directory cannot be renamed over a non-empty one), and nothing is left beside it."""
    project.flowfile(
        """
        import os

        class D(flow.Task):
            v = flow.IntParameter(default=1)
            def output(self):
                return flow.LocalTarget("outdir")
            def run(self):
                with self.output().temporary_path() as tmp:
                    os.makedirs(tmp)
                    with open(os.path.join(tmp, f"f{self.v}.txt"), "w") as f:
                        f.write(str(self.v))
        """
    )
    assert project.run("D").returncode == 0
    proc = project.run("D", "v=2")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(project.root / "outdir")) == ["f2.txt"]
    assert not [n for n in os.listdir(project.root) if n.startswith(".outdir")]
