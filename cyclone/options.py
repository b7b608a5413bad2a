"""Command-line and config-file options, API-compatible with ``tornado.options``.

Modules declare options where they use them and read them from the shared
:data:`options` registry::

    from cyclone.options import define, options, parse_command_line

    define("port", default=8888, help="port to listen on")
    define("debug", default=False, help="enable debug mode")

    parse_command_line()           # --port=9000 --debug
    listen(options.port)

Supported option types are ``str``, ``int``, ``float``, ``bool``,
``datetime.datetime``, ``datetime.timedelta`` and any class whose constructor
accepts a string.  ``multiple=True`` turns the value into a list parsed from a
comma-separated string; integer lists also accept inclusive ranges (``1:3``).

The global :data:`options` comes with ``--help`` and Tornado's logging options
(``--logging``, ``--log-to-stderr``, ``--log-file-prefix`` ...).  Importing this
module configures nothing: stdlib logging is only touched by
:func:`enable_pretty_logging`, which the global parser runs as a parse callback
once ``parse_command_line()`` or ``parse_config_file()`` finishes with
``final=True`` (pass ``--logging=none`` to keep your own configuration).
"""

from __future__ import annotations

import datetime
import logging
import logging.handlers
import numbers
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import IO, Any

__all__ = [
    "Error",
    "LogFormatter",
    "OptionParser",
    "add_parse_callback",
    "define",
    "define_logging_options",
    "enable_pretty_logging",
    "options",
    "parse_command_line",
    "parse_config_file",
    "print_help",
]


class Error(Exception):
    """Raised for unknown options, redefinitions and values that do not parse or type-check."""


_UNSET: Any = object()

# Frames whose code lives in this file are skipped when deciding which module
# called define(): the group of an option is the file that declared it.
_THIS_FILE = __file__


# -- value parsers -----------------------------------------------------------
# Each raises ValueError with a short reason; _Option.parse turns that into an
# Error that names the option.

_TRUE_WORDS = frozenset({"true", "t", "1", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"false", "f", "0", "no", "n", "off"})


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError("expected one of true/false, t/f, 1/0, yes/no, y/n, on/off")


def _parse_str(text: str) -> str:
    return text


# Tried in order before falling back to datetime.fromisoformat (which covers
# time zone offsets and fractional seconds).  Time-only formats give a date of
# 1900-01-01, as strptime does.
_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d %H:%M",
    "%Y%m%d",
    "%a %b %d %H:%M:%S %Y",
    "%H:%M:%S",
    "%H:%M",
)


def _parse_datetime(text: str) -> datetime.datetime:
    stripped = text.strip()
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.datetime.strptime(stripped, fmt)
        except ValueError:
            continue
    try:
        return datetime.datetime.fromisoformat(stripped)
    except ValueError:
        pass
    raise ValueError("unrecognized date/time format")


_TIMEDELTA_UNITS: dict[str, str] = {}
for _unit, _spellings in (
    ("weeks", ("w", "wk", "wks", "week", "weeks")),
    ("days", ("d", "day", "days")),
    ("hours", ("h", "hr", "hrs", "hour", "hours")),
    ("minutes", ("m", "min", "mins", "minute", "minutes")),
    ("seconds", ("", "s", "sec", "secs", "second", "seconds")),
    ("milliseconds", ("ms", "msec", "msecs", "millisecond", "milliseconds")),
    ("microseconds", ("us", "usec", "usecs", "microsecond", "microseconds")),
):
    for _spelling in _spellings:
        _TIMEDELTA_UNITS[_spelling] = _unit
del _unit, _spellings, _spelling

# A number followed by letters only, so "1h30m" splits into "1h" and "30m".
_TIMEDELTA_TERM = re.compile(
    r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*"
)


def _parse_timedelta(text: str) -> datetime.timedelta:
    if not text.strip():
        raise ValueError("empty duration")
    total = datetime.timedelta()
    pos = 0
    while pos < len(text):
        match = _TIMEDELTA_TERM.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot parse duration at {text[pos:]!r}")
        unit = _TIMEDELTA_UNITS.get(match.group(2).lower())
        if unit is None:
            raise ValueError(f"unknown duration unit {match.group(2)!r}")
        total += datetime.timedelta(**{unit: float(match.group(1))})
        pos = match.end()
    return total


