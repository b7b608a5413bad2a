"""cyclone.app: create a new cyclone project from a skeleton.

Usage::

    python -m cyclone.app -p foobar                 # ./foobar, module "foobar"
    python -m cyclone.app -p foo-bar -m foo -a signup -g -t ~/src
    python -m cyclone.app -n > hello.py             # a one-file hello world

Skeletons (``-a``) live in the ``cyclone.appskel`` package (the ``appskel/``
directory of the source tree): ``default``, ``signup`` and ``foreman``. In a
skeleton, a ``modname`` in a file or directory name becomes the module name,
a leading ``dot-`` becomes ``.`` and a trailing ``.tmpl`` is dropped (so that
the skeleton's Python files are neither importable nor collected by test
runners before substitution). Text files (by extension) go through
``string.Template.safe_substitute`` with the keys in :data:`TEMPLATE_KEYS`;
other files are copied as they are. The ``.po`` catalogs are compiled to
``.mo`` with :func:`cyclone.i18n.compile_po`.

The project is built in a hidden directory next to the target and renamed
into place at the end: a failure at any step leaves nothing behind.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.resources
import keyword
import os
import re
import secrets
import shutil
import string
import subprocess
import sys
from collections.abc import Iterator, Sequence
from importlib.resources.abc import Traversable
from pathlib import Path

import cyclone

__all__ = [
    "DEFAULT_LICENSE",
    "SAMPLE_SERVER",
    "TEMPLATE_KEYS",
    "ProjectError",
    "available_skeletons",
    "main",
    "new_project",
    "usage",
]

DEFAULT_LICENSE = """\
# Copyright $year $name
#
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""

SAMPLE_SERVER = '''\
"""Hello, world: python hello.py [port]  (or: twistd -n cyclone hello.py)"""

import sys

import cyclone.web
from twisted.internet import reactor
from twisted.python import log


class MainHandler(cyclone.web.RequestHandler):
    def get(self):
        self.write("Hello, world")


class Application(cyclone.web.Application):
    def __init__(self):
        super().__init__([(r"/", MainHandler)])


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8888
    log.startLogging(sys.stdout)
    reactor.listenTCP(port, Application(), interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
'''

#: The keys substituted in the skeletons' text files.
TEMPLATE_KEYS = (
    "name",
    "email",
    "project",
    "project_name",
    "project_path",
    "modname",
    "version",
    "target",
    "use_git",
    "license",
    "skel",
    "cookie_secret",
)

SKELETON_PACKAGE = "cyclone.appskel"
DEFAULT_NAME = "Foo Bar"
DEFAULT_EMAIL = "foo@example.com"

# Files substituted as text; anything else is copied byte for byte.
TEXT_SUFFIXES = frozenset(
    {
        ".cfg", ".conf", ".css", ".html", ".ini", ".js", ".md", ".po", ".pot", ".py",
        ".rst", ".service", ".sh", ".sql", ".toml", ".txt", ".yml", ".yaml",
    }
)  # fmt: skip
TEXT_NAMES = frozenset({"Procfile", ".gitignore", ".env", ".python-version"})
# Never copied: byte code, caches written by twistd or editors.
SKIPPED_NAMES = frozenset({"__pycache__", "dropin.cache", ".DS_Store"})
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".mo", ".swp", "~")

PROJECT_RE = re.compile(r"^[0-9a-z][0-9a-z_-]+$", re.IGNORECASE)
MODULE_RE = re.compile(r"^[0-9a-z_]+$")
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$")
# Top-level names a generated project has or needs: a module named like one
# of them would shadow it (or collide with the project's own directories).
RESERVED_MODULES = frozenset(
    {"cyclone", "frontend", "scripts", "test", "tests", "tools", "twisted", "zope", "pytest", "pytest_twisted"}
)
# twistd plugins shipped by Twisted: the project's plugin is named after its
# module, and two plugins with one name make "twistd <name>" ambiguous.
TWISTD_COMMANDS = frozenset(
    {"conch", "dns", "ftp", "inetd", "mail", "manhole", "portforward", "procmon", "socks", "web", "words"}
)


