# Entry points of the book. Everything runs inside .venv, installed from the lock.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= data/synthetic_cohort.csv
OUT    ?= _build/html
GROUP_COL ?= arm
TEMPLATE ?= cohort_template.csv
CUTOFF ?=
MIN_CELL ?= 0
ALPHA    ?= 0.05
LANDMARK ?= 24

.PHONY: install book validate template dictionary cohort test lint lock clean bench

$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

install: $(BIN)/.installed

book: install  ## build the website (DATA=..., OUT=..., GROUP_ORDER="ref other", MIN_CELL=k, ALPHA=0.05, LANDMARK=24)
	$(BIN)/python -m bridge_hsct build --data "$(DATA)" --out "$(OUT)" --group-col "$(GROUP_COL)" \
		$(if $(GROUP_ORDER),--group-order $(GROUP_ORDER)) $(if $(CUTOFF),--cutoff-date $(CUTOFF)) \
		--min-cell-count $(MIN_CELL) --alpha $(ALPHA) --landmark-months $(LANDMARK)

validate: install  ## list every problem of DATA
	$(BIN)/python -m bridge_hsct validate --data "$(DATA)" --group-col "$(GROUP_COL)" \
		$(if $(CUTOFF),--cutoff-date $(CUTOFF))

template: install  ## blank cohort CSV with every column of the data dictionary
	$(BIN)/python -m bridge_hsct template --out "$(TEMPLATE)"

cohort: install  ## regenerate the synthetic reference cohort and its calibration report
	$(BIN)/python -m bridge_hsct.paper.synthetic

lint: install
	$(BIN)/ruff check src tests benchmarks

test: lint  ## lint, unit tests, end-to-end build (browser tests when Chromium is present)
	$(BIN)/pytest

lock:  ## re-resolve the pinned environment from pyproject.toml (needs the network)
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e ".[dev]"
	.lock-venv/bin/pip freeze --all --exclude-editable | sed -e '/^-e /d' -e '/^pip==/d' > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf _build .pytest_cache

bench: install  ## wall time and peak memory of each stage (prints figures)
	$(BIN)/python benchmarks/bench.py
