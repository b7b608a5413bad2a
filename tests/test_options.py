"""Tests for cyclone.options (Tornado-compatible option parsing)."""

from __future__ import annotations

import datetime
import decimal
import io
import logging
import logging.handlers
import pathlib
import subprocess
import sys
import textwrap
from unittest import mock

import pytest

import cyclone.options
from cyclone.options import (
    Error,
    LogFormatter,
    OptionParser,
    define_logging_options,
    enable_pretty_logging,
)

dt = datetime.datetime
td = datetime.timedelta


@pytest.fixture
def parser() -> OptionParser:
    return OptionParser()


def parse_one(parser: OptionParser, text: str) -> object:
    parser.parse_command_line(["prog", f"--value={text}"])
    return parser.value


# -- types -----------------------------------------------------------------------

VALID = [
    (int, "443", 443),
    (int, "-1", -1),
    (int, "0", 0),
    (float, "1.5", 1.5),
    (float, "1e3", 1000.0),
    (float, "-2", -2.0),
    (str, "hello", "hello"),
    (str, "", ""),
    (str, "a=b,c", "a=b,c"),
    (str, " padded ", " padded "),
    (bool, "true", True),
    (bool, "True", True),
    (bool, "t", True),
    (bool, "1", True),
    (bool, "yes", True),
    (bool, "y", True),
    (bool, "on", True),
    (bool, "false", False),
    (bool, "FALSE", False),
    (bool, "f", False),
    (bool, "0", False),
    (bool, "no", False),
    (bool, "n", False),
    (bool, "off", False),
    (dt, "2013-04-28 13:08:09", dt(2013, 4, 28, 13, 8, 9)),
    (dt, "2013-04-28 13:08", dt(2013, 4, 28, 13, 8)),
    (dt, "2013-04-28T13:08:09", dt(2013, 4, 28, 13, 8, 9)),
    (dt, "2013-04-28T13:08", dt(2013, 4, 28, 13, 8)),
    (dt, "2013-04-28", dt(2013, 4, 28)),
    (dt, "20130428 13:08:09", dt(2013, 4, 28, 13, 8, 9)),
    (dt, "20130428 13:08", dt(2013, 4, 28, 13, 8)),
    (dt, "20130428", dt(2013, 4, 28)),
    (dt, "Sun Apr 28 13:08:09 2013", dt(2013, 4, 28, 13, 8, 9)),
    (dt, "13:08:09", dt(1900, 1, 1, 13, 8, 9)),
    (dt, "13:08", dt(1900, 1, 1, 13, 8)),
    (dt, "2013-04-28T13:08:09.250000", dt(2013, 4, 28, 13, 8, 9, 250000)),
    (
        dt,
        "2013-04-28T13:08:09+02:00",
        dt(2013, 4, 28, 13, 8, 9, tzinfo=datetime.timezone(td(hours=2))),
    ),
    (td, "1h", td(hours=1)),
    (td, "30m", td(minutes=30)),
    (td, "30min", td(minutes=30)),
    (td, "5s", td(seconds=5)),
    (td, "5 sec", td(seconds=5)),
    (td, "45", td(seconds=45)),
    (td, "1 day", td(days=1)),
    (td, "3 days", td(days=3)),
    (td, "1d", td(days=1)),
    (td, "2w", td(weeks=2)),
    (td, "2 weeks", td(weeks=2)),
    (td, "1h30m", td(hours=1, minutes=30)),
    (td, "1h 30m 15s", td(hours=1, minutes=30, seconds=15)),
    (td, "1 day 2 hours", td(days=1, hours=2)),
    (td, "1.5h", td(minutes=90)),
    (td, ".5m", td(seconds=30)),
    (td, "100ms", td(milliseconds=100)),
    (td, "250us", td(microseconds=250)),
    (td, "1H", td(hours=1)),
    (td, "-1h", td(hours=-1)),
    (decimal.Decimal, "1.10", decimal.Decimal("1.10")),
]


