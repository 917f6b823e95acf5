"""harness: a reproducibility-first benchmark harness for neural architecture search."""

__version__ = "0.1.0"
