# The two set-up commands: `make demo` (the main job) and `make test` (the tests).
# Each creates the local virtual environment .venv on first use.
# `make nbgraph` also installs the example plugin strategy (examples/local-search).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: demo table5 nbgraph compare zero-cost weight-sharing predictors test test-slow lint docs bench clean

# Byte-compile, once at install, every module harness's commands import: pip installs with
# --no-compile (a faster set-up) and PYTHONDONTWRITEBYTECODE keeps Python from writing
# them later, so without this every call would compile MLflow and pandas from source.
define PRECOMPILE
import compileall, os, sys, tempfile
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
import harness.cli, harness.api, harness.record, harness.report, harness.tabulate
import harness.evaluators.live, harness.report.write, matplotlib.pyplot
import harness.estimation, harness.estimators.zero_cost, harness.report.estimates
import scikit_posthocs, statsmodels.stats.multitest
import harness.strategies.bananas, harness.strategies.bohb, harness.strategies.tpe, optuna
from mlflow.tracking import MlflowClient
import mlflow.store.db_migrations as migrations
with tempfile.TemporaryDirectory() as folder:  # a sqlite store imports its SQL layers
    MlflowClient(f"sqlite:///{folder}/mlflow.db").search_experiments()
files = [getattr(m, "__file__", None) or "" for m in list(sys.modules.values())]
ok = all(compileall.compile_file(f, quiet=2) for f in files if f.endswith(".py"))
sys.exit(not (ok and compileall.compile_dir(os.path.dirname(migrations.__file__), quiet=2)))
endef
export PRECOMPILE

PLUGIN := $(VENV)/.local-search

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile --disable-pip-version-check -c constraints.txt -e '.[test,nbgraph,dask,optuna,predictors]'
	$(BIN)/python -c "$$PRECOMPILE"
	touch $(STAMP)

# the example plugin strategy, for the comparisons that run it (the tests install their own copy)
$(PLUGIN): $(STAMP) examples/local-search/pyproject.toml
	$(BIN)/pip install --quiet --no-compile --disable-pip-version-check --no-deps --no-build-isolation -e examples/local-search
	touch $(PLUGIN)

demo: $(STAMP)
	$(BIN)/harness run benchmarks/digits/compare.toml

table5: $(STAMP)
	$(BIN)/harness run benchmarks/nb201/table5.toml

nbgraph: $(PLUGIN)
	for spec in benchmarks/nbgraph/*.toml; do $(BIN)/harness run $$spec || exit 1; done

# every strategy on the shipped table (1 and 4 workers), NB201 and NAS-Bench-Graph
compare: $(PLUGIN)
	for spec in benchmarks/compare/*.toml; do $(BIN)/harness run $$spec || exit 1; done
	$(BIN)/harness report benchmarks/compare/*.toml --out results/compare

# zero-cost proxies of every NB201 cell: all ten on digits, the data-free ones against NB201
# (reports from the shipped estimate files; remove a file to score it again)
zero-cost: $(STAMP)
	$(BIN)/harness estimate benchmarks/zero-cost/digits.toml
	$(BIN)/harness estimate benchmarks/zero-cost/nb201-datafree.toml

# NB201's six weight-sharing searches on the shipped table's protocol (hours on a CPU:
# benchmarks/speed_weight_sharing.py), and the supernet as an estimator of every cell
weight-sharing: $(STAMP)
	$(BIN)/harness run benchmarks/weight-sharing/digits.toml
	$(BIN)/harness estimate benchmarks/weight-sharing/supernet-digits.toml

# NASLib's predictor protocol on digits and NB201, the learning-curve rules on NB201's
# extract E (cells 0-199), and the proxy-guided searches
predictors: $(STAMP)
	$(BIN)/harness predict benchmarks/predictors/digits.toml
	$(BIN)/harness predict benchmarks/predictors/nb201.toml
	$(BIN)/harness predict benchmarks/predictors/nb201-curves.toml
	$(BIN)/harness run benchmarks/proxy-search/digits.toml
	$(BIN)/harness run benchmarks/proxy-search/nb201.toml

test: $(STAMP)
	$(BIN)/pytest -q

test-slow: $(PLUGIN)
	$(BIN)/pytest -q -m slow || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check harness tests benchmarks examples

# docs/specs.md, the spec reference, from the Field declarations (a test checks it is current)
docs: $(STAMP)
	$(BIN)/python -m harness.specdoc

bench: $(STAMP)
	$(BIN)/python benchmarks/speed_table5.py
	$(BIN)/python benchmarks/speed_training.py
	$(BIN)/python benchmarks/speed_tabulate.py
	$(BIN)/python benchmarks/speed_strategies.py
	$(BIN)/python benchmarks/speed_report.py
	$(BIN)/python benchmarks/speed_weight_sharing.py
	$(BIN)/python benchmarks/speed_estimate.py
	$(BIN)/python benchmarks/speed_predictors.py

clean:
	rm -rf $(VENV) build mlflow.db mlartifacts
