# Two commands: `make run` and `make test`. Everything installs into .venv
# (or $(VENV) when set: CI caches one outside the clone keyed by requirements.txt).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-16)

.PHONY: run test install lint bench clean

$(STAMP): requirements.txt
	@$(PYTHON) -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version" || { echo "Python 3.11 is required (found $(PYTHON))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) manage.py runlab

# The multi-machine tests (tests/scaleout) run in a pytest process of their own: they repoint
# this process's Celery app and storage at their own broker and bucket, as separate machines are.
test: install
	$(PY) -m pytest --ignore=tests/scaleout $(PYTEST_ARGS)
	$(PY) -m pytest tests/scaleout $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf var test-artifacts