@pytest.mark.parametrize(("kind", "text", "expected"), VALID)
def test_parse_valid_values(parser: OptionParser, kind: type, text: str, expected: object) -> None:
    parser.define("value", type=kind)
    value = parse_one(parser, text)
    assert value == expected
    assert type(value) is type(expected)


INVALID = [
    (int, "abc"),
    (int, "1.5"),
    (int, ""),
    (float, "x"),
    (float, ""),
    (bool, "maybe"),
    (bool, "2"),
    (bool, ""),
    (dt, "yesterday"),
    (dt, "2013-13-01"),
    (dt, ""),
    (td, ""),
    (td, "h"),
    (td, "1 fortnight"),
    (td, "1h x"),
    (decimal.Decimal, "one"),
]


@pytest.mark.parametrize(("kind", "text"), INVALID)
def test_parse_invalid_values_raise_error_naming_option(
    parser: OptionParser, kind: type, text: str
) -> None:
    parser.define("value", type=kind, default=None)
    with pytest.raises(Error) as info:
        parse_one(parser, text)
    message = str(info.value)
    assert "'value'" in message
    assert repr(text) in message
    assert kind.__name__ in message
    # A failed parse leaves the previous value alone.
    assert parser.value is None


def test_timedelta_trailing_bare_number_counts_as_seconds(parser: OptionParser) -> None:
    parser.define("value", type=td)
    assert parse_one(parser, "1h30") == td(hours=1, seconds=30)


def test_unknown_timedelta_unit_is_reported(parser: OptionParser) -> None:
    parser.define("value", type=td)
    with pytest.raises(Error, match="unknown duration unit 'fortnight'"):
        parse_one(parser, "1 fortnight")


def test_bad_datetime_reason_is_reported(parser: OptionParser) -> None:
    parser.define("value", type=dt)
    with pytest.raises(Error, match="unrecognized date/time format"):
        parse_one(parser, "next tuesday")


# -- multiple values ----------------------------------------------------------------

MULTIPLE = [
    (str, "a,b,c", ["a", "b", "c"]),
    (str, "a", ["a"]),
    (str, "", []),
    (int, "1,2,3", [1, 2, 3]),
    (int, "1:3", [1, 2, 3]),
    (int, "5:5", [5]),
    (int, "1:3,7,10:11", [1, 2, 3, 7, 10, 11]),
    (int, "-2:0", [-2, -1, 0]),
    (float, "1.5,2", [1.5, 2.0]),
    (bool, "true,no,1", [True, False, True]),
    (td, "1h,30m", [td(hours=1), td(minutes=30)]),
]


@pytest.mark.parametrize(("kind", "text", "expected"), MULTIPLE)
def test_multiple_values(parser: OptionParser, kind: type, text: str, expected: list) -> None:
    parser.define("value", type=kind, multiple=True)
    assert parse_one(parser, text) == expected


@pytest.mark.parametrize("text", ["3:1", "1:x", "x:3", "1,,2", "1.5:3"])
def test_multiple_int_invalid(parser: OptionParser, text: str) -> None:
    parser.define("value", type=int, multiple=True)
    with pytest.raises(Error, match="'value'"):
        parse_one(parser, text)
    assert parser.value == []


def test_multiple_defaults_to_empty_list(parser: OptionParser) -> None:
    parser.define("hosts", multiple=True)
    assert parser.hosts == []


def test_multiple_type_inferred_from_list_default(parser: OptionParser) -> None:
    parser.define("ports", default=[80], multiple=True)
    assert parse_one_named(parser, "ports", "81:82") == [81, 82]


def parse_one_named(parser: OptionParser, name: str, text: str) -> object:
    parser.parse_command_line(["prog", f"--{name}={text}"])
    return parser[name]


