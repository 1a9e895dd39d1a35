# Two commands: `make demo` and `make test`. Each sets up .venv from nothing when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WHEELS := $(wildcard /opt/wheels)
PIP_FLAGS := $(if $(WHEELS),--find-links $(WHEELS),)
DEMO_DIR ?= demo-output
DEMO_PRODUCTS ?= 40000
# The baselines, an MF model and a walk model: under 2 minutes on 2 cores (BENCHMARKS.md, issue 17); `itemvec
# compare` without --models trains every default model.
DEMO_MODELS ?= popularity,adamic-adar,itemknn,rp3beta,mf-bias,mf-seq

.PHONY: setup browser demo test bench lint clean

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
	$(BIN)/itemvec compare --data $(DEMO_DIR)/data --out $(DEMO_DIR)/report --models $(DEMO_MODELS)
	$(BIN)/itemvec index $(DEMO_DIR)/report/runs/mf-bias
	@echo "Report: $(DEMO_DIR)/report/report.html (and report.md, metrics.json)"
	@echo "Serve it (API and a page that compares the models per product): $(BIN)/itemvec serve $(DEMO_DIR)/report"

# The page's browser test drives Debian's Chromium (never a downloaded browser); installed when missing.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium chromium-driver; }

test: setup browser
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
