# Two commands for a fresh machine (see README):
#   make pong   set up .venv, then a short real DreamerV3 Atari 100k Pong run with its verdict
#   make test   set up .venv, then the test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup pong test test-slow benchmark

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

pong: $(STAMP)
	$(PY) reproduce/atari100k.py --game pong --steps 1500 --size xs --logdir runs/pong_demo \
	  --run.eval_eps=2

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

benchmark: $(STAMP)
	$(PY) benchmarks/train_step.py --preset xs
