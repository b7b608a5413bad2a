"""pip-installing cyclone into a fresh virtualenv, as a regular and as an editable install.

pip is given a copy of the source tree: it builds in the tree it is given, so
the copy keeps ``build/`` and ``*.egg-info`` out of the checkout and parallel
runs apart. pip builds it with the backend pyproject.toml names, fetched from
the package index like in any install. The dependencies are not downloaded:
the files of every distribution cyclone needs are symlinked from the
environment running the tests into the new site-packages. (A ``.pth`` file
pointing at this environment's site-packages would also bring along the
cyclone installed there, and its plugin in ``twisted/plugins``.)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import cyclone
from tests.test_plugin import ROOT, Server, free_port, request

SOURCE_ITEMS = ["setup.py", "pyproject.toml", "README.rst", "cyclone", "appskel", "twisted"]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "dropin.cache", "*.egg-info", "build")
# extra skeleton files in the copy: dotfiles and dot-directories must ship too
EXTRA_SKELETON_FILES = [".dotfile-check", ".dotdir-check/nested/.inner"]


class Install:
    """A virtualenv with cyclone installed in it."""

    def __init__(self, root: Path, editable: bool) -> None:
        self.root = root
        self.editable = editable
        self.source = root / "src"
        self.venv = root / "venv"
        self.bin = self.venv / ("Scripts" if os.name == "nt" else "bin")
        self.python = self.bin / ("python.exe" if os.name == "nt" else "python")
        self.site_packages = Path()

    def env(self) -> dict[str, str]:
        """An environment in which only the venv decides what gets imported."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
        env.update(PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
        return env

    def run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(a) for a in args],
            cwd=self.root,  # neither the checkout nor the source copy
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
        return result

    def python_json(self, code: str):
        """Run ``code`` in the venv; it prints one JSON document."""
        return json.loads(self.run(self.python, "-c", code).stdout)

    def twistd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(
            self.python, "-c", "from twisted.scripts.twistd import run; run()", *args, check=check
        )


def copy_source(target: Path) -> None:
    target.mkdir()
    for item in SOURCE_ITEMS:
        path = ROOT / item
        if path.is_dir():
            shutil.copytree(path, target / item, ignore=IGNORE)
        else:
            shutil.copy2(path, target / item)
    for name in EXTRA_SKELETON_FILES:
        extra = target / "appskel" / name
        extra.parent.mkdir(parents=True, exist_ok=True)
        extra.write_text(f"{name}\n")