_PARSERS: dict[type, Callable[[str], Any]] = {
    bool: _parse_bool,
    str: _parse_str,
    datetime.datetime: _parse_datetime,
    datetime.timedelta: _parse_timedelta,
}


def _is_integer_type(kind: Any) -> bool:
    # bool is an Integral too, but "true:false" is not a range.
    return (
        isinstance(kind, type)
        and issubclass(kind, numbers.Integral)
        and not issubclass(kind, bool)
    )


class _Option:
    """One defined option: its metadata and current value."""

    def __init__(
        self,
        name: str,
        default: Any,
        type: type,
        help: str | None,
        metavar: str | None,
        multiple: bool,
        file_name: str,
        group_name: str,
        callback: Callable[[Any], None] | None,
    ) -> None:
        if default is None and multiple:
            default = []
        self.name = name
        self.default = default
        self.type = type
        self.help = help
        self.metavar = metavar
        self.multiple = multiple
        self.file_name = file_name
        self.group_name = group_name
        self.callback = callback
        self._value: Any = _UNSET

    def value(self) -> Any:
        return self.default if self._value is _UNSET else self._value

    def parse(self, text: str) -> Any:
        """Convert ``text`` per the option's type, store it and run the callback."""
        if self.multiple:
            # An empty string means an empty list, not a list of one empty item.
            parts = text.split(",") if text != "" else []
            new: list[Any] = []
            for part in parts:
                if _is_integer_type(self.type) and ":" in part:
                    new.extend(self._parse_range(part))
                else:
                    new.append(self._convert(part))
            self._value = new
        else:
            self._value = self._convert(text)
        self._run_callback()
        return self.value()

    def set(self, value: Any) -> None:
        """Store an already-typed value (attribute assignment, config files)."""
        if self.multiple:
            if not isinstance(value, (list, tuple)):
                raise Error(
                    f"Option {self.name!r} is required to be a list of "
                    f"{self.type.__name__}, not {value.__class__.__name__}"
                )
            value = [self._check(item) for item in value]
        else:
            value = self._check(value)
        self._value = value
        self._run_callback()

    def _check(self, value: Any) -> Any:
        if value is None or isinstance(value, self.type):
            return value
        # Let ``ratio = 1`` in a config file satisfy a float option.
        if (
            self.type is float
            and isinstance(value, numbers.Integral)
            and not isinstance(value, bool)
        ):
            return float(value)
        raise Error(
            f"Option {self.name!r} is required to be a {self.type.__name__} "
            f"({value.__class__.__name__} {value!r} given)"
        )

    def _convert(self, text: str) -> Any:
        parser = _PARSERS.get(self.type, self.type)
        try:
            return parser(text)
        except (ValueError, TypeError, ArithmeticError) as exc:
            reason = str(exc) if parser in _PARSERS.values() else ""
            raise Error(
                f"Option {self.name!r} requires a value of type "
                f"{self.type.__name__}, got {text!r}" + (f": {reason}" if reason else "")
            ) from exc

    def _parse_range(self, part: str) -> list[Any]:
        low_text, _, high_text = part.partition(":")
        low = self._convert(low_text)
        high = self._convert(high_text)
        if high < low:
            raise Error(f"Option {self.name!r}: range {part!r} ends before it starts")
        return list(range(low, high + 1))

    def _run_callback(self) -> None:
        if self.callback is not None:
            self.callback(self._value)


def _normalize(name: str) -> str:
    return name.replace("_", "-")


