"""Finding plugin classes (strategies, search spaces) and recording where they came from.

A plugin is named in one of three ways: a built-in name (``random_search``), the name of
an entry point in the plugin group (``harness.strategies``, ``harness.spaces``) that an
installed distribution declares, or a ``package.module:Class`` reference. Whichever way,
the record pins the class's origin: module, distribution and version, and the sha256 of
its source file, so a result can be traced to the exact code that produced it.

Importing a plugin runs its code: harness cannot sandbox it (see REPRODUCIBILITY.md,
threat model). What it guarantees is that a plugin that fails to import, or is not the
kind of class asked for, ends in a one-line error instead of a traceback.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from harness.config import nearest
from harness.errors import ConfigError


def _entry_points(group: str) -> dict[str, str]:
    return {ep.name: ep.value for ep in metadata.entry_points(group=group)}


def load_class(reference: str, *, group: str, builtins: Mapping[str, str], base: type) -> type:
    """The class ``reference`` names: a built-in, an entry point of ``group``, or
    ``module:Class``. Raises ConfigError listing what is available."""
    if not isinstance(reference, str) or not reference:
        raise ConfigError(f"must be a non-empty string, got {reference!r}")
    if reference in builtins:
        target = builtins[reference]
    elif ":" in reference:
        target = reference
    else:
        plugins = _entry_points(group)
        if reference not in plugins:
            known = sorted({*builtins, *plugins})
            raise ConfigError(
                f"unknown {base.__name__.lower()} {reference!r}{nearest(reference, known)}; "
                f"known: {', '.join(known)}, "
                f"or 'package.module:Class', or an entry point in group {group!r}"
            )
        target = plugins[reference]
    module_name, _, qualname = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # a plugin's import may raise anything, sys.exit included
        raise ConfigError(
            f"cannot import {module_name!r} for {reference!r} "
            f"({type(error).__name__}: {' '.join(str(error).split())}); is it installed?"
        ) from None
    found: object = module
    for part in qualname.split(".") if qualname else ():
        found = getattr(found, part, None)
    if not (isinstance(found, type) and issubclass(found, base) and not inspect.isabstract(found)):
        raise ConfigError(
            f"{target!r} is not a concrete subclass of harness's {base.__name__}; "
            f"check the name after ':'"
        )
    return found


def reference_of(cls: type) -> str:
    """The ``module:Class`` reference that loads ``cls`` again."""
    return f"{cls.__module__}:{cls.__qualname__}"


@functools.cache
def _distributions_of_modules() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def origin(cls: type) -> dict[str, str]:
    """Where a plugin class comes from: module, distribution, version, source sha256."""
    top = cls.__module__.split(".")[0]
    # harness's own classes need no scan of every installed distribution (0.4 s)
    distributions = ["harness"] if top == "harness" else _distributions_of_modules().get(top, [])
    distribution = distributions[0] if distributions else "none (not an installed distribution)"
    try:
        version = metadata.version(distribution) if distributions else "unknown"
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        source = Path(inspect.getsourcefile(cls) or "")
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
    except (OSError, TypeError):
        source, digest = Path("unknown"), "unknown"
    return {
        "class": reference_of(cls),
        "distribution": distribution,
        "version": version,
        "source": str(source),
        "source_sha256": digest,
    }