def link_dependencies(requirements: list[str], site_packages: Path) -> list[str]:
    """Symlink the files of ``requirements`` and of what they need, recursively,
    from this environment into ``site_packages``; returns the distributions."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        key = canonicalize_name(requirement.name)
        if key in seen:
            continue
        seen.add(key)
        dist = importlib.metadata.distribution(requirement.name)
        assert dist.files is not None, f"{requirement.name} has no RECORD to copy it from"
        for file in dist.files:
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # scripts and the like live outside site-packages
            target = site_packages.joinpath(*file.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(Path(dist.locate_file(file)).resolve())
        todo.extend(Requirement(r) for r in dist.requires or [])
    return sorted(seen)


@pytest.fixture(scope="module", params=["regular", "editable"])
def install(request, tmp_path_factory) -> Install:
    editable = request.param == "editable"
    inst = Install(tmp_path_factory.mktemp(f"install-{request.param}"), editable)
    copy_source(inst.source)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(inst.venv)], check=True, timeout=120)
    pip = [sys.executable, "-m", "pip", "--python", str(inst.python), "install", "--no-deps", "--no-input"]
    result = subprocess.run(
        [*pip, *(["-e"] if editable else []), str(inst.source)],
        cwd=inst.root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
    inst.site_packages = Path(
        inst.python_json("import json, sysconfig; print(json.dumps(sysconfig.get_paths()['purelib']))")
    )
    requires = inst.python_json(
        "import importlib.metadata as m, json; print(json.dumps(m.requires('cyclone')))"
    )
    linked = link_dependencies([r for r in requires if "extra ==" not in r], inst.site_packages)
    assert "twisted" in linked
    return inst


def test_cyclone_comes_from_the_install(install):
    where, version = install.python_json(
        "import cyclone, json; print(json.dumps([cyclone.__file__, cyclone.__version__]))"
    )
    assert version == cyclone.__version__
    expected = install.source if install.editable else install.site_packages
    assert Path(where) == expected / "cyclone" / "__init__.py"


def test_twistd_lists_the_plugin_and_its_options(install):
    listing = install.twistd("--help").stdout
    assert "A high performance web server" in listing
    options = install.twistd("cyclone", "--help").stdout
    for option in ("--port=", "--listen=", "--unix=", "--app=", "--appopts=", "--ssl-cert=", "--ssl-app="):
        assert option in options
    # the plugin module sits in Twisted's plugin package, wherever Twisted is
    plugin = install.site_packages / "twisted" / "plugins" / "cyclone_plugin.py"
    where = install.python_json(
        "import json, twisted.plugins.cyclone_plugin as p; print(json.dumps(p.__file__))"
    )
    assert Path(where) == plugin
    source = install.source / "twisted" / "plugins" / "cyclone_plugin.py"
    if install.editable:
        # a stand-in that runs the source tree's plugin: edits there are live
        assert repr(str(source)) in plugin.read_text()
        original = source.read_text()
        try:
            source.write_text(original + "\nEDITED_AFTER_INSTALL = True\n")
            edited = install.python_json(
                "import json, twisted.plugins.cyclone_plugin as p; print(json.dumps(p.EDITED_AFTER_INSTALL))"
            )
        finally:
            source.write_text(original)
        assert edited is True
    else:
        assert plugin.read_bytes() == source.read_bytes()


LIST_SKELETONS = """
import hashlib, importlib.resources, json

def walk(node, prefix=""):
    for child in node.iterdir():
        name = prefix + child.name
        if child.is_dir():
            if child.name != "__pycache__":
                yield from walk(child, name + "/")
        elif not name.endswith(".pyc"):
            yield name, hashlib.sha256(child.read_bytes()).hexdigest()

print(json.dumps(dict(walk(importlib.resources.files("cyclone.appskel")))))
"""


def test_skeletons_ship_with_every_file(install):
    root = install.source / "appskel"
    expected = {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert set(EXTRA_SKELETON_FILES) <= set(expected)
    assert install.python_json(LIST_SKELETONS) == expected
    if not install.editable:
        assert (install.site_packages / "cyclone" / "appskel" / ".dotfile-check").is_file()


def test_console_script_and_entry_points(install):
    result = install.run(install.bin / "cyclone", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: cyclone run")
    entry_points = install.python_json(
        "import importlib.metadata as m, json; "
        "points = m.distribution('cyclone').entry_points; "
        "print(json.dumps(sorted([e.group, e.name, e.value] for e in points)))"
    )
    assert ["console_scripts", "cyclone", "cyclone.cli:main"] in entry_points
    assert ["pytest11", "cyclone", "cyclone.testing.pytest_plugin"] in entry_points
    # the pytest plugin's module is part of the install (pytest itself is not linked in)
    found = install.python_json(
        "import importlib.util, json; "
        "print(json.dumps(importlib.util.find_spec('cyclone.testing.pytest_plugin') is not None))"
    )
    assert found is True


def test_installed_command_serves_the_welcome_page(install):
    port = free_port()
    args = [str(install.bin / "cyclone"), "run", "-p", str(port)]
    with Server(args, install.root, install.root / f"serve-{port}.log", env=install.env()) as server:
        server.wait_tcp(port)
        status, _, body = request(port, "/")
        assert status == 200
        assert f"cyclone {cyclone.__version__} is running" in body
