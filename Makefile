# mobilenet_mm: `make demo` runs the main job, `make test` the test suite.
# Both set the environment up first (idempotent; see tools/setup_env.sh).
VENV   := .venv
PYTHON := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test demo clean-venv

setup:
	@bash tools/setup_env.sh

test: setup
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

demo: setup
	$(PYTHON) tools/demo.py

clean-venv:
	rm -rf $(VENV)
