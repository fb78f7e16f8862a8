# The README's two commands are `make demo` and `make test`. Both create .venv on first
# use, so a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pyright --verifytypes: the least share of the public API, in per cent, whose types a
# checker can rely on.
VERIFYTYPES_MIN ?= 95

.PHONY: test demo bench soak docs lint typecheck verifytypes pytest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the declared dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The dev dependency group (PEP 735) needs pip >= 25.1, hence the upgrade above.
	$(BIN)/python -m pip install --quiet -e '.[trio,quart,starlette]' --group dev
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check asignal tests benchmarks examples docs/_ext
	$(BIN)/ruff format --check asignal tests benchmarks examples docs/_ext

# tests/typing/user_code.py is code as a user writes it: both checkers, strict.
# pyright comes from PyPI with its own Node.js (pyright[nodejs]); it finds the
# virtualenv's packages through the python first on PATH.
typecheck: $(STAMP)
	$(BIN)/mypy --strict asignal tests/typing docs/_ext/rst_docstrings.py
	PATH="$(abspath $(BIN)):$$PATH" PYTHONPATH="$(CURDIR)" $(BIN)/pyright tests/typing

verifytypes: $(STAMP)
	$(BIN)/python tests/typing/verifytypes.py --min $(VERIFYTYPES_MIN)

# Every test, the slow ones too (building and installing the package).
pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck verifytypes pytest docs

demo: $(STAMP)
	$(BIN)/python -m examples.demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Faults under load at full size (a few minutes); tests/test_faults.py is the bounded one.
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) site dist .pytest_cache .mypy_cache .ruff_cache
