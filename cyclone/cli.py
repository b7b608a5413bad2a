"""The ``cyclone`` command (also ``python -m cyclone``).

``cyclone run ARGS`` is ``twistd -n cyclone ARGS``: it serves an application
in the foreground (see ``twistd -n cyclone --help``). ``cyclone app ARGS`` is
``python -m cyclone.app ARGS``, the project generator. Both run in this
process, so they use the interpreter (and virtualenv) the command belongs to.
"""

from __future__ import annotations

import sys

USAGE = """\
usage: cyclone run [options] [app.py[:Name]]   serve an application (twistd -n cyclone ...)
       cyclone app [options]                   create a new project (python -m cyclone.app ...)

"cyclone run --help" and "cyclone app --help" list the options.
"""


def run(args: list[str]) -> int:
    """``twistd -n cyclone ARGS``; returns the exit status."""
    from twisted.scripts.twistd import run as twistd

    # twistd reads its command line from sys.argv, and names itself after argv[0]
    sys.argv = ["twistd", "-n", "cyclone", *args]
    try:
        twistd()
    except SystemExit as exc:
        return _status(exc.code)
    return 0


def app(args: list[str]) -> int:
    """``python -m cyclone.app ARGS``; returns the exit status."""
    try:
        from cyclone import app as generator
    except ModuleNotFoundError as exc:
        if exc.name != "cyclone.app":
            raise
        sys.stderr.write("cyclone app: the project generator (cyclone.app) is not installed\n")
        return 1
    try:
        return _status(generator.main(args))
    except SystemExit as exc:
        return _status(exc.code)


def _status(code: object) -> int:
    """An exit status from what ``sys.exit`` or a ``main`` returned."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    # sys.exit("message") prints the message and exits with 1
    sys.stderr.write(f"{code}\n")
    return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cyclone`` console script."""
    args = sys.argv[1:] if argv is None else list(argv)
    command, rest = (args[0], args[1:]) if args else (None, [])
    if command == "run":
        return run(rest)
    if command == "app":
        return app(rest)
    if command in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    sys.stderr.write(USAGE)
    return 2


if __name__ == "__main__":
    sys.exit(main())
