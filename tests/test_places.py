"""Where results and records go: a published folder is written only by its own spec as
it is, and one store per project, whatever the working folder (harness.places)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, assert_clean_failure, folder_bytes, harness_cli, needs_nb201

import harness
from harness.places import project_root, resume_root, store_uri
from harness.report.folders import published_spec_hashes, results_folder
from harness.report.write import OVERHEAD
from harness.spec import load_spec

DIGITS_SPEC = REPO / "benchmarks" / "digits" / "compare.toml"
PUBLISHED = REPO / "results" / "digits-compare"


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A copy of the repository's digits spec and its published folder in a project of
    its own (a pyproject.toml marks the root), the table read where it lies, no
    MLFLOW_TRACKING_URI, and the working folder outside the project."""
    root = tmp_path / "project"
    (root / "benchmarks" / "digits").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    table = REPO / "tabular" / "nb201-digits.h5"
    text = DIGITS_SPEC.read_text().replace('"../../tabular/nb201-digits.h5"', f'"{table}"')
    assert str(table) in text
    (root / "benchmarks" / "digits" / "compare.toml").write_text(text)
    shutil.copytree(PUBLISHED, root / "results" / "digits-compare")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return root


def test_the_readme_api_example_leaves_the_published_folder_untouched(project):
    spec = project / "benchmarks" / "digits" / "compare.toml"
    published = project / "results" / "digits-compare"
    before = tree_bytes(published)
    # the spec as it is would write its own folder: the report there was made from it
    assert results_folder(published, "digits-compare", load_spec(spec).spec_hash, {}) == (
        published,
        [],
    )
    done = harness.run(spec, seeds=range(20), strategies=["REA", "RS"], budget={"seconds": 30})
    assert tree_bytes(published) == before
    folder = project / "results" / "digits-compare+seeds-0-19+strategies-REA-RS+budget-seconds-30"
    assert done.files[0] == folder / "report.md"
    assert (folder / "table.md").is_file()
    # recorded in the project's store, not the working folder's
    assert done.store == f"sqlite:///{project / 'mlflow.db'}"
    assert (project / "mlflow.db").is_file()
    assert sorted(p.name for p in Path.cwd().iterdir()) == []
    assert not (project / ".harness" / "resume").exists() or not any(
        (project / ".harness" / "resume").iterdir()
    )


def test_results_folders_are_named_by_what_differs(tmp_path):
    base = tmp_path / "results" / "exp"
    hash_ = "ab" * 32
    assert results_folder(base, "exp", hash_, {}) == (base, [])  # nothing published yet
    assert results_folder(base, "exp", hash_, {}, "live")[0].name == "exp+live"
    overrides = {
        "seeds": [7, 3, 4, 5, 9],
        "strategies": ["REA", "my method"],
        "budget": {"evaluations": 50, "seconds": None, "overrun": "keep"},
    }
    folder, reasons = results_folder(base, "exp", hash_, overrides, "live")
    assert folder.name == (
        "exp+seeds-7_3-5_9+strategies-REA-my_method"
        "+budget-evaluations-50-seconds-none-overrun-keep+live"
    )
    assert reasons == ["overrides --seeds, --strategies, --budget", "the live evaluator"]
    assert results_folder(base, "exp", hash_, {"seeds": {"start": 10, "count": 5}})[0].name == (
        "exp+seeds-10-14"
    )
    many = {"seeds": list(range(0, 400, 2))}
    assert results_folder(base, "exp", hash_, many)[0].name == "exp+overrides-abababababab"


def test_a_folder_holding_another_specs_report_is_not_replaced(tmp_path):
    base = tmp_path / "exp"
    base.mkdir()
    (base / "report.md").write_text(
        f"# t\n\n| benchmark | spec sha256 | table |\n|---|---|---|\n| exp | `{'0' * 16}` | x |\n"
    )
    assert published_spec_hashes(base) == {"exp": "0" * 16}
    assert results_folder(base, "exp", "0" * 64, {}) == (base, [])
    folder, reasons = results_folder(base, "exp", "1" * 64, {})
    assert folder.name == "exp+spec-111111111111"
    assert "differs from the one" in reasons[0]
    (base / "report.md").write_text("# a joint report of other experiments\n")
    assert results_folder(base, "exp", "0" * 64, {})[0].name == "exp+spec-000000000000"
    # an overrides folder another spec's run made is kept too
    seeds = {"seeds": [1, 2]}
    (tmp_path / "exp+seeds-1-2").mkdir()
    (tmp_path / "exp+seeds-1-2" / "report.md").write_text(f"| exp | `{'2' * 16}` | x |\n")
    assert results_folder(base, "exp", "2" * 64, seeds)[0].name == "exp+seeds-1-2"
    assert results_folder(base, "exp", "3" * 64, seeds)[0].name == "exp+seeds-1-2+spec-333333333333"


