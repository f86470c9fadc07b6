# Quick start: `make run` (HTTP server on 127.0.0.1) and `make test` (the whole suite).
# Both bootstrap .venv on first use: uv when it is installed, python3 -m venv + pip otherwise.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install bench clean

$(STAMP): pyproject.toml
	@if command -v uv >/dev/null 2>&1; then \
		UV_PYTHON_DOWNLOADS=never uv venv --quiet --allow-existing --python $(PYTHON) $(VENV) && \
		uv pip install --quiet --python $(BIN)/python -e '.[test]'; \
	else \
		$(PYTHON) -m venv $(VENV) && \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'; \
	fi
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/blueprint-mcp serve --transport streamable-http --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/policy_speed.py
	$(BIN)/python bench/access_speed.py
	$(BIN)/python bench/verify_speed.py
	$(BIN)/python bench/audit_speed.py

clean:
	rm -rf $(VENV) build dist .pytest_cache
