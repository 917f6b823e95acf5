# The two set-up commands: `make demo` (the main job) and `make test` (the tests).
# Each creates the local virtual environment .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: demo table5 test test-slow lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-compile --disable-pip-version-check -c constraints.txt -e '.[test,nbgraph]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/harness run benchmarks/digits/compare.toml

table5: $(STAMP)
	$(BIN)/harness run benchmarks/nb201/table5.toml

test: $(STAMP)
	$(BIN)/pytest -q

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check harness tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/speed_table5.py
	$(BIN)/python benchmarks/speed_training.py

clean:
	rm -rf $(VENV) build mlflow.db mlartifacts