def _caller_file() -> str:
    """File of the nearest frame outside this module, or "" if there is none."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == _THIS_FILE:
        frame = frame.f_back  # type: ignore[assignment]
    return frame.f_code.co_filename if frame is not None else ""


class OptionParser:
    """A registry of options with attribute and item access.

    ``options.port`` and ``options["port"]`` read a value, assignment sets one
    (type-checked, callback run).  ``_`` and ``-`` in names are interchangeable.
    The module-level :data:`options` is the instance the module functions use;
    create more for isolated option sets such as subcommands.
    """

    def __init__(self) -> None:
        # Attribute writes are routed to options, so internal state goes
        # straight into __dict__.
        self.__dict__["_options"] = {}
        self.__dict__["_parse_callbacks"] = []
        self._add_option(
            "help",
            type=bool,
            help="show this help information",
            file_name="",
            callback=self._help_callback,
        )

    # -- mapping-ish access --------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Via __dict__ so a half-built instance (copy, unpickling) cannot recurse.
        option = self.__dict__.get("_options", {}).get(_normalize(name))
        if option is None:
            raise AttributeError(f"Unrecognized option {name!r}")
        return option.value()

    def __setattr__(self, name: str, value: Any) -> None:
        option = self._options.get(_normalize(name))
        if option is None:
            raise AttributeError(f"Unrecognized option {name!r}")
        option.set(value)

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.__setattr__(name, value)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _normalize(name) in self._options

    def __iter__(self) -> Iterator[str]:
        return iter([option.name for option in self._options.values()])

    def __dir__(self) -> list[str]:
        names = {option.name for option in self._options.values()}
        return sorted(set(super().__dir__()) | names)

    def items(self) -> list[tuple[str, Any]]:
        """``(name, value)`` for every option, names as given to :meth:`define`."""
        return [(option.name, option.value()) for option in self._options.values()]

    def groups(self) -> set[str]:
        """The set of group names (by default, the files that defined options)."""
        return {option.group_name for option in self._options.values()}

    def group_dict(self, group: str) -> dict[str, Any]:
        """``{name: value}`` for one group; an empty group name means every option.

        Handy for passing a group straight to ``Application(**settings)``.
        """
        return {
            option.name: option.value()
            for option in self._options.values()
            if not group or option.group_name == group
        }

    def as_dict(self) -> dict[str, Any]:
        """``{name: value}`` for every option."""
        return {option.name: option.value() for option in self._options.values()}

    # -- definition ----------------------------------------------------------

    def define(
        self,
        name: str,
        default: Any = None,
        type: type | None = None,
        help: str | None = None,
        metavar: str | None = None,
        multiple: bool = False,
        group: str | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> None:
        """Define a new option.

        ``type`` defaults to the class of ``default`` (of its first item for a
        ``multiple`` list), else ``str``.  With ``multiple=True`` the value is
        a list.  ``group`` defaults to the file calling ``define``; it heads the
        option's section in :meth:`print_help`.  ``callback(value)`` runs every
        time the option is set or parsed.  Raises :class:`Error` if the name
        (with ``_`` and ``-`` equivalent) is already defined.
        """
        self._add_option(
            name,
            default=default,
            type=type,
            help=help,
            metavar=metavar,
            multiple=multiple,
            group=group,
            file_name=_caller_file(),
            callback=callback,
        )

    def _add_option(
        self,
        name: str,
        *,
        file_name: str,
        default: Any = None,
        type: type | None = None,
        help: str | None = None,
        metavar: str | None = None,
        multiple: bool = False,
        group: str | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> None:
        key = _normalize(name)
        existing = self._options.get(key)
        if existing is not None:
            where = existing.file_name or "cyclone.options"
            raise Error(f"Option {key!r} already defined in {where}")
        if type is None:
            if multiple and isinstance(default, (list, tuple)) and default:
                type = default[0].__class__
            elif not multiple and default is not None:
                type = default.__class__
            else:
                type = str
        self._options[key] = _Option(
            name,
            default=default,
            type=type,
            help=help,
            metavar=metavar,
            multiple=multiple,
            file_name=file_name,
            group_name=group or file_name,
            callback=callback,
        )

    # -- parsing -------------------------------------------------------------

    def parse_command_line(self, args: list[str] | None = None, final: bool = True) -> list[str]:
        """Parse ``args`` (default ``sys.argv``; ``args[0]`` is the program name).

        Accepts ``--name=value`` and, for bool options, a bare ``--name``.
        Parsing stops at the first argument not starting with ``-`` or after
        ``--``; the unparsed arguments are returned.  An unknown option prints
        help to stderr and raises :class:`Error`; ``--help`` prints help and
        exits with status 0.  With ``final`` (the default) the parse callbacks
        run afterwards; pass ``final=False`` to all but the last parse call.
        """
        if args is None:
            args = sys.argv
        remaining: list[str] = []
        for index in range(1, len(args)):
            arg = args[index]
            if not arg.startswith("-"):
                remaining = list(args[index:])
                break
            if arg == "--":
                remaining = list(args[index + 1 :])
                break
            name, equals, value = arg.lstrip("-").partition("=")
            option = self._options.get(_normalize(name))
            if option is None:
                self.print_help()
                raise Error(f"Unrecognized command line option: {_normalize(name)!r}")
            if not equals:
                if option.type is not bool or option.multiple:
                    raise Error(
                        f"Option {option.name!r} requires a value "
                        f"(--{_normalize(name)}=VALUE)"
                    )
                value = "true"
            option.parse(value)
        if final:
            self.run_parse_callbacks()
        return remaining

    def parse_config_file(self, path: str | os.PathLike[str], final: bool = True) -> None:
        """Execute the Python file at ``path`` and take options from its globals.

        Globals that are not defined options are ignored.  String values are
        parsed like command-line values when the option is not a plain ``str``
        (so ``port = "80"`` and ``hosts = "a,b"`` work); other values must
        already have the option's type.  ``__file__`` is set to the absolute
        path while the file runs.
        """
        path = os.fspath(path)
        namespace: dict[str, Any] = {"__file__": os.path.abspath(path)}
        with open(path, "rb") as config:
            code = compile(config.read(), path, "exec")
        exec(code, namespace, namespace)
        for name, value in namespace.items():
            option = self._options.get(_normalize(name))
            if option is None:
                continue
            if isinstance(value, str) and (option.multiple or option.type is not str):
                option.parse(value)
            elif option.multiple and not isinstance(value, (list, tuple)):
                raise Error(
                    f"Option {option.name!r} is required to be a list of "
                    f"{option.type.__name__} or a comma-separated string"
                )
            else:
                option.set(value)
        if final:
            self.run_parse_callbacks()

    def print_help(self, file: IO[str] | None = None) -> None:
        """Write a usage summary of every option, grouped, to ``file`` (default stderr)."""
        out = sys.stderr if file is None else file
        program = sys.argv[0] if sys.argv and sys.argv[0] else "program"
        lines = [f"Usage: {program} [OPTIONS]", "", "Options:", ""]
        by_group: dict[str, list[_Option]] = {}
        for option in self._options.values():
            by_group.setdefault(option.group_name, []).append(option)
        flag_width = 30
        indent = " " * (2 + flag_width + 1)
        for group in sorted(by_group):
            if group:
                lines += ["", f"{os.path.normpath(group)} options:", ""]
            for option in sorted(by_group[group], key=lambda o: o.name):
                flag = "--" + _normalize(option.name)
                if option.metavar:
                    flag += "=" + option.metavar
                text = option.help or ""
                default = _describe_default(option.default)
                if default is not None:
                    text = f"{text} (default {default})".strip()
                wrapped = textwrap.wrap(text, 79 - len(indent))
                if len(flag) > flag_width or not wrapped:
                    lines.append("  " + flag)
                else:
                    lines.append(f"  {flag:<{flag_width}} {wrapped.pop(0)}")
                lines += [indent + line for line in wrapped]
        print("\n".join(lines), file=out)

    def _help_callback(self, value: bool) -> None:
        if value:
            self.print_help()
            sys.exit(0)

    def add_parse_callback(self, callback: Callable[[], None]) -> None:
        """Register ``callback()`` to run when a final parse completes."""
        self._parse_callbacks.append(callback)

    def run_parse_callbacks(self) -> None:
        """Run the parse callbacks in registration order."""
        for callback in list(self._parse_callbacks):
            callback()

    def mockable(self) -> _Mockable:
        """An object for ``mock.patch.object(options.mockable(), "name", value)``.

        ``mock.patch`` restores attributes with ``delattr``, which options do not
        support; the returned wrapper remembers the old value and puts it back.
        """
        return _Mockable(self)


def _describe_default(default: Any) -> str | None:
    if default is None or default == "" or default == []:
        return None
    if isinstance(default, (list, tuple)):
        return ",".join(str(item) for item in default)
    return str(default)


class _Mockable:
    """Attribute proxy over an OptionParser that supports ``del`` for mock.patch."""

    def __init__(self, parser: OptionParser) -> None:
        self.__dict__["_parser"] = parser
        self.__dict__["_saved"] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_parser"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._saved:
            # A second patch of the same name would overwrite the value to restore.
            raise Error(f"Option {name!r} is already patched through this mockable()")
        self._saved[name] = getattr(self._parser, name)
        setattr(self._parser, name, value)

    def __delattr__(self, name: str) -> None:
        setattr(self._parser, name, self._saved.pop(name))


# -- logging -------------------------------------------------------------------


class LogFormatter(logging.Formatter):
    """``[L yymmdd HH:MM:SS module:line] message``, level-coloured on a terminal.

    ``color=True`` only colours when ``stream`` (default ``sys.stderr``) is a
    TTY, so redirected logs stay free of escape codes.
    """

    _COLORS = {
        logging.DEBUG: "\033[34m",
        logging.INFO: "\033[32m",
        logging.WARNING: "\033[33m",
        logging.ERROR: "\033[31m",
        logging.CRITICAL: "\033[31m",
    }
    _RESET = "\033[0m"

    def __init__(
        self,
        color: bool = True,
        datefmt: str = "%y%m%d %H:%M:%S",
        stream: IO[str] | None = None,
    ) -> None:
        super().__init__(datefmt=datefmt)
        target = sys.stderr if stream is None else stream
        isatty = getattr(target, "isatty", None)
        self.use_color = bool(color and isatty is not None and isatty())

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        prefix = (
            f"[{record.levelname[:1]} {self.formatTime(record, self.datefmt)} "
            f"{record.module}:{record.lineno}]"
        )
        if self.use_color:
            start = self._COLORS.get(record.levelno, "")
            if not start:
                # Custom levels between the standard ones take the colour below.
                for level in sorted(self._COLORS, reverse=True):
                    if record.levelno >= level:
                        start = self._COLORS[level]
                        break
            prefix = f"{start}{prefix}{self._RESET}"
        text = f"{prefix} {message}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        extra = [record.exc_text or ""]
        if record.stack_info:
            extra.append(self.formatStack(record.stack_info))
        body = "\n".join(part.rstrip() for part in extra if part)
        if body:
            # Indent tracebacks so each log entry stays visually one block.
            text += "\n" + "\n".join("    " + line for line in body.splitlines())
        return text


_LogFormatter = LogFormatter  # the name the original cyclone exported


def define_logging_options(options: OptionParser | None = None) -> None:
    """Define Tornado's logging options on ``options`` (default: the global parser).

    Also registers :func:`enable_pretty_logging` as a parse callback, so a final
    parse applies ``--logging``/``--log-file-prefix``/... to the root logger.
    """
    if options is None:
        options = globals()["options"]

    def add(name: str, **kwargs: Any) -> None:
        # Record this module as the origin, not whoever imported it.
        options._add_option(name, file_name=_THIS_FILE, group=_THIS_FILE, **kwargs)

    add(
        "logging",
        default="info",
        help="Python log level: debug|info|warning|error|critical; 'none' leaves logging alone",
        metavar="debug|info|warning|error|none",
    )
    add(
        "log_to_stderr",
        type=bool,
        default=None,
        help="Log to stderr (default: only when no other handler is configured)",
    )
    add(
        "log_file_prefix",
        type=str,
        default=None,
        metavar="PATH",
        help="Path of the log file; enables file logging",
    )
    add(
        "log_file_max_size",
        type=int,
        default=100 * 1000 * 1000,
        help="Maximum size in bytes of a log file before rotation (size mode)",
    )
    add(
        "log_file_num_backups",
        type=int,
        default=10,
        help="Number of rotated log files to keep",
    )
    add(
        "log_rotate_when",
        type=str,
        default="midnight",
        help="Interval unit for time rotation: S, M, H, D, W0-W6 or midnight",
    )
    add(
        "log_rotate_interval",
        type=int,
        default=1,
        help="Number of log_rotate_when units between time rotations",
    )
    add(
        "log_rotate_mode",
        type=str,
        default="size",
        help="Rotate log files by 'size' or by 'time'",
    )
    options.add_parse_callback(lambda: enable_pretty_logging(options))


def enable_pretty_logging(
    options: OptionParser | None = None, logger: logging.Logger | None = None
) -> None:
    """Configure stdlib ``logging`` from the logging options.

    Sets ``logger``'s (default: root) level from ``options.logging`` (nothing at
    all happens for ``none``), adds a rotating file handler when
    ``log_file_prefix`` is set, and a stderr handler when ``log_to_stderr`` is
    true or unset with no handler on the logger yet.  Each call adds handlers,
    so configure once.
    """
    if options is None:
        options = globals()["options"]
    level_name = options.logging
    if level_name is None or level_name.lower() == "none":
        return
    level = logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        raise Error(f"Unknown logging level {level_name!r}")
    if logger is None:
        logger = logging.getLogger()
    logger.setLevel(level)

    prefix = options.log_file_prefix
    if prefix:
        mode = options.log_rotate_mode
        handler: logging.Handler
        if mode == "size":
            handler = logging.handlers.RotatingFileHandler(
                prefix,
                mode="a",
                maxBytes=options.log_file_max_size,
                backupCount=options.log_file_num_backups,
                encoding="utf-8",
            )
        elif mode == "time":
            handler = logging.handlers.TimedRotatingFileHandler(
                prefix,
                when=options.log_rotate_when,
                interval=options.log_rotate_interval,
                backupCount=options.log_file_num_backups,
                encoding="utf-8",
            )
        else:
            raise Error(f"log_rotate_mode must be 'size' or 'time', not {mode!r}")
        handler.setFormatter(LogFormatter(color=False))
        logger.addHandler(handler)

    to_stderr = options.log_to_stderr
    if to_stderr or (to_stderr is None and not logger.handlers):
        stream_handler = logging.StreamHandler()
        stream_handler.setFormatter(LogFormatter())
        logger.addHandler(stream_handler)


# -- the global registry ---------------------------------------------------------

options = OptionParser()
"""The global option registry used by the module-level functions."""

# Like Tornado, the global parser knows the logging options from the start so
# ``--logging=debug`` works; nothing is configured until a final parse.
define_logging_options(options)


def define(
    name: str,
    default: Any = None,
    type: type | None = None,
    help: str | None = None,
    metavar: str | None = None,
    multiple: bool = False,
    group: str | None = None,
    callback: Callable[[Any], None] | None = None,
) -> None:
    """Define an option on the global :data:`options`; see :meth:`OptionParser.define`."""
    options.define(
        name,
        default=default,
        type=type,
        help=help,
        metavar=metavar,
        multiple=multiple,
        group=group,
        callback=callback,
    )


def parse_command_line(args: list[str] | None = None, final: bool = True) -> list[str]:
    """Parse the command line into the global :data:`options`; returns leftover arguments."""
    return options.parse_command_line(args, final=final)


def parse_config_file(path: str | os.PathLike[str], final: bool = True) -> None:
    """Read a Python config file into the global :data:`options`."""
    options.parse_config_file(path, final=final)


def print_help(file: IO[str] | None = None) -> None:
    """Print help for the global :data:`options` to ``file`` (default stderr)."""
    options.print_help(file)


def add_parse_callback(callback: Callable[[], None]) -> None:
    """Run ``callback()`` after each final parse of the global :data:`options`."""
    options.add_parse_callback(callback)
