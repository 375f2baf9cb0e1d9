"""The test suite, grouped by area: models, datasets, engine, deploy, tools.
Shared helpers: tests/conftest.py."""