@needs_nb201()
def test_overrides_and_edited_specs_write_beside_the_published_folder(small_spec, mlflow_store):
    spec = small_spec()
    published = mlflow_store / "results" / "table5"
    first = harness_cli("run", str(spec), cwd=mlflow_store)
    assert first.returncode == 0, first.stderr
    assert "report: results/table5/report.md" in first.stdout
    committed = folder_bytes(published)

    override = harness_cli("run", str(spec), "--seeds", "0-3", cwd=mlflow_store)
    assert override.returncode == 0, override.stderr
    assert "report: results/table5+seeds-0-3/report.md" in override.stdout
    assert "not to the spec's" in override.stderr and "--seeds" in override.stderr
    assert folder_bytes(published) == committed

    # `harness report SPEC` reports the record of the spec as it is, not the newest
    by_spec = harness_cli("report", str(spec), "--out", "by-spec", cwd=mlflow_store)
    assert by_spec.returncode == 0, by_spec.stderr
    assert folder_bytes(mlflow_store / "by-spec") == committed
    assert "overrides none" in by_spec.stderr
    # a name whose records differ is refused, naming the flag that picks one
    assert_clean_failure(
        harness_cli("report", "nb201-table5", "--out", "x", cwd=mlflow_store),
        "2 finished records that differ",
        "--newest",
    )
    newest = harness_cli("report", "nb201-table5", "--newest", cwd=mlflow_store)
    assert newest.returncode == 0, newest.stderr
    assert 'overrides {"seeds": [0, 1, 2, 3]}' in newest.stderr
    assert "report: results/nb201-table5+seeds-0-3/report.md" in newest.stdout

    spec.write_text(spec.read_text().replace('"count" = 12', '"count" = 11'))
    edited = harness_cli("run", str(spec), cwd=mlflow_store)
    assert edited.returncode == 0, edited.stderr
    hash_ = load_spec(spec).spec_hash[:12]
    assert f"report: results/table5+spec-{hash_}/report.md" in edited.stdout
    assert folder_bytes(published) == committed
    # naming the folder replaces it: on purpose, never by accident
    chosen = harness_cli("run", str(spec), "--results", "results/table5", cwd=mlflow_store)
    assert chosen.returncode == 0, chosen.stderr
    assert folder_bytes(published) != committed


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``harness ARGS`` with no MLFLOW_TRACKING_URI: the default store."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_nb201()
def test_one_store_per_project_whatever_the_working_folder(small_spec, tmp_path):
    root = tmp_path / "mine"
    (root / "specs").mkdir(parents=True)
    (root / ".git").mkdir()  # a checkout's root
    spec = root / "specs" / "spec.toml"
    spec.write_text(small_spec().read_text())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store = f"sqlite:///{root / 'mlflow.db'}"

    done = cli("run", str(spec), "--strategies", "REA", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert f"in {store};" in done.stdout
    assert sorted(p.name for p in elsewhere.iterdir()) == []
    assert (root / "mlflow.db").is_file() and (root / "specs" / "results").is_dir()
    inside = cli("run", "spec.toml", "--strategies", "RS", cwd=root / "specs")
    assert inside.returncode == 0, inside.stderr
    assert f"in {store};" in inside.stdout
    assert not (root / "specs" / "mlflow.db").exists()

    listed = cli("ls", cwd=root / "specs")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0] == f"MLflow store: {store}"
    assert listed.stdout.count("nb201-table5") == 2
    assert_clean_failure(cli("ls", cwd=elsewhere), f"no MLflow store at {elsewhere}")
    report = cli("report", "nb201-table5", "--newest", cwd=root / "specs")
    assert report.returncode == 0, report.stderr
    assert (root / "results" / "nb201-table5+strategies-RS" / "report.md").is_file()


def test_the_project_root_is_the_nearest_marked_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert project_root(deep) == deep  # no marker: the folder itself
    (tmp_path / "a" / "pyproject.toml").write_text("")
    assert project_root(deep) == tmp_path / "a"
    assert store_uri(deep) == f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}"
    assert resume_root(store_uri(deep)) == tmp_path / "a"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert store_uri(deep) == "http://127.0.0.1:5000"
    assert resume_root("http://127.0.0.1:5000", deep) == tmp_path / "a"


def test_host_dependent_figures_are_not_tracked():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "results"], capture_output=True, text=True
    ).stdout.split()
    assert tracked and not [path for path in tracked if path.endswith(OVERHEAD)]
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "-q", f"results/digits-compare/{OVERHEAD}"]
    )
    assert ignored.returncode == 0
    report = (PUBLISHED / "report.md").read_text()
    assert "package versions (sha256" not in report and " on AMD " not in report


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the probe is


@pytest.mark.parametrize(
    "uri, needle",
    [
        ("sqlite://", "is in memory"),
        ("sqlite:///:memory:", "is in memory"),
        ("FOLDER", "is a folder, not a sqlite file"),
        ("SERVER", "cannot be reached"),
    ],
)
def test_a_store_that_would_lose_records_or_is_unreachable_fails_in_seconds(tmp_path, uri, needle):
    uri = {
        "FOLDER": f"sqlite:///{tmp_path}",
        "SERVER": f"http://127.0.0.1:{closed_port()}",
    }.get(uri, uri)
    started = time.monotonic()
    done = harness_cli("ls", cwd=tmp_path, MLFLOW_TRACKING_URI=uri)
    assert time.monotonic() - started < 60  # MLflow alone retries a server for minutes
    assert_clean_failure(done, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@needs_nb201()
def test_a_run_into_an_in_memory_store_is_refused_before_it_searches(small_spec, mlflow_store):
    spec = small_spec()
    done = harness_cli("run", str(spec), cwd=mlflow_store, MLFLOW_TRACKING_URI="sqlite://")
    assert_clean_failure(done, "sqlite:// is in memory")
    assert sorted(p.name for p in mlflow_store.iterdir()) == ["spec.toml"]


@pytest.mark.slow
def test_the_unmodified_spec_rewrites_its_published_folder_byte_for_byte(project):
    """What `make demo` does, in a copy: every tracked file of the folder stays the same,
    and the host's own figures land only in the ignored file."""
    spec = project / "benchmarks" / "digits" / "compare.toml"
    published = project / "results" / "digits-compare"
    (published / OVERHEAD).unlink(missing_ok=True)  # a fresh clone has none
    before = tree_bytes(published)
    done = harness.run(spec)
    assert done.files[0] == published / "report.md"
    after = tree_bytes(published)
    assert after.pop(OVERHEAD)
    assert after == before
