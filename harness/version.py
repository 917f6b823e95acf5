"""The version of harness: a leaf, so any layer reads it without importing the package
root (whose ``__init__`` re-exports it with the Python API)."""

__version__ = "0.1.0"