def test_multiple_set_requires_list_of_type(parser: OptionParser) -> None:
    parser.define("ports", type=int, multiple=True)
    parser.ports = [1, 2]
    assert parser.ports == [1, 2]
    parser.ports = (3,)
    assert parser.ports == [3]
    with pytest.raises(Error, match="list of int"):
        parser.ports = 5
    with pytest.raises(Error, match="'ports' is required to be a int"):
        parser.ports = [1, "2"]
    assert parser.ports == [3]


# -- definition, naming, access ---------------------------------------------------


def test_type_inference(parser: OptionParser) -> None:
    parser.define("port", default=80)
    parser.define("name")
    parser.define("ratio", default=0.5)
    parser.define("count", default=1, type=float)
    parser.parse_command_line(["prog", "--port=81", "--name=x", "--ratio=2", "--count=3"])
    assert (parser.port, parser.name, parser.ratio, parser.count) == (81, "x", 2.0, 3.0)
    assert isinstance(parser.count, float)


def test_redefinition_raises(parser: OptionParser) -> None:
    parser.define("port", default=80)
    with pytest.raises(Error, match="'port' already defined in .*test_options.py"):
        parser.define("port", default=81)
    assert parser.port == 80


@pytest.mark.parametrize(("first", "second"), [("log_dir", "log-dir"), ("log-dir", "log_dir")])
def test_redefinition_ignores_dash_underscore(parser: OptionParser, first: str, second: str) -> None:
    parser.define(first)
    with pytest.raises(Error, match="already defined"):
        parser.define(second)


def test_dash_and_underscore_are_equivalent(parser: OptionParser) -> None:
    parser.define("log_dir", default="/tmp")
    parser.parse_command_line(["prog", "--log-dir=/a"])
    assert parser.log_dir == "/a"
    parser.parse_command_line(["prog", "--log_dir=/b"])
    assert parser["log-dir"] == "/b"
    assert parser["log_dir"] == "/b"
    assert "log-dir" in parser and "log_dir" in parser
    # Listings keep the name as defined.
    assert "log_dir" in list(parser)
    assert parser.as_dict()["log_dir"] == "/b"


def test_attribute_and_item_access(parser: OptionParser) -> None:
    parser.define("port", default=80)
    assert parser.port == 80
    assert parser["port"] == 80
    parser.port = 81
    assert parser["port"] == 81
    parser["port"] = 82
    assert parser.port == 82
    parser.port = None
    assert parser.port is None


def test_unknown_names_raise_attribute_error(parser: OptionParser) -> None:
    with pytest.raises(AttributeError, match="Unrecognized option 'nope'"):
        parser.nope
    with pytest.raises(AttributeError, match="Unrecognized option 'nope'"):
        parser["nope"]
    with pytest.raises(AttributeError, match="Unrecognized option 'nope'"):
        parser.nope = 1
    assert "nope" not in parser
    assert 1 not in parser


@pytest.mark.parametrize(
    ("kind", "bad"),
    [(int, "80"), (int, 1.5), (str, 5), (float, "1.0"), (float, True), (bool, "yes"), (td, 5), (dt, "2013-01-01")],
)
def test_setattr_type_check(parser: OptionParser, kind: type, bad: object) -> None:
    parser.define("value", type=kind)
    with pytest.raises(Error, match=f"'value' is required to be a {kind.__name__}"):
        parser.value = bad
    assert parser.value is None


def test_float_option_accepts_int(parser: OptionParser) -> None:
    parser.define("ratio", type=float)
    parser.ratio = 2
    assert parser.ratio == 2.0 and isinstance(parser.ratio, float)


def test_items_iter_as_dict_dir(parser: OptionParser) -> None:
    parser.define("port", default=80)
    parser.define("host", default="localhost")
    assert parser.items() == [("help", None), ("port", 80), ("host", "localhost")]
    assert list(parser) == ["help", "port", "host"]
    assert parser.as_dict() == {"help": None, "port": 80, "host": "localhost"}
    assert {"port", "host", "define"} <= set(dir(parser))


