# The two commands a learner needs: `make lab` and `make test`. Everything else is for authors and CI.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.8
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# Both cores: pytest-xdist, a notebook's cells kept on one worker (loadscope); each kernel starts its own emulator.
PARALLEL := -n 2 --dist loadscope
# Unit tests spread file by file: a file's module fixtures (the browser test's workbook server, the classroom's hub,
# the site build) start once, on one worker. (loadgroup would say it per test with xdist_group marks, but with
# pytest 9.2 and pytest-xdist 3.8 it groups nothing.)
PARALLEL_UNIT := -n 2 --dist loadfile
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# Every lab twice: the starter (its check cells tagged raises-exception, the error they must raise stored) and the
# solution (its checks pass). nbval fails a starter that passes by accident and a check that fails for another reason.
LAB_STARTERS := $(sort $(wildcard labs/*/starter.ipynb))
LAB_SOLUTIONS := $(sort $(wildcard labs/*/solution.ipynb))
LABS := $(LAB_STARTERS) $(LAB_SOLUTIONS)
export PYTHONDONTWRITEBYTECODE := 1

LOCALSTACK := tools/localstack/localstack.sh
LOCALSTACK_PORT ?= 4566
LOCALSTACK_ENV := WORKBOOK_BACKEND=localstack AWS_ENDPOINT_URL=http://127.0.0.1:$(LOCALSTACK_PORT)
# The tests that are about the backend itself; the rest of tests/ is backend-neutral and runs on the embedded one.
LOCALSTACK_TESTS := tests/aws

# A Debian package installed when its command is missing and this is root (CI is); elsewhere, what to run.
# $(call apt_need,COMMAND,PACKAGE,WHAT FOR)
apt_need = command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(2) from Debian's packages $(3)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else \
	    echo "no $(1) $(3) (Debian: sudo apt-get install $(2))"; \
	  fi; }

.PHONY: browser-deps site site-deps site-serve lab labs test test-embedded test-localstack lint unit nbval notebooks notebook timing-report lock readme \
	clean-venv reset localstack-install localstack-start localstack-stop localstack-status progress \
	classroom classroom-install classroom-benchmark classroom-config

# Create .venv from the lock when it is missing or the lock changed.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

lab: $(STAMP)
	$(BIN)/python tools/workbook.py

# "Where am I": the furthest chapter opened and every lab's state, from this copy's progress records.
progress: $(STAMP)
	@$(BIN)/python -m helpers.progress

# Instructors: a JupyterLab per learner on JupyterHub, a live progress board; Ctrl-C stops everything.
# make classroom ARGS="--prespawn 10"    (every option: .venv/bin/python -m tools.classroom start --help)
CLASSROOM := $(BIN)/python -m tools.classroom
classroom: $(STAMP)
	$(CLASSROOM) start $(ARGS)

# The hub's proxy (configurable-http-proxy, pinned in tools/classroom/package-lock.json) and, as root, the Python
# runtime learners' system users run. Without npm (and outside CI) the classroom tests are skipped with the reason.
classroom-install: $(STAMP)
	@if command -v npm >/dev/null 2>&1 || [ -n "$$CI" ]; then $(CLASSROOM) install; \
	else echo "no npm: the classroom tests will be skipped (install Node.js 20+ and npm)"; fi

# N learners (default 5) arrive at once and run a lab check together: spawn time, memory, check latency.
classroom-benchmark: $(STAMP) classroom-install
	$(CLASSROOM) benchmark -n $(or $(N),5)

# The compose profile, the Kubernetes values and the README's capacity table, from tools/classroom/settings.py.
classroom-config: $(STAMP)
	$(CLASSROOM) generate

# Both suites: the embedded one, then LocalStack in host mode (skipped with a reason on a machine that cannot run it,
# never under CI). One timing report for both at the end.
test: $(STAMP) browser-deps site-deps
	@rm -f build/timings-*.json build/site-build.json && mkdir -p build && echo $${WORKBOOK_TEST_STARTED:-$$(date +%s)} > build/make-test.started
	$(MAKE) --no-print-directory test-embedded
	@if [ -n "$$CI" ] || bash $(LOCALSTACK) check >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory test-localstack; \
	else \
	  echo "LocalStack suite skipped: $$(bash $(LOCALSTACK) check 2>&1 | tail -1)"; \
	fi
	@$(BIN)/python tools/timing_report.py build

test-embedded: lint unit nbval

# The browser test (tests/test_browser.py) drives Debian's Chromium through Playwright for Python. Installed here when
# missing and this is root (CI is); elsewhere the test is skipped with the reason.
browser-deps:
	@$(call apt_need,chromium,chromium,for the browser test)

# The course as a static website in build/site/ from the stored notebooks (tools/site/build_site.py): offline, warnings
# as errors, every internal link checked. INSTRUCTOR=1 builds build/site-instructor/ with the labs' solutions instead.
site: $(STAMP) site-deps
	$(BIN)/python tools/site/build_site.py $(if $(INSTRUCTOR),--instructor)

# Read the built site at http://127.0.0.1:$(SITE_PORT)/ (its Mermaid is an ES module: browsers refuse those from file://).
SITE_PORT ?= 8000
site-serve:
	@test -f build/site/index.html || { echo "no site yet: run \`make site\` first"; exit 1; }
	$(PYTHON) -m http.server --bind 127.0.0.1 --directory build/site $(SITE_PORT)

# npm installs the site's pinned scripts (tools/site/package-lock.json) once; installed here when missing and root.
site-deps:
	@$(call apt_need,npm,npm,for the course site's scripts)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP) classroom-install
	$(BIN)/pytest tests -q $(PARALLEL_UNIT)

nbval: $(STAMP)
	CI=true TQDM_DISABLE=1 $(BIN)/python -m pytest -q -p tests.workbook_server -p tests.rerun $(PARALLEL) $(NBVAL) $(NOTEBOOKS) $(LABS)

# The course against LocalStack 4.14 in host mode; LocalStack is always stopped and the exit code kept.
test-localstack: $(STAMP) localstack-install
	@trap 'bash $(LOCALSTACK) stop' EXIT; \
	LOCALSTACK_PORT=$(LOCALSTACK_PORT) bash $(LOCALSTACK) start && \
	$(LOCALSTACK_ENV) $(BIN)/pytest -q $(LOCALSTACK_TESTS) && \
	$(LOCALSTACK_ENV) CI=true TQDM_DISABLE=1 $(BIN)/pytest -q $(NBVAL) $(NOTEBOOKS) $(LABS)

localstack-install:
	bash $(LOCALSTACK) install

localstack-start: localstack-install
	LOCALSTACK_PORT=$(LOCALSTACK_PORT) bash $(LOCALSTACK) start

localstack-stop:
	bash $(LOCALSTACK) stop

localstack-status:
	bash $(LOCALSTACK) status

# Authors: execute notebooks in place so their stored outputs are fresh (no per-cell timestamps), then commit them.
notebooks: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py $(NOTEBOOKS)
	$(BIN)/python tools/strip_timings.py $(NOTEBOOKS)

# One notebook (NB=notebooks/NN_x.ipynb), run the way `make lab` runs it (one shared moto server).
notebook: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py $(NB)
	$(BIN)/python tools/strip_timings.py $(NB)

# Authors: regenerate every lab's starter and solution from its lab.md and store their outputs.
labs: $(STAMP)
	$(BIN)/python tools/labgen.py --execute

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
