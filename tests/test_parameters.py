"""Typed parameters (SPEC §1, §8): parse a CLI string, default, description, canonical form, errors."""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path

import pytest

import flow
from flow.errors import ParameterError


def bound(param: flow.Parameter, name: str = "p") -> flow.Parameter:
    """A parameter as it is once declared on a class (its name set by __set_name__)."""
    param.__set_name__(object, name)
    return param


def assert_clear_error(param: flow.Parameter, text: str, *expected_words: str) -> str:
    """parse_cli must raise ParameterError naming the parameter, the value and the expected form."""
    with pytest.raises(ParameterError) as info:
        param.parse_cli(text, "Task")
    message = str(info.value)
    assert param.name in message
    assert text in message
    assert "Task" in message
    for word in expected_words:
        assert word in message, message
    return message


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


# -- Parameter (str) --------------------------------------------------------------------------


def test_string_parameter_parses_text_unchanged_and_serializes_it_back():
    p = bound(flow.Parameter())
    assert p.parse_cli("hello world", "Task") == "hello world"
    assert p.serialize("hello world") == "hello world"


def test_string_parameter_keeps_its_default_and_description():
    p = bound(flow.Parameter(default="x", description="a line of help"))
    assert p.has_default
    assert p.default == "x"
    assert p.description == "a line of help"


def test_parameter_without_default_has_none():
    p = bound(flow.Parameter())
    assert not p.has_default


# -- IntParameter -----------------------------------------------------------------------------


def test_int_parameter_parses_and_serializes_canonically():
    p = bound(flow.IntParameter(default=10, description="how many"), "n")
    assert p.parse_cli("20", "Task") == 20
    assert p.parse_cli(" 7 ", "Task") == 7
    assert p.serialize(20) == "20"
    assert p.default == 10
    assert p.description == "how many"


def test_int_parameter_bad_value_names_parameter_value_and_form():
    p = bound(flow.IntParameter(), "n")
    assert_clear_error(p, "abc", "integer")


def test_int_parameter_rejects_a_float_string():
    p = bound(flow.IntParameter(), "n")
    assert_clear_error(p, "2.5", "integer")


# -- FloatParameter ---------------------------------------------------------------------------


def test_float_parameter_parses_and_round_trips_through_its_canonical_form():
    p = bound(flow.FloatParameter(default=0.5, description="ratio"), "ratio")
    assert p.parse_cli("0.25", "Task") == 0.25
    assert p.parse_cli(p.serialize(0.1), "Task") == 0.1
    # 1 and 1.0 are one value, so they must have one canonical form (one task id).
    assert p.serialize(p.normalize(1)) == p.serialize(1.0)
    assert p.default == 0.5
    assert p.description == "ratio"


def test_float_parameter_bad_value_is_a_clear_error():
    p = bound(flow.FloatParameter(), "ratio")
    assert_clear_error(p, "half", "number")


# -- BoolParameter ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["true", "True", "1", "yes", "on"])
def test_bool_parameter_parses_true_spellings(text):
    assert bound(flow.BoolParameter(), "flag").parse_cli(text, "Task") is True


@pytest.mark.parametrize("text", ["false", "FALSE", "0", "no", "off"])
def test_bool_parameter_parses_false_spellings(text):
    assert bound(flow.BoolParameter(), "flag").parse_cli(text, "Task") is False


def test_bool_parameter_defaults_to_false_and_serializes_canonically():
    p = bound(flow.BoolParameter(description="verbose"), "flag")
    assert p.default is False
    assert p.description == "verbose"
    assert p.serialize(True) == "true"
    assert p.serialize(False) == "false"
    assert bound(flow.BoolParameter(default=True)).default is True


def test_bool_parameter_bad_value_is_a_clear_error():
    p = bound(flow.BoolParameter(), "flag")
    assert_clear_error(p, "maybe", "true or false")


# -- DateParameter ----------------------------------------------------------------------------


def test_date_parameter_parses_iso_dates_and_serializes_them_back():
    p = bound(flow.DateParameter(default=dt.date(2026, 1, 2), description="day"), "day")
    assert p.parse_cli("2026-11-25", "Task") == dt.date(2026, 11, 25)
    assert p.serialize(dt.date(2026, 11, 25)) == "2026-11-25"
    assert p.default == dt.date(2026, 1, 2)
    assert p.description == "day"


def test_date_parameter_default_given_as_string_is_parsed():
    assert bound(flow.DateParameter(default="2026-03-04")).default == dt.date(2026, 3, 4)


@pytest.mark.parametrize("text", ["25/11/2026", "2026-13-01", "tomorrow"])
def test_date_parameter_bad_value_is_a_clear_error(text):
    p = bound(flow.DateParameter(), "day")
    assert_clear_error(p, text, "YYYY-MM-DD")


