"""harness explains itself: a version, help for every command and argument, and its API in dir()."""

from __future__ import annotations

import argparse
import re

import pytest

from harness.cli import build_parser, main
from harness.version import __version__

#: reStructuredText roles and literals, which a terminal shows as noise
SPHINX = re.compile(r":[a-z]+:`|``")


def parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """The root parser and every subcommand's, by the command line that reaches them."""
    found, todo = [], [("harness", build_parser())]
    while todo:
        name, parser = todo.pop()
        found.append((name, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [(f"{name} {sub}", p) for sub, p in action.choices.items()]
    return sorted(found, key=lambda item: item[0])


def test_every_command_is_walked():
    names = {name for name, _ in parsers()}
    assert {"harness", "harness run", "harness rerun", "harness ls", "harness report"} <= names


@pytest.mark.parametrize("name, parser", parsers(), ids=[n for n, _ in parsers()])
def test_every_argument_has_help_without_sphinx_markup(name, parser):
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help and action.help.strip(), f"{name}: {action.dest} has no help"
        if isinstance(action, argparse._SubParsersAction):
            for sub in action._choices_actions:
                assert sub.help and sub.help.strip(), f"{name} {sub.dest} has no help"
    text = parser.format_help()
    assert not SPHINX.search(text), f"{name} --help shows markup: {SPHINX.search(text)[0]}"


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"harness {__version__}"


def test_dir_of_the_package_lists_its_api_and_nothing_else():
    import harness

    public = [name for name in dir(harness) if not name.startswith("_")]
    assert public == sorted(
        ["estimate", "load_table", "ls", "make_report", "predict", "rerun", "results", "run"]
    )
    assert "__version__" in dir(harness)
    assert all(callable(getattr(harness, name)) for name in public)
