"""Configuration: reading TOML, validating tables of fields, canonical JSON and hashing.

Every configuration harness reads (experiment specs, training protocols, tabulate specs,
strategy hyperparameters, dataset options) is validated here against a declarative
schema of :class:`Field` objects, so one code path decides what a type, a range or a
missing key means. Validation raises :class:`~harness.errors.ConfigError` carrying the
dotted field name; the boundary that read the file adds the file name to the one-line
message (:func:`at`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import read_regular
from harness.errors import ConfigError, SpecError

#: marks a field without a default: it must be given
REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()

_WORDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a table",
    list: "an array",
}
#: TOML nesting deeper than this is refused before it is parsed (tomllib recurses)
MAX_TOML_DEPTH = 64
MAX_TOML_BYTES = 4 << 20


@dataclass(frozen=True)
class Field:
    """One configuration value: its type, default, bounds and allowed choices.

    ``kind`` is ``str``, ``int``, ``float``, ``bool``, ``list`` or ``dict`` (an ``int``
    is accepted for a ``float`` and converted; ``bool`` is never an ``int``). ``items``
    types a list's elements. ``low``/``high`` bound numbers (inclusive unless the
    ``*_open`` flag is set); floats must be finite. ``optional`` admits ``None`` (a
    TOML file cannot spell it, so it means "absent").
    """

    kind: type | tuple[type, ...]
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    items: type | None = None
    optional: bool = False
    help: str = ""

    def check(self, value: Any) -> Any:
        """``value`` converted to this field's type; ConfigError (no field name) if invalid."""
        if value is None and self.optional:
            return None
        value = _typed(value, self.kind)
        if self.kind is list and self.items is not None:
            value = [_typed(item, self.items, "every element") for item in value]
            for item in value:
                self._bounds(item)
        else:
            self._bounds(value)
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
        return value

    def _bounds(self, value: Any) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            raise ConfigError(
                f"must be {'>' if self.low_open else '>='} {self.low:g}, got {value!r}"
            )
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            raise ConfigError(
                f"must be {'<' if self.high_open else '<='} {self.high:g}, got {value!r}"
            )


@dataclass(frozen=True)
class Section:
    """One table of a spec file: its dotted TOML name, its fields and what it is for.

    ``repeated`` marks an array of tables (``[[strategy]]``); ``fields`` is empty for a
    section whose keys are the user's own names (``about`` then says what they hold).
    Declared once, a section is both validated (:func:`validate`) and documented
    (``docs/specs.md``, made by :mod:`harness.specdoc`).
    """

    name: str
    fields: Mapping[str, Field]
    about: str
    required: bool = False
    repeated: bool = False


@dataclass(frozen=True)
class SpecFormat:
    """A kind of spec file: the command that reads it, what it is for and its sections.

    A module that reads a kind of spec declares one at module level; ``docs/specs.md``
    lists every one it finds in the package.
    """

    title: str
    command: str
    about: str
    sections: tuple[Section, ...]

    def top_level(self, required: bool = False) -> tuple[str, ...]:
        """The names of the file's top-level sections (only the required ones if asked)."""
        return tuple(
            s.name for s in self.sections if "." not in s.name and (s.required or not required)
        )

    def section_problems(self, raw: Mapping[str, Any]) -> list[ConfigError]:
        """A file's unknown top-level sections (with the nearest known name) and its
        missing required ones, each a problem of its own."""
        known = self.top_level()
        problems = [
            ConfigError(
                f"is not a known section{nearest(name, known)}; allowed: {', '.join(known)}",
                name,
            )
            for name in sorted(set(raw) - set(known))
        ]
        problems += [
            ConfigError("section is required; see docs/specs.md", name)
            for name in self.top_level(required=True)
            if name not in raw
        ]
        return problems


def _words(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_WORDS.get(k, k.__name__) for k in kinds)


def _typed(value: Any, kind: type | tuple[type, ...], what: str = "") -> Any:
    prefix = f"{what} " if what else ""
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{prefix}must be {_words(kind)}, got {value!r}")
    if kind is float and isinstance(value, int):
        if abs(value) > 2**53:
            raise ConfigError(f"{prefix}must be a number of moderate size, got {value!r}")
        value = float(value)
    if not isinstance(value, kind):
        raise ConfigError(f"{prefix}must be {_words(kind)}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{prefix}must be a finite number, got {value!r}")
    return value