# -- DateIntervalParameter --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "first", "end", "days"),
    [
        ("2026", dt.date(2026, 1, 1), dt.date(2027, 1, 1), 365),
        ("2026-11", dt.date(2026, 11, 1), dt.date(2026, 12, 1), 30),
        ("2026-12", dt.date(2026, 12, 1), dt.date(2027, 1, 1), 31),
        ("2026-W47", dt.date(2026, 11, 16), dt.date(2026, 11, 23), 7),
        ("2026-11-25", dt.date(2026, 11, 25), dt.date(2026, 11, 26), 1),
        ("2026-11-01-2026-11-08", dt.date(2026, 11, 1), dt.date(2026, 11, 8), 7),
    ],
)
def test_date_interval_parameter_parses_every_form_with_end_excluded(text, first, end, days):
    p = bound(flow.DateIntervalParameter(), "date_interval")
    interval = p.parse_cli(text, "Task")
    assert interval.date_a == first
    assert interval.date_b == end
    dates = interval.dates()
    assert len(dates) == days
    assert dates[0] == first
    assert dates[-1] == end - dt.timedelta(days=1)
    assert end not in dates
    assert p.serialize(interval) == text
    assert p.parse_cli(p.serialize(interval), "Task") == interval


def test_date_interval_range_form_lists_the_dates_before_the_end():
    interval = bound(flow.DateIntervalParameter()).parse_cli("2026-11-01-2026-11-03", "Task")
    assert interval.dates() == [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]


def test_date_interval_parameter_keeps_default_and_description():
    p = bound(flow.DateIntervalParameter(default="2026-11", description="window"))
    assert p.default.date_a == dt.date(2026, 11, 1)
    assert p.description == "window"


@pytest.mark.parametrize("text", ["26", "2026-11-08-2026-11-01", "2026-W60", "last week"])
def test_date_interval_parameter_bad_value_is_a_clear_error(text):
    p = bound(flow.DateIntervalParameter(), "date_interval")
    assert_clear_error(p, text, "2026-W47")


# -- ChoiceParameter --------------------------------------------------------------------------


def test_choice_parameter_accepts_a_choice():
    p = bound(
        flow.ChoiceParameter(choices=["debug", "release"], default="debug", description="mode")
    )
    assert p.parse_cli("release", "Task") == "release"
    assert p.serialize("release") == "release"
    assert p.default == "debug"
    assert p.description == "mode"


def test_choice_parameter_with_int_var_type_parses_ints():
    p = bound(flow.ChoiceParameter(choices=[1, 2, 3], var_type=int), "level")
    assert p.parse_cli("2", "Task") == 2


def test_choice_parameter_bad_value_lists_the_choices():
    p = bound(flow.ChoiceParameter(choices=["debug", "release"]), "mode")
    assert_clear_error(p, "fast", "debug", "release")


# -- EnumParameter ----------------------------------------------------------------------------


def test_enum_parameter_parses_member_names_and_serializes_the_name():
    p = bound(flow.EnumParameter(enum=Colour, default=Colour.RED, description="colour"), "colour")
    assert p.parse_cli("GREEN", "Task") is Colour.GREEN
    assert p.parse_cli("green", "Task") is Colour.GREEN
    assert p.serialize(Colour.GREEN) == "GREEN"
    assert p.default is Colour.RED
    assert p.description == "colour"


def test_enum_parameter_bad_value_lists_the_members():
    p = bound(flow.EnumParameter(enum=Colour), "colour")
    assert_clear_error(p, "BLUE", "RED", "GREEN")


# -- ListParameter ----------------------------------------------------------------------------


def test_list_parameter_parses_json_form():
    p = bound(flow.ListParameter(), "items")
    assert list(p.parse_cli("[1, 2, 3]", "Task")) == [1, 2, 3]


def test_list_parameter_parses_comma_form():
    p = bound(flow.ListParameter(), "items")
    assert list(p.parse_cli("a,b, c", "Task")) == ["a", "b", "c"]


def test_list_parameter_canonical_form_is_the_same_for_equal_lists_and_round_trips():
    p = bound(flow.ListParameter(default=[1, 2], description="numbers"), "items")
    a = p.serialize(p.parse_cli("[1, 2]", "Task"))
    b = p.serialize(p.parse_cli("[1,2]", "Task"))
    assert a == b
    assert list(p.parse_cli(a, "Task")) == [1, 2]
    assert list(p.default) == [1, 2]
    assert p.description == "numbers"


def test_list_parameter_value_is_hashable_so_tasks_can_share_it():
    p = bound(flow.ListParameter())
    hash(p.parse_cli("[[1, 2], [3]]", "Task"))


