# The two commands a learner needs: `make lab` and `make test`. Everything else is for authors and CI.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.8
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
LAB_SOLUTIONS := $(sort $(wildcard labs/*/solution*.ipynb))
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: lab test lint unit nbval notebooks notebook timing-report lock readme clean-venv reset

# Create .venv from the lock when it is missing or the lock changed.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

lab: $(STAMP)
	$(BIN)/python tools/lab.py

test: $(STAMP)
	@rm -f build/timings-*.json
	$(MAKE) --no-print-directory lint unit nbval
	@$(BIN)/python tools/timing_report.py build

lint: $(STAMP)
	$(BIN)/ruff check .

unit: $(STAMP)
	$(BIN)/pytest tests -q

nbval: $(STAMP)
	CI=true TQDM_DISABLE=1 $(BIN)/pytest -q $(NBVAL) $(NOTEBOOKS) $(LAB_SOLUTIONS)

# Authors: execute notebooks in place so their stored outputs are fresh, then commit them.
notebooks: $(STAMP)
	@for nb in $(NOTEBOOKS); do $(MAKE) --no-print-directory notebook NB=$$nb || exit 1; done

notebook: $(STAMP)
	CI=true TQDM_DISABLE=1 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=300 --ExecutePreprocessor.kernel_name=python3 $(NB)

timing-report: $(STAMP)
	@$(BIN)/python tools/timing_report.py build

# Put every notebook's resources back to nothing on the backend the environment selects (shared lab server,
# LocalStack classroom). A private in-kernel emulator needs no reset: restarting the kernel does it.
reset: $(STAMP)
	$(BIN)/python tools/reset.py

# Maintainers: re-resolve requirements.in into the exact pins of requirements.lock, then run `make test`.
lock: $(STAMP)
	$(BIN)/uv pip compile requirements.in --python-version 3.11 --no-header -o requirements.lock
	$(BIN)/python tools/envfile.py > environment.yml

readme: $(STAMP)
	$(BIN)/python tools/readme.py

clean-venv:
	rm -rf $(VENV)
