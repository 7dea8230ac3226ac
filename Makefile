# Two commands do everything (see README):
#   make demo   install, then run the whole pipeline on the embedded simulated demo
#   make test   install, then run the test suite (CI runs this plus `make lint`)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: demo test lint install clean-demo

$(BIN)/sxtflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/sxtflow

demo: install
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --cores $(CORES) --report results/report.html
	@echo "demo finished: open results/report.html"

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/ruff format --check src tests workflow/scripts benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

clean-demo:
	rm -rf results logs .snakemake
