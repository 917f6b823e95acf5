"""User-facing errors.

Anything the user can fix (a bad spec, a missing or corrupt table, an invalid
architecture string, a misbehaving plugin) raises a subclass of :class:`HarnessError`.
The CLI prints its message as one line and exits with status 2; no traceback is shown.
"""

from __future__ import annotations

from collections.abc import Sequence


class HarnessError(Exception):
    """An error caused by the user's input; the message says what to fix."""


class ConfigError(HarnessError, ValueError):
    """An invalid configuration value, raised by value objects and validators.

    ``field`` is the dotted name of the offending value when known; the boundary that
    read the file adds the file name (``harness.config.spec_error``).
    """

    def __init__(
        self, message: str, field: str | None = None, problems: Sequence[ConfigError] = ()
    ) -> None:
        super().__init__(f"[{field}] {message}" if field else message)
        self.message, self.field = message, field
        #: for an error that gathers several problems (:meth:`of`), each of them
        self.problems = tuple(problems)

    @classmethod
    def of(cls, errors: Sequence[ConfigError]) -> ConfigError:
        """One error for several problems, so that a file's problems are reported at once;
        a single problem is returned as it is."""
        flat = [problem for error in errors for problem in error.each()]
        if len(flat) == 1:
            return flat[0]
        return cls("; ".join(map(str, flat)), None, flat)

    def each(self) -> tuple[ConfigError, ...]:
        """The problems this error stands for (itself, unless it gathers several)."""
        return self.problems or (self,)


class SpecError(HarnessError):
    """A malformed experiment spec (TOML)."""


class TableError(HarnessError):
    """A missing, corrupt, hash-mismatched or incomplete benchmark table."""


class ArchitectureError(HarnessError, ValueError):
    """An architecture string or index that is not in the search space."""


class DatasetError(HarnessError):
    """A missing, corrupt or unsafe dataset file, split file or dataset option."""


class StrategyError(HarnessError):
    """A strategy that cannot be loaded, or that broke the ask/tell contract."""


class EstimatorError(HarnessError):
    """An estimator that cannot be loaded, or that raised while setting up or scoring."""


class CallTimeout(BaseException):
    """Raised into a strategy call that ran past its time limit (:mod:`harness.simulator`):
    a BaseException, so a plugin's ``except Exception`` does not swallow it."""
