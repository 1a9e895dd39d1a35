# Two commands: `make demo` and `make test`. Each sets up .venv from nothing when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WHEELS := $(wildcard /opt/wheels)
PIP_FLAGS := $(if $(WHEELS),--find-links $(WHEELS),)
DEMO_DIR ?= demo-output
DEMO_PRODUCTS ?= 100000

.PHONY: setup demo test bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# PyTorch exactly 2.13.0 (the local CPU wheel); any other version pulls gigabytes.
	$(BIN)/python -m pip install --quiet $(PIP_FLAGS) "torch==2.13.0"
	$(BIN)/python -m pip install --quiet $(PIP_FLAGS) -e ".[dev]"
	touch $(STAMP)

# The catalogue is generated once (itemvec replaces only a catalogue it wrote itself).
$(DEMO_DIR)/catalogue.json.gz: | setup
	$(BIN)/itemvec synth amazon --products $(DEMO_PRODUCTS) --seed 7 --out $@

demo: setup $(DEMO_DIR)/catalogue.json.gz
	$(BIN)/itemvec prepare amazon $(DEMO_DIR)/catalogue.json.gz --out $(DEMO_DIR)/data --seed 7
	$(BIN)/itemvec compare --data $(DEMO_DIR)/data --out $(DEMO_DIR)/report
	@echo "Report: $(DEMO_DIR)/report/report.html (and report.md, metrics.json)"

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m pip install --quiet $(PIP_FLAGS) -e ".[dev,bench]"
	$(BIN)/python benchmarks/bench_parse.py
	$(BIN)/python benchmarks/bench_prepare.py --keep
	$(BIN)/python benchmarks/bench_mf.py --data bench-output/data-420000

clean:
	rm -rf $(VENV) $(DEMO_DIR)
