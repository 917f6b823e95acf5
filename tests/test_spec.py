"""Experiment specs: strict parsing, errors that name the field, stable hashing."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import dump_toml

from harness.errors import SpecError
from harness.spec import load_spec, parse_spec

TABLE5 = Path(__file__).resolve().parents[1] / "benchmarks" / "nb201" / "table5.toml"


def table5() -> dict:
    return tomllib.loads(TABLE5.read_text())


def test_table5_spec_parses_with_its_published_protocol():
    spec = load_spec(TABLE5)
    assert [s.name for s in spec.strategies] == ["REA", "RS", "REINFORCE", "BOHB"]
    assert spec.strategies[0].params == {"population_size": 10, "sample_size": 3}
    assert spec.strategies[2].params == {"learning_rate": 0.5, "baseline_momentum": 0.9}
    assert spec.budget.seconds == 12000 and spec.budget.overrun == "discard"
    # NB201's released REINFORCE keeps the evaluation that crosses the budget; REA, RS drop
    # it; its BOHB scored it 100 % loss, never a candidate
    rules = [s.budget(spec.budget).overrun for s in spec.strategies]
    assert rules == ["discard", "discard", "keep", "discard"]
    assert spec.strategies[3].params["ignore_budget"] is True
    assert spec.published["BOHB"]["C10 test"] == (93.61, 0.52, 500)  # mean, std, the published n
    assert len(spec.seeds) == 500
    assert str(spec.search.signal) == "cifar10-valid/hp12/x-valid/accuracy"
    assert spec.published["REA"]["C10 val"] == (91.19, 0.31, 500)
    assert len(spec.targets) == 6


def test_relative_paths_resolve_against_the_spec_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = load_spec(TABLE5)
    assert spec.table_path == (TABLE5.parent / "../../build/tables/nb201.h5").resolve()


def test_hash_ignores_key_order_and_changes_with_content():
    raw = table5()
    a = parse_spec(raw, TABLE5).spec_hash
    reordered = dict(reversed(list(raw.items())))
    assert parse_spec(reordered, TABLE5).spec_hash == a
    raw["budget"]["seconds"] = 6000
    assert parse_spec(raw, TABLE5).spec_hash != a


def mutate(edit) -> dict:
    raw = table5()
    edit(raw)
    return raw


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r.update(extra={}), r"\[extra\] is not a known section"),
        (lambda r: r.pop("budget"), r"\[budget\] section is required"),
        (
            lambda r: r["search"].update(sigal="x"),
            r"\[search.sigal\] is not a known key \(did you mean 'signal'\?\)",
        ),
        (lambda r: r["search"].pop("epoch"), r"\[search.epoch\] is required"),
        (lambda r: r["search"].update(epoch="12"), r"\[search.epoch\] must be an integer"),
        (lambda r: r["search"].update(seed_policy="best"), r"\[search.seed_policy\] must be one"),
        (lambda r: r["budget"].update(overrun="sometimes"), r"\[budget.overrun\] must be one of"),
        (
            lambda r: r["strategy"][0].update(overrun="later"),
            r"\[strategy.0.overrun\] must be one of 'discard', 'finish', 'keep'",
        ),
        (lambda r: r["budget"].update(seconds=float("inf")), r"\[budget.seconds\] must be a fin"),
        (lambda r: r["budget"].update(seconds=float("nan")), r"\[budget.seconds\] must be a fin"),
        (lambda r: r["runs"].update(workers=True), r"\[runs.workers\] must be an integer"),
        (lambda r: r["runs"].update(seeds=[-1]), r"\[runs.seeds\] must be >= 0"),
        (lambda r: r["strategy"][0].update(kind="bayesopt"), r"unknown strategy 'bayesopt'"),
        (
            lambda r: r["strategy"][0]["params"].update(populaton_size=5),
            r"\[strategy.0.params.populaton_size\] is not a known key",
        ),
        (
            lambda r: r["strategy"][0]["params"].update(population_size="10"),
            r"\[strategy.0.params.population_size\] must be an integer",
        ),
        (
            lambda r: r["search"].update(signal="ori-test/accuracy"),
            r"\[search.signal\] names the test split 'ori-test'",
        ),
        (
            lambda r: r["search"].update(visible={"peek": "cifar10/hp200/x-test/accuracy"}),
            r"\[search.visible.peek\] names the test split 'x-test'",
        ),
        (lambda r: r["search"].update(cost="wallclock"), r"\[search.cost\] must be one of"),
        (lambda r: r["experiment"].update(name="a/b?"), r"\[experiment.name\] must be 1-64"),
        (lambda r: r["report"]["target"][0].update(label="x" * 65), r"\[report.target.0.label\]"),
        (lambda r: r["strategy"][1].update(name="REA"), r"\[strategy.1.name\].*used twice"),
        (lambda r: r["runs"].update(seeds=[1, 1]), "lists a seed twice"),
        (lambda r: r["published"].update(GA={}), r"\[published.GA\] names no strategy"),
        (lambda r: r["table"].update(sha256="abc"), r"\[table.sha256\] must be 64 lowercase hex"),
        (lambda r: r["report"].update(anytime="C10 val"), "must name a sealed metric"),
        (
            lambda r: r["report"]["target"][0].update(metric="cifar10/hp200/x-valid"),
            "expected 'dataset/schedule/split/metric'",
        ),
    ],
)
def test_bad_specs_fail_with_one_line_naming_the_field(edit, message):
    with pytest.raises(SpecError, match=message) as caught:
        parse_spec(mutate(edit), TABLE5)
    text = str(caught.value)
    assert "\n" not in text and str(TABLE5) in text


def test_unreadable_or_invalid_toml_is_reported_with_the_file(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[experiment\nname = 1")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(broken)


def test_overrides_replace_seeds_strategies_and_budget_and_are_pinned():
    plain = load_spec(TABLE5)
    spec = load_spec(
        TABLE5,
        {"seeds": range(3, 8), "strategies": ["RS", "REA"], "budget": {"seconds": 6000}},
    )
    assert spec.seeds == (3, 4, 5, 6, 7)
    assert [s.name for s in spec.strategies] == ["REA", "RS"]  # spec order
    assert spec.budget.seconds == 6000
    assert set(spec.published) == {"REA", "RS", "optimal"}
    assert spec.resolved["overrides"] == {
        "seeds": {"start": 3, "count": 5},
        "strategies": ["RS", "REA"],
        "budget": {"seconds": 6000},
    }
    assert spec.spec_hash != plain.spec_hash and plain.resolved["overrides"] == {}
    swapped = load_spec(TABLE5, {"budget": {"seconds": None, "evaluations": 50}})
    assert swapped.budget.seconds is None and swapped.budget.evaluations == 50


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"strategies": ["GA"]}, r"\[overrides.strategies\] names no strategy of the spec \(GA\)"),
        ({"seeds": [1, 1]}, "lists a seed twice"),
        ({"budget": {"seconds": -5}}, r"^\[overrides.budget.seconds\] must be > 0"),
        ({"budget": {"minutes": 5}}, r"^\[overrides.budget.minutes\] is not a known key"),
        ({"budget": {"seconds": None}}, r"^\[overrides.budget\] sets no limit"),
        ({"seeds": {"start": 0, "count": 0}}, r"^\[overrides.seeds.count\] must be >= 1"),
        ({"workers": 3}, r"\[overrides.workers\] is not an override"),
    ],
)
def test_bad_overrides_fail_naming_the_field(overrides, message):
    with pytest.raises(SpecError, match=message):
        load_spec(TABLE5, overrides)


def test_two_part_metric_names_mean_the_search_dataset_and_schedule():
    raw = table5()
    raw["search"]["sealed"]["t"] = "x-valid/accuracy"
    spec = parse_spec(raw, TABLE5)
    assert str(spec.search.sealed["t"]) == "cifar10-valid/hp12/x-valid/accuracy"


def test_a_strategy_without_its_own_overrun_rule_leaves_the_spec_hash_unchanged():
    raw = table5()
    raw["strategy"][2].pop("overrun")
    plain = parse_spec(raw, TABLE5)
    assert plain.strategies[2].overrun is None
    assert "overrun" not in plain.resolved["strategies"][2]
    raw["strategy"][2]["overrun"] = "discard"  # the same rule, said explicitly
    explicit = parse_spec(raw, TABLE5)
    assert explicit.resolved["strategies"][2]["overrun"] == "discard"
    assert explicit.spec_hash != plain.spec_hash
    assert explicit.strategies[2].budget(explicit.budget) == plain.budget


def test_an_evaluation_budget_needs_no_overrun_rule_and_records_the_default():
    raw = table5()
    raw["budget"] = {"evaluations": 100}
    spec = parse_spec(raw, TABLE5)
    assert spec.budget.overrun == "discard"
    assert spec.resolved["budget"]["overrun"] == "discard"  # recorded, and in the hash
    raw["budget"]["overrun"] = "discard"
    assert parse_spec(raw, TABLE5).spec_hash == spec.spec_hash
    raw["budget"] = {"seconds": 100, "evaluations": 100}
    with pytest.raises(SpecError, match=r"\[budget.overrun\] is required with a seconds budget"):
        parse_spec(raw, TABLE5)
    raw["budget"] = {"evaluations": 100}
    with pytest.raises(SpecError, match=r"^\[overrides.budget.overrun\] is required with a sec"):
        parse_spec(raw, TABLE5, {"budget": {"seconds": 50}})


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r["report"].update(target=[]), r"\[report.target\] lists no targets"),
        (lambda r: r["report"].pop("target"), r"\[report.target\] is required"),
        (lambda r: r.pop("report"), r"\[report\] section is required: the report needs"),
    ],
)
def test_a_spec_that_reports_nothing_is_refused_when_it_is_read(edit, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(mutate(edit), TABLE5)


def test_problems_in_several_strategies_and_targets_are_listed_together():
    def edit(raw: dict) -> None:
        raw["strategy"][0]["kind"] = "bayesopt"
        raw["strategy"][1]["params"] = {"speed": 3}
        raw["report"]["target"][2]["metric"] = "nonsense"

    with pytest.raises(SpecError) as caught:
        parse_spec(mutate(edit), TABLE5)
    lines = str(caught.value).splitlines()
    assert lines[0].endswith("3 problems; fix each, then run again:")
    assert "[strategy.0.kind] unknown strategy 'bayesopt'" in lines[1]
    assert "[strategy.1.params.speed] is not a known key" in lines[2]
    assert "[report.target.2.metric] expected 'dataset/schedule/split/metric'" in lines[3]


def test_every_published_row_that_names_nothing_is_listed_at_once():
    def edit(raw: dict) -> None:
        raw["published"]["GA"] = {"C10 val": [90.0, 1.0]}
        raw["published"]["REA"]["C10 value"] = [90.0, 1.0]
        raw["published"]["RS"]["C10 val"] = [90.0, 1.0, 1]

    with pytest.raises(SpecError) as caught:
        parse_spec(mutate(edit), TABLE5)
    fields = [line.split("[")[1].split("]")[0] for line in str(caught.value).splitlines()[1:]]
    assert fields == ["published.REA.C10 value", "published.RS.C10 val", "published.GA"]


def published_specs() -> list[Path]:
    return sorted((TABLE5.parents[1]).glob("*/*.toml"))


@pytest.mark.parametrize("path", published_specs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_published_spec_keeps_the_hash_its_committed_report_was_made_from(
    path, request, monkeypatch
):
    """Published records and result folders are found by spec hash: a change to what a
    spec resolves to must leave every spec that sets nothing new with its old hash."""
    from harness.report.folders import published_spec_hashes

    text = path.read_text()
    if "[experiment]" not in text:
        pytest.skip("not an experiment spec")
    if '"local_search"' in text:  # the example plugin, installed as its users install it
        monkeypatch.syspath_prepend(str(request.getfixturevalue("plugin_site")))
    spec = load_spec(path)
    published = published_spec_hashes(spec.results)
    if published is None:
        pytest.skip(f"{spec.results} holds no committed report")
    assert published[spec.name] == spec.spec_hash[:16]


def test_a_minimal_spec_takes_natural_defaults_for_results_and_strategy_names(tmp_path):
    raw = table5()
    raw["experiment"].pop("results")
    raw["strategy"] = [{"kind": "random_search"}, {"kind": "regularized_evolution"}]
    raw["published"] = {}
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "specs").mkdir()
    spec = parse_spec(raw, tmp_path / "specs" / "mine.toml")
    assert spec.results == tmp_path / "results" / "nb201-table5"
    assert [s.name for s in spec.strategies] == ["random_search", "regularized_evolution"]
    assert spec.resolved["strategies"][0]["name"] == "random_search"  # recorded
    raw["strategy"] = [{"kind": "harness.strategies.random_search:RandomSearch"}]
    with pytest.raises(SpecError, match=r"\[strategy.0.name\] is required where the kind"):
        parse_spec(raw, TABLE5)


@pytest.mark.parametrize(
    "path, command",
    [("zero-cost/digits.toml", "harness estimate"), ("digits/tabulate.toml", "harness tabulate")],
)
def test_another_kind_of_spec_names_the_command_that_reads_it(path, command):
    with pytest.raises(
        SpecError, match=f"it is a spec for `{command} SPEC`, not an experiment spec"
    ):
        load_spec(TABLE5.parents[1] / path)


def test_a_tabulate_spec_lists_the_problems_of_both_sections_at_once(tmp_path):
    from harness.tabulate import load_tabulate_spec

    raw = tomllib.loads((TABLE5.parents[1] / "digits" / "tabulate.toml").read_text())
    raw["tabulate"]["workers"] = 0
    raw["protocol"]["epochs"] = 0
    raw["protocol"]["momentum"] = 1.5
    path = tmp_path / "tabulate.toml"
    path.write_text(dump_toml(raw))
    with pytest.raises(SpecError) as caught:
        load_tabulate_spec(path)
    fields = [line.split("[")[1].split("]")[0] for line in str(caught.value).splitlines()[1:]]
    assert fields == ["tabulate.workers", "protocol.epochs", "protocol.momentum"]
