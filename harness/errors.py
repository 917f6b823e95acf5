"""User-facing errors.

Anything the user can fix (a bad spec, a missing or corrupt table, an invalid
architecture string) raises a subclass of :class:`HarnessError`. The CLI prints its
message as one line and exits with status 2; no traceback is shown.
"""


class HarnessError(Exception):
    """An error caused by the user's input; the message says what to fix."""


class SpecError(HarnessError):
    """A malformed experiment spec (TOML)."""


class TableError(HarnessError):
    """A missing, corrupt, hash-mismatched or incomplete benchmark table."""


class ArchitectureError(HarnessError, ValueError):
    """An architecture string or index that is not in the search space."""


class DatasetError(HarnessError):
    """A missing, corrupt or unsafe dataset file, split file or dataset option."""
