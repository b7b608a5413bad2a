"""cyclone: a Tornado-compatible web toolkit that is a plain Twisted protocol."""

__author__ = "the cyclone developers"
__version__ = version = "2.0.0.dev0"
version_info = (2, 0, 0, "dev0")

__all__ = ["__version__", "version", "version_info"]