def validate(data: Any, fields: Mapping[str, Field]) -> dict[str, Any]:
    """``data`` checked against ``fields``, defaults filled in, in ``fields`` order.

    Unknown keys, missing required keys and invalid values raise ConfigError whose
    ``field`` is the key, every such key at once (:meth:`ConfigError.of`); wrap the call
    in :func:`at` to name the enclosing section.
    """
    if not isinstance(data, Mapping):
        raise ConfigError("must be a table")
    problems = Problems()
    for key in sorted(set(data) - set(fields), key=str):
        problems.add(
            ConfigError(
                f"is not a known key{nearest(str(key), fields)}; "
                f"allowed: {', '.join(fields) or 'none'}",
                str(key),
            )
        )
    resolved = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is REQUIRED:
                problems.add(ConfigError("is required", name))
            else:
                resolved[name] = copy.copy(field.default)  # a default list or dict is never shared
            continue
        with problems.check(name):
            resolved[name] = field.check(data[name])
    problems.raise_any()
    return resolved


class Problems:
    """The problems of checks that do not depend on each other, gathered so that a file's
    every problem is reported at once instead of one per attempt."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def add(self, error: ConfigError) -> None:
        self.errors.append(error)

    @contextmanager
    def check(self, name: str | None = None) -> Iterator[None]:
        """Run the block; a ConfigError it raises is kept (its field prefixed by ``name``)
        and the code after the block goes on."""
        try:
            if name is None:
                yield
            else:
                with at(name):
                    yield
        except ConfigError as error:
            self.errors.append(error)

    def raise_any(self) -> None:
        """Raise the problems gathered so far as one ConfigError, if there are any."""
        if self.errors:
            raise ConfigError.of(self.errors)


def nearest(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the known name closest to a misspelt one, or ``""``."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@contextmanager
def at(name: str) -> Iterator[None]:
    """Prefix ``name`` to the field of a ConfigError raised inside the block (to each
    field, for an error that gathers several problems)."""
    try:
        yield
    except ConfigError as error:
        raise ConfigError.of(
            [
                ConfigError(p.message, name if p.field is None else f"{name}.{p.field}")
                for p in error.each()
            ]
        ) from None


def spec_error(path: Path | str, error: ConfigError) -> SpecError:
    """A file-level error: ``<file>: [<field>] <message>`` (``[overrides.<key>] ...`` for
    a value an override set); for several problems, a first line that counts them and one
    such line for each."""
    lines = [_problem_line(path, p) for p in error.each()]
    if len(lines) == 1:
        return SpecError(lines[0])
    return SpecError(
        f"{path}: {len(lines)} problems; fix each, then run again:\n"
        + "\n".join(f"  {line}" for line in lines)
    )


def _problem_line(path: Path | str, problem: ConfigError) -> str:
    """One problem as a line naming its culprit: the file and field, or the override."""
    if problem.field and problem.field.startswith("overrides."):
        return f"[{problem.field}] {problem.message} (the override's value, not {path}'s)"
    return f"{path}:{f' [{problem.field}]' if problem.field else ''} {problem.message}"


def _nesting_depth(text: str) -> int:
    """Upper bound on the bracket nesting of TOML text (strings included, to stay cheap)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
    return deepest


def read_text(path: Path) -> str:
    """A config file's UTF-8 text; unreadable or oversized files raise SpecError."""
    try:
        raw = read_regular(path, MAX_TOML_BYTES)
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a folder, not a TOML file") from None
    except OSError as error:
        raise SpecError(f"{path}: cannot read the file ({error.strerror})") from None
    if len(raw) > MAX_TOML_BYTES:
        raise SpecError(f"{path}: {len(raw)}+ bytes is too large for a spec (limit 4 MiB)")
    if b"\0" in raw:  # no TOML text holds a NUL byte: an image, an HDF5 table, a program
        raise SpecError(
            f"{path}: is a binary file, not a spec; a spec is a TOML text file "
            "(docs/specs.md), e.g. benchmarks/digits/compare.toml"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(
            f"{path}: not UTF-8 text (byte {error.start}); a spec is a TOML text file: if "
            "this is one, save it as UTF-8"
        ) from None


def parse_toml(text: str, path: Path | str) -> dict[str, Any]:
    """TOML text's tables; malformed or absurdly nested text raises SpecError naming ``path``."""
    if _nesting_depth(text) > MAX_TOML_DEPTH:
        raise SpecError(f"{path}: nested deeper than {MAX_TOML_DEPTH} levels; flatten it")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML ({error}); fix the syntax") from None


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's tables (:func:`read_text`, then :func:`parse_toml`)."""
    return parse_toml(read_text(path), path)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def config_hash(config: Any) -> str:
    """sha256 of a config's canonical JSON: key order and formatting do not matter."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()
