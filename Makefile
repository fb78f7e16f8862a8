# The README's two commands are `make demo` and `make test`. Both create .venv on first
# use, so a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo bench soak docs lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the declared dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check asignal tests benchmarks examples
	$(BIN)/ruff format --check asignal tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy --strict asignal

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/python -m examples.demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Faults under load at full size (a few minutes); tests/test_faults.py is the bounded one.
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