def test_list_parameter_bad_json_is_a_clear_error():
    p = bound(flow.ListParameter(), "items")
    assert_clear_error(p, "[1, 2", "list")


# -- DictParameter ----------------------------------------------------------------------------


def test_dict_parameter_parses_json_and_serializes_with_sorted_keys():
    p = bound(flow.DictParameter(default={"a": 1}, description="options"), "opts")
    value = p.parse_cli('{"b": 2, "a": 1}', "Task")
    assert dict(value) == {"a": 1, "b": 2}
    assert p.serialize(value) == p.serialize(p.parse_cli('{"a":1,"b":2}', "Task"))
    assert dict(p.parse_cli(p.serialize(value), "Task")) == {"a": 1, "b": 2}
    assert dict(p.default) == {"a": 1}
    assert p.description == "options"
    hash(value)


@pytest.mark.parametrize("text", ["[1, 2]", "{a: 1}"])
def test_dict_parameter_bad_value_is_a_clear_error(text):
    p = bound(flow.DictParameter(), "opts")
    assert_clear_error(p, text, "JSON object")


# -- PathParameter ----------------------------------------------------------------------------


def test_path_parameter_parses_to_a_path_and_serializes_it_back():
    p = bound(flow.PathParameter(default="data/in.csv", description="input"), "src")
    assert p.parse_cli("data/x.csv", "Task") == Path("data/x.csv")
    assert p.serialize(Path("data/x.csv")) == "data/x.csv"
    assert p.default == Path("data/in.csv")
    assert p.description == "input"


def test_path_parameter_empty_value_is_a_clear_error():
    p = bound(flow.PathParameter(), "src")
    with pytest.raises(ParameterError) as info:
        p.parse_cli("", "Task")
    assert "src" in str(info.value)
    assert "path" in str(info.value)


# -- OptionalParameter ------------------------------------------------------------------------


def test_optional_parameter_takes_none_and_empty_text_means_none():
    p = bound(flow.OptionalParameter(default=None, description="maybe"), "tag")
    assert p.default is None
    assert p.parse_cli("", "Task") is None
    assert p.parse_cli("v1", "Task") == "v1"
    assert p.serialize(None) == ""
    assert p.description == "maybe"


def test_optional_parameter_none_gives_a_task_id_and_keeps_identity():
    class OptionalParamTaskA(flow.Task):
        tag = flow.OptionalParameter(default=None)

    assert OptionalParamTaskA() is OptionalParamTaskA(tag=None)
    assert OptionalParamTaskA(tag="x").task_id == "OptionalParamTaskA(tag=x)"


# -- parameters on tasks: canonical forms in ids, significance -------------------------------


def test_task_id_uses_canonical_forms_of_typed_values():
    class CanonicalIdTask(flow.Task):
        n = flow.IntParameter()
        day = flow.DateParameter()
        flag = flow.BoolParameter()
        items = flow.ListParameter()

    t = CanonicalIdTask(n="3", day="2026-11-25", flag="yes", items="a,b")
    assert t is CanonicalIdTask(n=3, day=dt.date(2026, 11, 25), flag=True, items=["a", "b"])
    assert t.to_str_params() == {
        "n": "3",
        "day": "2026-11-25",
        "flag": "true",
        "items": flow.ListParameter().serialize(("a", "b")),
    }
    assert t.task_id.startswith("CanonicalIdTask(n=3, day=2026-11-25, flag=true, items=")


def test_insignificant_parameter_is_left_out_of_task_id_and_str_params():
    class InsignificantParamTask(flow.Task):
        n = flow.IntParameter()
        workers = flow.IntParameter(default=1, significant=False)

    t = InsignificantParamTask(n=3, workers=8)
    assert t.task_id == "InsignificantParamTask(n=3)"
    assert t.to_str_params() == {"n": "3"}
    assert t.workers == 8
    assert "workers" in t.to_str_params(only_significant=False)


def test_insignificant_parameter_does_not_change_identity():
    class InsignificantIdentityTask(flow.Task):
        n = flow.IntParameter()
        verbose = flow.BoolParameter(significant=False)

    a = InsignificantIdentityTask(n=1, verbose=False)
    b = InsignificantIdentityTask(n=1, verbose=True)
    assert a.task_id == b.task_id
    assert a == b
    assert hash(a) == hash(b)


def test_bad_value_passed_to_a_task_constructor_is_a_parameter_error():
    class BadCtorValueTask(flow.Task):
        n = flow.IntParameter()

    with pytest.raises(ParameterError) as info:
        BadCtorValueTask(n="many")
    message = str(info.value)
    assert "n" in message and "many" in message and "integer" in message
