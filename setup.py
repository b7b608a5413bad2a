"""Packaging for cyclone. Metadata lives here; pyproject.toml names the build backend.

Two things need more than a plain ``setup()``:

* ``twisted/plugins/cyclone_plugin.py`` (the ``twistd cyclone`` plugin) must
  land in Twisted's plugin package, ``twisted.plugins``. That package belongs
  to Twisted, so this project has no ``twisted/__init__.py`` nor
  ``twisted/plugins/__init__.py``; listing ``twisted.plugins`` in
  ``packages`` makes a regular install copy the module next to Twisted's own
  plugins (setuptools only warns that the ``__init__.py`` is missing). An
  editable install copies nothing, and Twisted finds plugins by listing the
  directories of ``twisted.plugins.__path__``, so the editable wheel gets a
  small stand-in module there that runs the source tree's plugin (see
  ``editable_wheel`` below).
* The project skeletons live in the top-level ``appskel/`` directory and ship
  as the package ``cyclone.appskel``, with every file (dotfiles included) as
  package data.

Twisted caches what it learns about plugins in ``twisted/plugins/dropin.cache``
and rewrites it when a plugin file is newer. If that directory is read-only to
the users who run ``twistd`` (a system-wide install), refresh the cache once as
the installing user::

    python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"
"""

import glob
import os
import re
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
PLUGIN = "twisted/plugins/cyclone_plugin.py"
VERSION = re.search(
    r'^__version__ = version = "([^"]+)"',
    (HERE / "cyclone" / "__init__.py").read_text(),
    re.M,
).group(1)


def skeleton_files(root: Path = HERE / "appskel") -> list[str]:
    """Every file under ``root``, relative to it, for ``package_data``.

    Listed one by one because setuptools' globs skip dotfiles (``.gitignore``,
    ``.env``), which the skeletons need.
    """
    found = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            relative = (Path(directory) / name).relative_to(root).as_posix()
            # package_data entries are glob patterns: make odd names literal
            found.append(glob.escape(relative))
    return found


PLUGIN_STAND_IN = '''\
"""cyclone's twistd plugin, installed in editable mode.

Twisted finds plugins by listing this directory; this stand-in runs the
source tree's plugin so edits to it take effect without reinstalling.
"""

_source = {source!r}
with open(_source, encoding="utf-8") as _file:
    exec(compile(_file.read(), _source, "exec"))
'''


class _AddPluginStandIn:
    """Wraps setuptools' editable strategy to also write the plugin stand-in."""

    def __init__(self, strategy, source: Path) -> None:
        self.strategy = strategy
        self.source = source

    def __call__(self, wheel, files, mapping) -> None:
        self.strategy(wheel, files, mapping)
        wheel.writestr(PLUGIN, PLUGIN_STAND_IN.format(source=str(self.source)).encode("utf-8"))

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.strategy.__exit__(*exc_info)


cmdclass = {}
try:
    from setuptools.command.editable_wheel import editable_wheel as _editable_wheel
except ImportError:  # setuptools < 64 has no PEP 660 editable installs
    pass
else:

    class editable_wheel(_editable_wheel):
        """PEP 660 editable wheel that also carries the twistd plugin stand-in.

        ``_select_strategy`` is setuptools' hook for what an editable wheel
        contains (unchanged from 64 to 80+); tests/test_install.py checks that
        ``twistd cyclone`` works after an editable install, so a change there
        shows up as a failing test, not a silently missing plugin.
        """

        def _select_strategy(self, *args, **kwargs):
            return _AddPluginStandIn(super()._select_strategy(*args, **kwargs), HERE / PLUGIN)

    cmdclass["editable_wheel"] = editable_wheel

# cyclone/_speedups.c: WebSocket masking in C (cyclone.websocket_codec uses
# the pure-Python code when it is missing). optional=True: without a
# compiler the install goes on without it; CYCLONE_NO_EXTENSIONS=1 skips it.
SPEEDUPS = Extension("cyclone._speedups", ["cyclone/_speedups.c"], optional=True)


setup(
    name="cyclone",
    version=VERSION,
    description="Tornado's web API as a plain Twisted protocol",
    long_description=(HERE / "README.rst").read_text(),
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=["cyclone", "cyclone.testing", "cyclone.appskel", "twisted.plugins"],
    package_dir={"cyclone.appskel": "appskel"},
    package_data={"cyclone.appskel": skeleton_files()},
    ext_modules=[] if os.environ.get("CYCLONE_NO_EXTENSIONS") else [SPEEDUPS],
    install_requires=[
        "Twisted>=23.10",
        "zope.interface>=5.0",
        "txredisapi>=1.6.0",  # cyclone.redis: lazy pools that reconnect (ClientService), TLS creators
        "pyOpenSSL>=23.0",
        "service_identity>=21.1",
    ],
    extras_require={
        # optional: txredisapi parses replies with hiredis's C reader when it is
        # installed, which takes ~40% off the CPU of a Redis command
        # (bench/RESULTS-redis.md); cyclone.redis works the same without it
        "hiredis": ["hiredis>=2.0"],
        "test": [
            "pytest>=8.0",
            "pytest-twisted>=1.14",
            "hypothesis>=6.100",
            "treq>=23.11",
            # tests/test_porting.py runs one application under Tornado and
            # under cyclone: the judge of "moves over by changing imports"
            "tornado==6.6",
            # a WebSocket client we did not write, for tests/test_websocket.py
            "websockets>=13.0",
            # tests/test_websocket_demos.py drives the demos in headless Chromium;
            # it launches the system's browser (Debian's chromium, .ci/run installs
            # it), so "playwright install" and its browser downloads are not needed
            "playwright>=1.40",
            # tests/test_mail.py and tests/test_mail_demos.py send mail to it: an SMTP
            # server we did not write (plain, STARTTLS, SMTPS, AUTH)
            "aiosmtpd>=1.4",
            # tests/oauth_provider.py, the OAuth provider double of tests/test_auth.py,
            # checks every OAuth 1.0a signature with it (an implementation we did not write)
            "oauthlib>=3.2",
            # an SSE client we did not write, for tests/test_sse*.py
            "sseclient-py>=1.8",
            # a JSON-RPC client we did not write (it builds and parses the
            # messages), for tests/test_jsonrpc.py
            "jsonrpcclient>=4.0",
            # tests/test_wsgi.py serves real WSGI applications from PyPI,
            # run unchanged: a Flask app and a minimal Django project
            "flask>=3.0",
            "django>=4.2",
        ],
    },
    entry_points={
        "console_scripts": ["cyclone = cyclone.cli:main"],
        "pytest11": ["cyclone = cyclone.testing.pytest_plugin"],
    },
    cmdclass=cmdclass,
    zip_safe=False,
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Topic :: Internet :: WWW/HTTP :: HTTP Servers",
    ],
)
