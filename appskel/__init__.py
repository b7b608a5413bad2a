"""Project skeletons for ``python -m cyclone.app``: package data, not code."""
