"""cyclone.util: ObjectDict, import_object, the Python 2-era aliases."""

import copy
import os.path
import pickle
import subprocess
import sys
import unittest

import pytest

from cyclone import util
from cyclone.util import ObjectDict, import_object


def test_object_dict_attribute_and_item_access():
    d = ObjectDict(a=1)
    d.b = 2
    d["c"] = 3
    assert (d.a, d["b"], d.c) == (1, 2, 3)
    del d.a
    assert "a" not in d
    assert isinstance(d, dict)


@pytest.mark.parametrize("op", [lambda d: d.missing, lambda d: delattr(d, "missing")])
def test_object_dict_missing_attribute_raises_attribute_error(op):
    with pytest.raises(AttributeError, match="missing"):
        op(ObjectDict())


def test_object_dict_getattr_default_and_hasattr():
    d = ObjectDict(x=1)
    assert getattr(d, "y", "dflt") == "dflt"
    assert hasattr(d, "x") and not hasattr(d, "y")


def test_object_dict_keeps_dict_methods():
    # A key named like a dict method does not shadow the method.
    d = ObjectDict(items=5)
    assert list(d.items()) == [("items", 5)]


def test_object_dict_copies_and_pickles():
    d = ObjectDict(a=[1])
    assert copy.deepcopy(d) == d and copy.deepcopy(d).a is not d.a
    restored = pickle.loads(pickle.dumps(d))
    assert type(restored) is ObjectDict and restored.a == [1]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("os", os),
        ("os.path", os.path),
        ("os.path.join", os.path.join),
        ("cyclone.util.ObjectDict", ObjectDict),
        ("cyclone.util.ObjectDict.__getattr__", ObjectDict.__getattr__),
    ],
)
def test_import_object(name, expected):
    assert import_object(name) is expected


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package whose __init__ does not import its submodule."""
    pkg = tmp_path / "cyclone_test_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sub.py").write_text("VALUE = 42\n")
    (pkg / "broken.py").write_text("import not_there_either_xyz\n")
    (tmp_path / "cyclone_test_broken.py").write_text("import not_there_either_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("cyclone_test_pkg", "cyclone_test_pkg.sub", "cyclone_test_pkg.broken",
                 "cyclone_test_broken"):
        sys.modules.pop(name, None)


def test_import_object_imports_submodules(package):
    assert import_object("cyclone_test_pkg.sub.VALUE") == 42
    assert import_object("cyclone_test_pkg.sub").__name__ == "cyclone_test_pkg.sub"
    with pytest.raises(ImportError, match="cyclone_test_pkg.nope"):
        import_object("cyclone_test_pkg.nope")


@pytest.mark.parametrize("name", ["cyclone_test_broken.thing", "cyclone_test_pkg.broken"])
def test_import_object_keeps_errors_from_inside_a_module(package, name):
    # The module exists but its own import fails: that error is the one to see.
    with pytest.raises(ModuleNotFoundError) as info:
        import_object(name)
    assert info.value.name == "not_there_either_xyz"


@pytest.mark.parametrize(
    "name",
    [
        "no_such_module_hopefully",
        "os.no_such_attribute",
        "cyclone.no_such_module",
        "cyclone.util.ObjectDict.no_such_attr",
        "os.path.join.nope",
    ],
)
def test_import_object_missing(name):
    with pytest.raises(ImportError):
        import_object(name)


def test_python2_aliases():
    assert util.bytes_type is bytes
    assert util.unicode_type is str
    assert util.basestring_type is str


def test_doctests_suite_runs_and_passes():
    suite = util.doctests()
    assert suite.countTestCases() > 0
    with open(os.devnull, "w") as devnull:
        result = unittest.TextTestRunner(stream=devnull).run(suite)
    assert result.wasSuccessful()


def test_importing_util_changes_nothing_global():
    code = (
        "import logging, twisted.python.log as L\n"
        "before = (L.FileLogObserver.emit, list(logging.getLogger().handlers),"
        " list(L.theLogPublisher.observers))\n"
        "import cyclone.util, cyclone.escape, cyclone.httputil\n"
        "after = (L.FileLogObserver.emit, list(logging.getLogger().handlers),"
        " list(L.theLogPublisher.observers))\n"
        "assert before == after, (before, after)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# -- lazy_attribute ----------------------------------------------------------------------------

made: list = []


def make_thing(instance):
    made.append(instance)
    return f"thing of {instance.name}"


def test_lazy_attribute_is_made_once_per_instance_and_can_be_replaced():
    from cyclone.util import lazy_attribute

    class Owner:
        thing = lazy_attribute("tests.test_util.make_thing")

        def __init__(self, name):
            self.name = name

    made.clear()
    a, b = Owner("a"), Owner("b")
    assert isinstance(Owner.thing, lazy_attribute)
    assert made == []
    assert a.thing == "thing of a" and a.thing == "thing of a"
    assert made == [a]
    assert b.thing == "thing of b" and made == [a, b]
    b.thing = "replaced"
    assert b.thing == "replaced"
    c = Owner("c")
    c.thing = "set before use"
    assert c.thing == "set before use" and made == [a, b]
