# Two commands: `make demo` (run every numbered notebook headless on the offline default)
# and `make test` (unit tests + the notebooks under nbval on a small budget).
# Both build, or reuse, the virtual environment in .venv/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROFILE ?= demo
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: demo test install clean

install: $(STAMP)

# torch is pinned here (a local CPU wheel on our machines), not in pyproject.toml: Colab has its own.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[notebooks,test]"
	touch $(STAMP)

demo: $(STAMP)
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; \
	  $(PY) -m kit run $$nb --profile $(PROFILE) || exit 1; \
	done
	@echo "executed notebooks, models and summary.json are in runs/$(PROFILE)/"

# KIT_BUDGET=smoke makes each notebook's parameters cell shrink epochs and data (see the notebooks).
test: $(STAMP)
	KIT_BUDGET=smoke $(PY) -m pytest -q tests notebooks --nbval-lax -p no:cacheprovider

clean:
	rm -rf runs/smoke .pytest_cache