def test_groups_and_group_dict(parser: OptionParser) -> None:
    parser.define("port", default=80)
    parser.define("db_host", default="db", group="db")
    parser.define("db_port", default=5432, group="db")
    assert parser.groups() == {"", __file__, "db"}
    assert parser.group_dict("db") == {"db_host": "db", "db_port": 5432}
    assert parser.group_dict(__file__) == {"port": 80}
    assert parser.group_dict("") == parser.as_dict()
    assert parser.group_dict("missing") == {}


# -- command line -------------------------------------------------------------------


def test_parse_command_line_returns_remaining_args(parser: OptionParser) -> None:
    parser.define("port", default=80)
    rest = parser.parse_command_line(["prog", "--port=1", "serve", "--port=2"])
    assert rest == ["serve", "--port=2"]
    assert parser.port == 1


def test_double_dash_ends_options(parser: OptionParser) -> None:
    parser.define("port", default=80)
    assert parser.parse_command_line(["prog", "--port=1", "--", "--port=2", "x"]) == ["--port=2", "x"]
    assert parser.port == 1
    assert parser.parse_command_line(["prog"]) == []


def test_single_dash_accepted(parser: OptionParser) -> None:
    parser.define("port", default=80)
    parser.parse_command_line(["prog", "-port=3"])
    assert parser.port == 3


def test_bare_bool_flag_sets_true(parser: OptionParser) -> None:
    parser.define("debug", default=False)
    parser.parse_command_line(["prog", "--debug"])
    assert parser.debug is True
    parser.parse_command_line(["prog", "--debug=false"])
    assert parser.debug is False


@pytest.mark.parametrize("args", [["--port"], ["--port", "80"]])
def test_non_bool_option_requires_equals_value(parser: OptionParser, args: list[str]) -> None:
    parser.define("port", default=80)
    with pytest.raises(Error, match="'port' requires a value"):
        parser.parse_command_line(["prog", *args])
    assert parser.port == 80


def test_bare_multiple_bool_requires_value(parser: OptionParser) -> None:
    parser.define("flags", type=bool, multiple=True)
    with pytest.raises(Error, match="requires a value"):
        parser.parse_command_line(["prog", "--flags"])


def test_unknown_option_raises_and_prints_help(
    parser: OptionParser, capsys: pytest.CaptureFixture[str]
) -> None:
    parser.define("port", default=80, help="port to listen on")
    with pytest.raises(Error, match="Unrecognized command line option: 'no-such'"):
        parser.parse_command_line(["prog", "--no_such=1"])
    err = capsys.readouterr().err
    assert "Usage:" in err
    assert "port to listen on" in err


