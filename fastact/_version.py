"""The single source of fastact's version (read by setuptools and at run time)."""

__version__ = "0.1.0"
