"""Packaging for cyclone. Metadata lives here; pyproject.toml names the build backend."""

import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = version = "([^"]+)"',
    (HERE / "cyclone" / "__init__.py").read_text(),
    re.M,
).group(1)

setup(
    name="cyclone",
    version=VERSION,
    description="Tornado's web API as a plain Twisted protocol",
    long_description=(HERE / "README.rst").read_text(),
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=["cyclone"],
    install_requires=[
        "Twisted>=23.10",
        "zope.interface>=5.0",
        "txredisapi>=1.4.10",
        "pyOpenSSL>=23.0",
        "service_identity>=21.1",
    ],
    extras_require={
        "test": [
            "pytest>=8.0",
            "pytest-twisted>=1.14",
            "hypothesis>=6.100",
            "treq>=23.11",
        ],
    },
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Topic :: Internet :: WWW/HTTP :: HTTP Servers",
    ],
)