def test_parse_command_line_defaults_to_sys_argv(
    parser: OptionParser, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser.define("port", default=80)
    monkeypatch.setattr(sys, "argv", ["prog", "--port=9", "rest"])
    assert parser.parse_command_line() == ["rest"]
    assert parser.port == 9


@pytest.mark.parametrize("flag", ["--help", "--help=true", "-help"])
def test_help_flag_prints_help_and_exits_zero(
    parser: OptionParser,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flag: str,
) -> None:
    monkeypatch.setattr(sys, "argv", ["myprog"])
    parser.define("port", default=80, help="port to listen on")
    with pytest.raises(SystemExit) as info:
        parser.parse_command_line(["myprog", flag, "--port=1"])
    assert info.value.code == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("Usage: myprog [OPTIONS]\n")
    assert "--port" in captured.err
    assert "port to listen on (default 80)" in captured.err
    assert captured.out == ""


def test_help_false_does_not_exit(parser: OptionParser) -> None:
    parser.parse_command_line(["prog", "--help=false"])
    assert parser.help is False


# -- help output -------------------------------------------------------------------


def test_print_help_layout(parser: OptionParser, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["myprog"])
    parser.define("port", default=8888, help="port to listen on", metavar="PORT")
    parser.define("debug", default=False, help="debug mode")
    parser.define("quiet", type=bool)
    parser.define("db_host", default="", help="database host", group="database")
    parser.define(
        "a_very_long_option_name_indeed",
        help="long help " * 20,
        group="database",
    )
    out = io.StringIO()
    parser.print_help(out)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[:4] == ["Usage: myprog [OPTIONS]", "", "Options:", ""]
    assert lines[4].startswith("  --help ") and lines[4].endswith("show this help information")
    # Groups are sorted by name; the default group is the defining file.
    headings = [line for line in lines if line.endswith(" options:")]
    assert headings == [f"{group} options:" for group in sorted(["database", __file__])]
    assert "  --port=PORT" in text
    assert "port to listen on (default 8888)" in text
    assert "debug mode (default False)" in text
    # Empty or None defaults are not shown.
    assert "database host\n" in text
    assert any(line.rstrip() == "  --quiet" for line in lines)
    # Options are sorted inside a group.
    assert text.index("--debug") < text.index("--port") < text.index("--quiet")
    # Flags longer than the column go on their own line; help text wraps.
    long_at = lines.index("  --a-very-long-option-name-indeed")
    wrapped = []
    for line in lines[long_at + 1 :]:
        if not line.startswith(" " * 33):
            break
        wrapped.append(line.strip())
    assert len(wrapped) > 1
    assert " ".join(wrapped) == ("long help " * 20).strip()
    assert all(len(line) <= 79 for line in lines)


def test_print_help_shows_multiple_defaults_joined(parser: OptionParser) -> None:
    parser.define("ports", default=[80, 443], multiple=True, help="ports")
    parser.define("hosts", multiple=True, help="hosts")
    out = io.StringIO()
    parser.print_help(out)
    assert "ports (default 80,443)" in out.getvalue()
    assert "hosts\n" in out.getvalue()


def test_print_help_defaults_to_stderr(parser: OptionParser, capsys: pytest.CaptureFixture[str]) -> None:
    parser.print_help()
    captured = capsys.readouterr()
    assert "Options:" in captured.err
    assert captured.out == ""


# -- config files ------------------------------------------------------------------


def write_config(tmp_path, body: str):
    path = tmp_path / "app.conf"
    path.write_text(textwrap.dedent(body))
    return path


def test_parse_config_file(parser: OptionParser, tmp_path) -> None:
    parser.define("port", default=80)
    parser.define("hosts", multiple=True)
    parser.define("ids", type=int, multiple=True)
    parser.define("ranges", type=int, multiple=True)
    parser.define("ratio", type=float)
    parser.define("when", type=dt)
    parser.define("ttl", type=td)
    parser.define("debug", default=False)
    parser.define("log_dir", default="")
    parser.define("source")
    path = write_config(
        tmp_path,
        """
        import os
        port = 443
        hosts = "a,b"
        ids = [1, 2]
        ranges = "1:3"
        ratio = 2
        when = "2013-04-28 13:08"
        ttl = "1h30m"
        debug = True
        log_dir = os.path.join("var", "log")
        source = __file__
        unknown_name = 5
        """,
    )
    parser.parse_config_file(str(path))
    assert parser.port == 443
    assert parser.hosts == ["a", "b"]
    assert parser.ids == [1, 2]
    assert parser.ranges == [1, 2, 3]
    assert parser.ratio == 2.0
    assert parser.when == dt(2013, 4, 28, 13, 8)
    assert parser.ttl == td(hours=1, minutes=30)
    assert parser.debug is True
    assert parser.log_dir == "var/log" or parser.log_dir == "var\\log"
    assert parser.source == str(path.resolve())
    assert "unknown_name" not in parser


def test_parse_config_file_accepts_pathlike(parser: OptionParser, tmp_path) -> None:
    parser.define("port", default=80)
    parser.parse_config_file(write_config(tmp_path, "port = '8080'\n"))
    assert parser.port == 8080


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("port = 'abc'\n", "'port' requires a value of type int, got 'abc'"),
        ("port = 1.5\n", "'port' is required to be a int"),
        ("hosts = 5\n", "'hosts' is required to be a list of str or a comma-separated string"),
        ("hosts = ['a', 1]\n", "'hosts' is required to be a str"),
    ],
)
def test_parse_config_file_bad_values(parser: OptionParser, tmp_path, body: str, match: str) -> None:
    parser.define("port", default=80)
    parser.define("hosts", multiple=True)
    with pytest.raises(Error, match=match):
        parser.parse_config_file(write_config(tmp_path, body))


