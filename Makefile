# Two commands for a fresh machine (see README):
#   make pong   set up .venv, then a short real DreamerV3 Atari 100k Pong run with its verdict
#   make test   set up .venv, then the test suite (what CI runs), in TEST_WORKERS processes
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# 3 also hides the cuInit error TensorFlow logs on a CPU machine (dreamer_tf/quiet.py)
export TF_CPP_MIN_LOG_LEVEL ?= 3
# pytest-xdist workers for `make test`: the suite is mostly single-threaded start-up (imports,
# tracing, env steps, renders), so two on 2 cores take 13 min instead of 22 (README,
# "Two commands on a fresh machine").
TEST_WORKERS ?= 2

.PHONY: setup system-deps pong test test-slow benchmark

GL_PACKAGES := libegl1 libgl1 libosmesa6

setup: $(STAMP)

# Headless MuJoCo rendering for DeepMind Control needs EGL/OSMesa from Debian (root only).
system-deps:
	@if dpkg -s $(GL_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(GL_PACKAGES); \
	else echo "note: install $(GL_PACKAGES) for DMC rendering (needs root); DMC tests will skip"; fi

$(STAMP): setup.cfg pyproject.toml
	$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,dmc]'
	touch $(STAMP)

pong: $(STAMP)
	$(PY) reproduce/atari100k.py --game pong --steps 1200 --size size1m --logdir runs/pong_demo \
	  --run.eval_eps=2

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

benchmark: $(STAMP)
	$(PY) benchmarks/train_step.py --preset xs
