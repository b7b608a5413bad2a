"""The benchmark app on the original cyclone 1.3 (PyPI, installed with --no-deps on
current Twisted), default settings.

cyclone 1.3 has the same handler API, so the handlers are cyclone_app's; only the
``cyclone`` package installed in this virtualenv differs.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import install_reactor, parse_args, run_twisted  # noqa: E402

ARGS = parse_args(None if __name__ == "__main__" else [])
install_reactor(ARGS.reactor)

from cyclone_app import make_factory  # noqa: E402

if __name__ == "__main__":
    run_twisted(make_factory(), ARGS, "cyclone13")
