"""Fuzz targets for cyclone's parsers; see README.rst beside this file.

Each module here (``http1``, ``urlencoded``, ``multipart``, ``cookies``,
``headers``) defines ``one_input(data: bytes) -> None``, which raises only
when it finds a bug, and ``SEEDS``, a few inputs to start from.  Run one with
``python -m fuzz.<name>`` from the repository root.
"""