class ProjectError(Exception):
    """A project cannot be created (bad arguments, existing target, I/O error)."""


class _UsageError(Exception):
    """Bad command line: reported with the usage hint, exit status 2."""


class _ArgumentParser(argparse.ArgumentParser):
    # argparse exits the process on errors; main() must return a status instead.
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def usage(version: str = cyclone.__version__) -> str:
    """The help text of ``python -m cyclone.app``."""
    skeletons = ", ".join(available_skeletons()) or "none found"
    return f"""\
usage: python -m cyclone.app [options]

Create a new cyclone {version} project.

  -h, --help                  show this help and exit
  -n, --new                   print a one-file hello world server to stdout
  -p, --project=NAME          project name (letters, digits, '_' and '-');
                              the project directory is TARGET/NAME
  -m, --modname=NAME          Python package name (default: the project name,
                              lowercased, '-' replaced by '_')
  -v, --version=VERSION       project version (default: 0.1)
  -s, --set-pkg-version       name the directory NAME-VERSION
  -t, --target=PATH           where to create the project directory
                              (default: the current directory)
  -g, --git                   run "git init" and "git add" in the project;
                              author name and email come from git config
  -l, --license=FILE          license header for the Python files
                              (default: Apache License 2.0)
  -a, --appskel=SKELETON      skeleton: {skeletons} (default: default)
      --no-register           do not register the project's twistd plugin
                              (then run it with ./start.sh)

examples:
  python -m cyclone.app -p foobar
  python -m cyclone.app -p foo-bar -m foo -a signup -g -t ~/src
  python -m cyclone.app -n > hello.py && python hello.py 8888
"""


def _skeleton_root() -> Traversable:
    """The directory holding the skeletons: the installed ``cyclone.appskel``
    package, else ``appskel/`` of the source tree this module comes from."""
    try:
        return importlib.resources.files(SKELETON_PACKAGE)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "appskel"


def available_skeletons() -> list[str]:
    """The names of the skeletons ``-a`` accepts, sorted."""
    root = _skeleton_root()
    if not root.is_dir():
        return []
    return sorted(e.name for e in root.iterdir() if e.is_dir() and not e.name.startswith(("_", ".")))


def _check_project_name(project: str) -> None:
    if not PROJECT_RE.match(project):
        raise ProjectError(
            f"invalid project name {project!r}: use at least 2 characters among letters, "
            "digits, '_' and '-', starting with a letter or a digit"
        )


def _check_module_name(modname: str) -> None:
    if not MODULE_RE.match(modname) or not modname.isidentifier():
        raise ProjectError(
            f"invalid module name {modname!r}: use lowercase letters, digits and '_', "
            "not starting with a digit (pass one with -m)"
        )
    if keyword.iskeyword(modname) or keyword.issoftkeyword(modname):
        raise ProjectError(f"invalid module name {modname!r}: it is a Python keyword")
    if modname in RESERVED_MODULES:
        raise ProjectError(
            f"module name {modname!r} is reserved: it would shadow a package the project "
            f"uses or collide with one of its directories ({', '.join(sorted(RESERVED_MODULES))})"
        )
    if modname in sys.stdlib_module_names:
        raise ProjectError(f"module name {modname!r} would shadow the standard library module {modname!r}")
    if modname in TWISTD_COMMANDS:
        raise ProjectError(f"module name {modname!r} is taken by Twisted's own 'twistd {modname}' command")


def _license_header(text: str | None, name: str) -> str:
    """The license as a block of Python comments (no trailing newline)."""
    if text is None:
        text = string.Template(DEFAULT_LICENSE).safe_substitute(year=datetime.date.today().year, name=name)
    lines = text.strip("\n").splitlines()
    if not lines:
        return ""
    # A plain-text license file would be a syntax error at the top of a .py file.
    return "\n".join(line if line.startswith("#") else ("# " + line).rstrip() for line in lines)


