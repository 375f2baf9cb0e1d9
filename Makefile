# mobilenet_mm: `make demo` runs the main job, `make test` the test suite.
# Both set the environment up first (idempotent; see tools/setup_env.sh).
VENV   := .venv
PYTHON := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test demo clean-venv

setup:
	@bash tools/setup_env.sh

test: setup
	# One intra-op thread: on small shared machines torch's default thread count
	# makes the tiny training runs of the tests many times slower. Two
	# workers (pytest-xdist), one per core; a test file runs in one worker,
	# the longest files first (tests/conftest.py: SLOWEST_FIRST).
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest tests -n 2 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

demo: setup
	OMP_NUM_THREADS=1 $(PYTHON) tools/demo.py

clean-venv:
	rm -rf $(VENV)
