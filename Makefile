# The README's two commands are `make demo` and `make test`. Both create .venv on first
# use, so a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo bench docs lint typecheck pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the declared dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The dev dependency group (PEP 735) needs pip >= 25.1, hence the upgrade above.
	$(BIN)/python -m pip install --quiet -e '.[trio,quart,starlette]' --group dev
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

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