def test_parse_config_file_errors_propagate(parser: OptionParser, tmp_path) -> None:
    with pytest.raises(ZeroDivisionError):
        parser.parse_config_file(write_config(tmp_path, "x = 1 / 0\n"))
    with pytest.raises(FileNotFoundError):
        parser.parse_config_file(tmp_path / "missing.conf")


# -- callbacks ---------------------------------------------------------------------


def test_option_callback_runs_on_set_and_parse(parser: OptionParser, tmp_path) -> None:
    seen: list[object] = []
    parser.define("port", default=80, callback=seen.append)
    parser.define("ids", type=int, multiple=True, callback=seen.append)
    assert seen == []
    parser.port = 81
    parser["port"] = 82
    parser.parse_command_line(["prog", "--port=83", "--ids=1:2"])
    parser.parse_config_file(write_config(tmp_path, "port = 84\n"))
    assert seen == [81, 82, 83, [1, 2], 84]


def test_option_callback_not_run_on_failed_parse(parser: OptionParser) -> None:
    seen: list[object] = []
    parser.define("port", default=80, callback=seen.append)
    with pytest.raises(Error):
        parser.parse_command_line(["prog", "--port=x"])
    with pytest.raises(Error):
        parser.port = "x"
    assert seen == []


def test_parse_callbacks(parser: OptionParser, tmp_path) -> None:
    calls: list[str] = []
    parser.define("port", default=80)
    parser.add_parse_callback(lambda: calls.append("first"))
    parser.add_parse_callback(lambda: calls.append(f"second {parser.port}"))
    parser.parse_command_line(["prog", "--port=1"], final=False)
    assert calls == []
    parser.parse_config_file(write_config(tmp_path, "port = 2\n"), final=False)
    assert calls == []
    parser.parse_command_line(["prog", "--port=3"])
    assert calls == ["first", "second 3"]
    parser.parse_config_file(write_config(tmp_path, "port = 4\n"))
    assert calls == ["first", "second 3", "first", "second 4"]
    parser.run_parse_callbacks()
    assert calls[-2:] == ["first", "second 4"]
    assert len(calls) == 6


# -- mockable ----------------------------------------------------------------------


def test_mockable_with_mock_patch(parser: OptionParser) -> None:
    parser.define("port", default=80)
    parser.parse_command_line(["prog", "--port=81"])
    with mock.patch.object(parser.mockable(), "port", 8080):
        assert parser.port == 8080
    assert parser.port == 81


def test_mockable_patch_type_checked(parser: OptionParser) -> None:
    parser.define("port", default=80)
    with pytest.raises(Error):
        with mock.patch.object(parser.mockable(), "port", "nope"):
            pass  # pragma: no cover - patching itself fails
    assert parser.port == 80


def test_mockable_refuses_double_patch(parser: OptionParser) -> None:
    parser.define("port", default=80)
    proxy = parser.mockable()
    with mock.patch.object(proxy, "port", 1):
        with pytest.raises(Error, match="already patched"):
            proxy.port = 2
        assert parser.port == 1
    assert parser.port == 80
    assert proxy.port == 80


def test_mockable_as_decorator_on_global(parser: OptionParser) -> None:
    before = cyclone.options.options.logging

    @mock.patch.object(cyclone.options.options.mockable(), "logging", "none")
    def inner() -> str:
        return cyclone.options.options.logging

    assert inner() == "none"
    assert cyclone.options.options.logging == before