def _git_config(key: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "config", "--get", key], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = result.stdout.strip()
    return value if result.returncode == 0 and value else None


def _run_git(args: list[str], cwd: str) -> None:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        raise ProjectError(f"git {args[0]} failed: {e}") from e
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise ProjectError(f"git {args[0]} failed (status {result.returncode}): {detail}")


def _walk(node: Traversable, parts: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    """Every file and directory below ``node`` (parents first), as (relative parts, entry)."""
    for entry in sorted(node.iterdir(), key=lambda e: e.name):
        name = entry.name
        if name in SKIPPED_NAMES or name.endswith(SKIPPED_SUFFIXES):
            continue
        yield parts + (name,), entry
        if entry.is_dir():
            yield from _walk(entry, parts + (name,))


def _output_name(name: str, modname: str, is_file: bool) -> str:
    if is_file and name.endswith(".tmpl"):
        name = name[: -len(".tmpl")]
    if name.startswith("dot-"):
        name = "." + name[len("dot-") :]
    return name.replace("modname", modname)


def _is_text(name: str) -> bool:
    return name in TEXT_NAMES or os.path.splitext(name)[1].lower() in TEXT_SUFFIXES


def _write_file(path: str, data: bytes, replace: bool = False) -> None:
    # O_EXCL: the directory is brand new, so an existing file means two
    # skeleton entries map to one name (e.g. "x.py" and "x.py.tmpl"); only a
    # skeleton replacing its base's file may overwrite.
    if replace and os.path.lexists(path):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if data.startswith(b"#!"):
        os.chmod(path, 0o755)


# A skeleton may extend another: the base's files are copied first (minus the
# ones listed), then the skeleton's own files add to or replace them.
_SKELETON_BASES: dict[str, tuple[str, frozenset[str]]] = {
    "signup": ("default", frozenset()),
    "foreman": (
        "default",
        # a Procfile app: no twistd start script, systemd units or nginx setup
        frozenset(
            {
                "start.sh",
                "scripts/modname.service",
                "scripts/modname@.service",
                "scripts/multicore.sh",
                "scripts/nginx.conf",
            }
        ),
    ),
}


def _fill(
    skeleton: Traversable,
    dest: str,
    modname: str,
    values: dict[str, str],
    skip: frozenset[str] = frozenset(),
) -> list[str]:
    """Copy ``skeleton`` (less the paths in ``skip``) into the existing
    directory ``dest``; return the .po catalogs written."""
    catalogs = []
    written: set[str] = set()
    for parts, entry in _walk(skeleton):
        if "/".join(parts) in skip:
            continue
        is_file = not entry.is_dir()
        out = os.path.join(dest, *(_output_name(p, modname, False) for p in parts[:-1]))
        out = os.path.join(out, _output_name(parts[-1], modname, is_file))
        if not is_file:
            os.makedirs(out, 0o777, exist_ok=True)
            continue
        data = entry.read_bytes()
        if _is_text(os.path.basename(out)):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ProjectError(f"skeleton file {'/'.join(parts)} is not UTF-8 text: {e}") from e
            data = string.Template(text).safe_substitute(values).encode("utf-8")
        if out in written:
            raise ProjectError(f"two skeleton files map to {os.path.relpath(out, dest)}")
        written.add(out)
        _write_file(out, data, replace=True)
        if out.endswith(".po"):
            catalogs.append(out)
    return catalogs


def _build(root: Traversable, skel: str, dest: str, modname: str, values: dict[str, str]) -> None:
    """Write skeleton ``skel`` (on top of its base, if any) into ``dest``."""
    from cyclone import i18n  # only needed here; keeps "-h" and "-n" light

    catalogs = []
    if skel in _SKELETON_BASES:
        base, skip = _SKELETON_BASES[skel]
        catalogs += _fill(root / base, dest, modname, values, skip)
    catalogs += _fill(root / skel, dest, modname, values)
    for po in dict.fromkeys(catalogs):
        try:
            i18n.compile_po(po, po[: -len(".po")] + ".mo")
        except i18n.I18nError as e:
            raise ProjectError(f"cannot compile {os.path.relpath(po, dest)}: {e}") from e


def new_project(
    project: str,
    modname: str | None = None,
    version: str = "0.1",
    target: str | os.PathLike[str] = ".",
    skel: str = "default",
    use_git: bool = False,
    license: str | None = None,
    set_pkg_version: bool = False,
    name: str | None = None,
    email: str | None = None,
) -> Path:
    """Create a project from skeleton ``skel`` in ``target``; return its path.

    ``license`` is the text of the license header (default: Apache 2.0);
    ``name``/``email`` (the author) default to git's ``user.name`` and
    ``user.email`` with ``use_git``, else to placeholders. Raises
    :class:`ProjectError` with a message for the user; nothing is left on
    disk when it raises.
    """
    _check_project_name(project)
    if modname is None:
        modname = project.lower().replace("-", "_")
    _check_module_name(modname)
    if not VERSION_RE.match(version):
        raise ProjectError(f"invalid version {version!r}: use letters, digits, '.', '+', '_' and '-'")
    skeletons = available_skeletons()
    if skel not in skeletons:
        raise ProjectError(f"unknown skeleton {skel!r} (available: {', '.join(skeletons) or 'none'})")
    if use_git and shutil.which("git") is None:
        raise ProjectError("-g needs git, which is not on PATH")

    target = os.path.abspath(os.fspath(target))
    if not os.path.isdir(target):
        what = "is not a directory" if os.path.lexists(target) else "does not exist"
        raise ProjectError(f"target {target} {what}")
    if not os.access(target, os.W_OK | os.X_OK):
        raise ProjectError(f"target directory {target} is not writable")
    dirname = f"{project}-{version}" if set_pkg_version else project
    final = os.path.join(target, dirname)
    if os.path.lexists(final):
        raise ProjectError(f"{final} already exists: refusing to overwrite it")

    if use_git:
        name = name or _git_config("user.name")
        email = email or _git_config("user.email")
    name = name or DEFAULT_NAME
    email = email or DEFAULT_EMAIL
    values = {
        "name": name,
        "email": email,
        "project": project,
        "project_name": dirname,
        "project_path": final,
        "modname": modname,
        "version": version,
        "target": target,
        "use_git": "true" if use_git else "false",
        "license": _license_header(license, name),
        "skel": skel,
        "cookie_secret": secrets.token_urlsafe(32),
    }

    # Built under a hidden name beside the target, then renamed: rename is
    # atomic within a directory, so the target appears complete or not at all.
    tmp = os.path.join(target, f".{dirname}.tmp-{secrets.token_hex(4)}")
    try:
        os.mkdir(tmp, 0o777)
    except OSError as e:
        raise ProjectError(f"cannot write in target directory {target}: {e.strerror or e}") from e
    try:
        _build(_skeleton_root(), skel, tmp, modname, values)
        if use_git:
            _run_git(["init", "-q"], tmp)
            _run_git(["add", "-A"], tmp)
        # Checked again: the target may have appeared meanwhile, and rename()
        # would silently replace an empty directory.
        if os.path.lexists(final):
            raise ProjectError(f"{final} already exists: refusing to overwrite it")
        os.rename(tmp, final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise ProjectError(f"cannot create {final}: {e}") from e
        raise
    return Path(final)


_STAND_IN = '''\
"""twistd plugin of the cyclone project in {project!r}.

Written by "python -m cyclone.app" so that "twistd -n {modname}" works from
the project directory (the twistd command does not put the current
directory on sys.path, so a project's own twisted/plugins is not seen).
Delete this file to unregister the project.
"""

import os as _os
import sys as _sys

_project = {project!r}
_source = _os.path.join(_project, "twisted", "plugins", "{modname}_plugin.py")
if _os.path.isfile(_source):  # a moved or deleted project just disappears
    if _project not in _sys.path:
        _sys.path.insert(0, _project)
    with open(_source, encoding="utf-8") as _file:
        exec(compile(_file.read(), _source, "exec"))
'''


def plugin_stand_in_path(modname: str) -> Path:
    """Where ``register_plugin`` writes the stand-in for ``modname``."""
    import twisted.plugins

    return Path(list(twisted.plugins.__path__)[0]) / f"cyclone_project_{modname}.py"


def register_plugin(project: str | os.PathLike[str], modname: str) -> Path:
    """Make ``twistd -n <modname>`` find the project's plugin from anywhere.

    Writes a small stand-in module into Twisted's plugin directory that runs
    ``<project>/twisted/plugins/<modname>_plugin.py`` (like an editable
    install). Raises ``OSError`` when that directory is not writable.
    """
    path = plugin_stand_in_path(modname)
    text = _STAND_IN.format(project=os.path.abspath(os.fspath(project)), modname=modname)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _parser() -> _ArgumentParser:
    parser = _ArgumentParser(prog="python -m cyclone.app", add_help=False)
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("-n", "--new", action="store_true")
    parser.add_argument("-p", "--project")
    parser.add_argument("-m", "--modname")
    parser.add_argument("-v", "--version", default="0.1")
    parser.add_argument("-s", "--set-pkg-version", action="store_true")
    parser.add_argument("-t", "--target", default=".")
    parser.add_argument("-g", "--git", action="store_true")
    parser.add_argument("-l", "--license")
    parser.add_argument("-a", "--appskel", default="default")
    parser.add_argument("--no-register", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cyclone.app``; returns the exit status (2: bad arguments)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        opts = _parser().parse_args(argv)
    except _UsageError as e:
        print(f"cyclone.app: error: {e}\ntry: python -m cyclone.app --help", file=sys.stderr)
        return 2
    if opts.help:
        sys.stdout.write(usage())
        return 0
    if opts.new:
        license = _license_header(None, DEFAULT_NAME)
        sys.stdout.write(f"#!/usr/bin/env python3\n{license}\n\n{SAMPLE_SERVER}")
        return 0
    if not opts.project:
        print("cyclone.app: error: a project name is required (-p NAME)", file=sys.stderr)
        print("try: python -m cyclone.app --help", file=sys.stderr)
        return 2
    license_text = None
    if opts.license:
        try:
            with open(opts.license, encoding="utf-8") as f:
                license_text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            print(f"cyclone.app: error: cannot read license file {opts.license}: {reason}", file=sys.stderr)
            return 2
    try:
        path = new_project(
            project=opts.project,
            modname=opts.modname,
            version=opts.version,
            target=opts.target,
            skel=opts.appskel,
            use_git=opts.git,
            license=license_text,
            set_pkg_version=opts.set_pkg_version,
        )
    except ProjectError as e:
        print(f"cyclone.app: error: {e}", file=sys.stderr)
        return 2
    print(f"created {path} (skeleton {opts.appskel!r}); see {os.path.join(path, 'README.md')}")
    modname = opts.modname or opts.project.lower().replace("-", "_")
    if opts.appskel == "foreman":
        print(f"run it with: cd {path.name} && python {modname}/main.py {modname}.conf")
        return 0
    if not opts.no_register:
        try:
            stand_in = register_plugin(path, modname)
        except OSError as e:
            print(f"note: cannot register the twistd plugin ({e}); run ./start.sh instead,"
                  f" or PYTHONPATH=. twistd -n {modname}")
        else:
            print(f"registered the twistd plugin {modname!r} in {stand_in}")
    print(f"run it with: cd {path.name} && twistd -n {modname}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
