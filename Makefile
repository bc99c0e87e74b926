# Entry points of the book. Everything runs inside .venv, installed from the lock.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= _build/html
TEMPLATE ?= cohort_template.csv
# The book's parameters, passed only when set: their defaults are written once, in
# src/bridge_hsct/book/parameters.py (`python -m bridge_hsct build --help` lists them).
DATA      ?=
GROUP_COL ?=
GROUP_ORDER ?=
LANDMARK  ?=
ALPHA     ?=
CUTOFF    ?=
MIN_CELL  ?=
GROUP_LABEL ?=
TITLE     ?=
COHORT_PARAMETERS = $(if $(DATA),--data "$(DATA)") $(if $(GROUP_COL),--group-col "$(GROUP_COL)") \
	$(if $(GROUP_ORDER),--group-order "$(GROUP_ORDER)") \
	$(if $(LANDMARK),--landmark-months $(LANDMARK)) $(if $(CUTOFF),--cutoff-date $(CUTOFF))
PARAMETERS = $(COHORT_PARAMETERS) $(if $(ALPHA),--alpha $(ALPHA)) \
	$(if $(MIN_CELL),--min-cell-count $(MIN_CELL)) \
	$(if $(GROUP_LABEL),--group-label "$(GROUP_LABEL)") $(if $(TITLE),--title "$(TITLE)") \
	$(if $(BUNDLES),--bundles $(BUNDLES))

.PHONY: install book pdf bundle pool validate template dictionary cohort ensemble test lint lock clean bench

$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

install: $(BIN)/.installed

book: install  ## build the website (OUT=..., DATA=..., GROUP_COL=..., GROUP_ORDER="ref,other", LANDMARK=24, ALPHA=0.05, CUTOFF=YYYY-MM-DD, MIN_CELL=k, GROUP_LABEL=noun, TITLE=...); or the pooled book from centres' bundles: BUNDLES="a.zip b.zip c.zip" [APPROXIMATE=1 for week/month grids]
	$(BIN)/python -m bridge_hsct build --out "$(OUT)" $(PARAMETERS) $(if $(APPROXIMATE),--approximate)

pdf: install  ## the website and the whole book as one PDF, OUT/supplement.pdf (same parameters as book)
	$(BIN)/python -m bridge_hsct build --pdf --out "$(OUT)" $(PARAMETERS)

TIME_UNIT ?= days
BUNDLE    ?=
BUNDLES   ?=
APPROXIMATE ?=
bundle: install  ## a centre's aggregate-only bundle: BUNDLE=ours.bundle.zip DATA=ours.csv [GROUP_COL, TIME_UNIT=days|weeks|months, MIN_CELL]
	@test -n "$(BUNDLE)" -a -n "$(DATA)" || { echo "error: give DATA=your.csv BUNDLE=your.bundle.zip" >&2; exit 2; }
	$(BIN)/python -m bridge_hsct bundle --data "$(DATA)" --out "$(BUNDLE)" \
		$(if $(GROUP_COL),--group-col "$(GROUP_COL)") --time-unit $(TIME_UNIT) \
		$(if $(MIN_CELL),--min-cell-count $(MIN_CELL))

pool: install  ## pooled survival, log-rank and Gray's test of centres' bundles: BUNDLES="a.zip b.zip"
	@test -n "$(BUNDLES)" || { echo "error: give BUNDLES=\"a.zip b.zip\"" >&2; exit 2; }
	$(BIN)/python -m bridge_hsct pool $(BUNDLES)

validate: install  ## list every problem of DATA (with GROUP_COL, GROUP_ORDER, CUTOFF, LANDMARK)
	$(BIN)/python -m bridge_hsct validate $(COHORT_PARAMETERS)

template: install  ## blank cohort CSV with every column of the data dictionary
	$(BIN)/python -m bridge_hsct template --out "$(TEMPLATE)"

cohort: install  ## regenerate the synthetic reference cohort and its calibration report
	$(BIN)/python -m bridge_hsct.paper.synthetic

ensemble: install  ## 20 more reconstructions: what the published numbers determine (data/synthetic_ensemble.csv)
	$(BIN)/python -m bridge_hsct.paper.synthetic.ensemble

lint: install  ## ruff on the package, tests, benchmarks and the notebooks' code cells
	$(BIN)/ruff check src tests benchmarks
	@# each chapter as its paired notebook: ruff reads notebooks (E402 per cell, not per file)
	@status=0; for notebook in notebooks/*.md notebooks/pooled/*.md; do \
		$(BIN)/jupytext --quiet --to ipynb --output - "$$notebook" \
		| $(BIN)/ruff check --quiet --stdin-filename "$${notebook%.md}.ipynb" - || status=1; \
	done; exit $$status

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