# -- module-level functions and the global parser ----------------------------------


def test_module_functions_use_global_options(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "test_options_module_level_value"
    cyclone.options.define(name, default=1, help="module level")
    cyclone.options.define(name + "_grouped", group="test-options-group")
    opts = cyclone.options.options
    assert opts.group_dict("test-options-group") == {name + "_grouped": None}
    with mock.patch.object(opts.mockable(), name, 1), mock.patch.object(
        opts.mockable(), "logging", "none"
    ):
        assert opts.group_dict(__file__)[name] == 1
        rest = cyclone.options.parse_command_line(
            ["prog", "--logging=none", f"--{name}=2", "tail"]
        )
        assert rest == ["tail"]
        assert opts[name] == 2
        cyclone.options.parse_config_file(write_config(tmp_path, f"{name} = 3\n"))
        assert opts[name] == 3
        cyclone.options.print_help()
        assert "module level (default 1)" in capsys.readouterr().err
        with pytest.raises(Error, match="already defined"):
            cyclone.options.define(name)
        calls: list[int] = []
        cyclone.options.add_parse_callback(lambda: calls.append(opts[name]))
        cyclone.options.parse_command_line(["prog", f"--{name}=4"])
        assert calls == [4]
    assert opts[name] == 1
    assert opts.logging == "info"


def test_global_parser_predefines_logging_options() -> None:
    opts = cyclone.options.options
    for name in (
        "help",
        "logging",
        "log_to_stderr",
        "log_file_prefix",
        "log_file_max_size",
        "log_file_num_backups",
        "log_rotate_when",
        "log_rotate_interval",
        "log_rotate_mode",
    ):
        assert name in opts
    assert opts.logging == "info"
    assert opts.log_file_max_size == 100 * 1000 * 1000
    assert "logging" not in OptionParser()


@pytest.fixture
def root_logger():
    """The root logger, with its level and handlers restored afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_global_logging_option_configures_root_logger(root_logger: logging.Logger) -> None:
    opts = cyclone.options.options
    proxy = opts.mockable()
    with mock.patch.object(proxy, "logging", "info"), mock.patch.object(
        proxy, "log_to_stderr", None
    ):
        before = list(root_logger.handlers)
        cyclone.options.parse_command_line(["prog", "--logging=debug", "--log-to-stderr"])
        assert root_logger.level == logging.DEBUG
        added = [h for h in root_logger.handlers if h not in before]
        assert len(added) == 1
        assert isinstance(added[0], logging.StreamHandler)
        assert isinstance(added[0].formatter, LogFormatter)


# -- logging helpers ---------------------------------------------------------------


@pytest.fixture
def logging_parser() -> OptionParser:
    parser = OptionParser()
    define_logging_options(parser)
    return parser


@pytest.fixture
def logger(request: pytest.FixtureRequest):
    # Left propagating: pytest attaches its capture handlers to loggers that
    # do not propagate, and these tests need a logger without handlers.
    log = logging.getLogger(f"cyclone.tests.options.{request.node.name}")
    assert log.handlers == []
    yield log
    for handler in list(log.handlers):
        handler.close()
        log.removeHandler(handler)
    log.setLevel(logging.NOTSET)


def test_logging_none_leaves_logger_alone(logging_parser: OptionParser, logger: logging.Logger) -> None:
    logging_parser.logging = "none"
    enable_pretty_logging(logging_parser, logger)
    assert logger.handlers == [] and logger.level == logging.NOTSET
    logging_parser.logging = None
    enable_pretty_logging(logging_parser, logger)
    assert logger.handlers == [] and logger.level == logging.NOTSET


def test_enable_pretty_logging_stderr_default(logging_parser: OptionParser, logger: logging.Logger) -> None:
    logging_parser.logging = "warning"
    enable_pretty_logging(logging_parser, logger)
    assert logger.level == logging.WARNING
    assert len(logger.handlers) == 1
    assert type(logger.handlers[0]) is logging.StreamHandler


def test_enable_pretty_logging_stderr_disabled(logging_parser: OptionParser, logger: logging.Logger) -> None:
    logging_parser.log_to_stderr = False
    enable_pretty_logging(logging_parser, logger)
    assert logger.level == logging.INFO
    assert logger.handlers == []


@pytest.mark.parametrize(
    ("mode", "handler_type"),
    [
        ("size", logging.handlers.RotatingFileHandler),
        ("time", logging.handlers.TimedRotatingFileHandler),
    ],
)
def test_enable_pretty_logging_file(
    logging_parser: OptionParser, logger: logging.Logger, tmp_path, mode: str, handler_type: type
) -> None:
    log_path = tmp_path / "app.log"
    logging_parser.parse_command_line(
        ["prog", f"--log_file_prefix={log_path}", f"--log-rotate-mode={mode}"], final=False
    )
    enable_pretty_logging(logging_parser, logger)
    # A file handler counts as a handler, so no stderr one is added.
    assert [type(h) for h in logger.handlers] == [handler_type]
    logger.info("hello %s", "file")
    logger.handlers[0].flush()
    content = log_path.read_text(encoding="utf-8")
    assert content.startswith("[I ")
    assert "test_options:" in content
    assert content.rstrip().endswith("] hello file")
    assert "\033[" not in content


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [("logging", "loud", "Unknown logging level 'loud'"), ("log_rotate_mode", "weekly", "'size' or 'time'")],
)
def test_enable_pretty_logging_bad_settings(
    logging_parser: OptionParser, logger: logging.Logger, tmp_path, name: str, value: str, match: str
) -> None:
    logging_parser.log_file_prefix = str(tmp_path / "x.log")
    logging_parser[name] = value
    with pytest.raises(Error, match=match):
        enable_pretty_logging(logging_parser, logger)


def test_define_logging_options_parse_callback(
    logging_parser: OptionParser, root_logger: logging.Logger
) -> None:
    logging_parser.parse_command_line(["prog", "--logging=error", "--log-to-stderr=false"])
    assert root_logger.level == logging.ERROR


def test_define_logging_options_twice_is_redefinition(logging_parser: OptionParser) -> None:
    with pytest.raises(Error, match="'logging' already defined"):
        define_logging_options(logging_parser)


def make_record(level: int = logging.INFO, msg: str = "hi %s", args: tuple = ("there",), exc_info=None):
    return logging.LogRecord("x", level, "/src/mod.py", 42, msg, args, exc_info)


def test_log_formatter_plain() -> None:
    text = LogFormatter(color=False).format(make_record(logging.WARNING))
    assert text.startswith("[W ")
    assert text.endswith(" mod:42] hi there")


def test_log_formatter_color_only_on_tty() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert "\033[" not in LogFormatter(color=True, stream=io.StringIO()).format(make_record())
    colored = LogFormatter(color=True, stream=Tty()).format(make_record(logging.ERROR))
    assert colored.startswith("\033[31m[E ")
    assert colored.endswith("\033[0m hi there")
    assert "\033[" not in LogFormatter(color=False, stream=Tty()).format(make_record())


def test_log_formatter_indents_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = make_record(logging.ERROR, "failed", (), sys.exc_info())
    lines = LogFormatter(color=False).format(record).splitlines()
    assert lines[0].endswith("] failed")
    assert lines[1] == "    Traceback (most recent call last):"
    assert lines[-1] == "    ValueError: boom"


def test_import_changes_nothing_global() -> None:
    script = textwrap.dedent(
        """
        import logging, sys
        root = logging.getLogger()
        before = (root.level, list(root.handlers), set(logging.Logger.manager.loggerDict))
        import cyclone.options
        after = (root.level, list(root.handlers), set(logging.Logger.manager.loggerDict))
        assert before == after, (before, after)
        assert "twisted" not in sys.modules
        print("ok")
        """
    )
    repo_root = pathlib.Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=repo_root
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
