"""``python -m cyclone``: the ``cyclone`` command (see ``cyclone.cli``)."""

import sys

from cyclone.cli import main

if __name__ == "__main__":
    sys.exit(main())
