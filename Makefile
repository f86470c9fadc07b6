# Quick start: `make run` (HTTP server on 127.0.0.1) and `make test` (the whole suite, after installing
# what it needs beyond Python: tests/deps.py).
# Both bootstrap .venv on first use: uv when it is installed; otherwise python3 -m venv, then uv installed into
# .venv installs the rest (about 15 s against pip's 80 s here), with pip alone if that fails. A Python without
# ensurepip (Debian's python3 without python3-venv) gets a venv without pip that its own pip fills, or, as root with
# apt-get, python3.X-venv installed; failing both, one line says what to install.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed-stamp

# Python writes its bytecode caches (into .venv and the gitignored __pycache__ folders), as it does by default.
# Some machine images set PYTHONDONTWRITEBYTECODE=1; then every start of the server, and every test that starts
# one, compiles each module it imports again: 3.4-4.5 s a start here instead of 1.5-2 s.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test install bench fuzz clean

$(STAMP): pyproject.toml
	@if command -v uv >/dev/null 2>&1; then \
		UV_PYTHON_DOWNLOADS=never uv venv --quiet --allow-existing --python $(PYTHON) $(VENV) && \
		uv pip install --quiet --python $(BIN)/python -e '.[test]'; \
	else \
		if ! $(PYTHON) -m venv $(VENV); then \
			rm -rf $(VENV); \
			pkg=$$($(PYTHON) -c 'import sys; print("python%d.%d-venv" % sys.version_info[:2])'); \
			if $(PYTHON) -m pip --python $(PYTHON) --version >/dev/null 2>&1; then \
				echo "make: a venv without pip, filled by this Python's own pip" >&2; \
				$(PYTHON) -m venv --without-pip $(VENV) || exit 1; \
			elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
					[ "$$($(PYTHON) -c 'import sys; print(sys.base_prefix)')" = /usr ]; then \
				echo "make: installing $$pkg through apt-get (running as root)" >&2; \
				apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null && \
				$(PYTHON) -m venv $(VENV) || exit 1; \
			else \
				echo "make: $(PYTHON) cannot make $(VENV) (no ensurepip, no pip): install uv, or $$pkg" \
					"(sudo apt-get install -y $$pkg), then run make again" >&2; \
				exit 1; \
			fi; \
		fi; \
		if [ -x $(BIN)/pip ]; then pip="$(BIN)/python -m pip"; else pip="$(PYTHON) -m pip --python $(BIN)/python"; fi; \
		{ { $$pip install --quiet --disable-pip-version-check uv && \
		    $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test]'; } || \
		  $$pip install --quiet --disable-pip-version-check -e '.[test]'; }; \
	fi
	@touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/blueprint-mcp serve --transport streamable-http --host $(HOST) --port $(PORT)

# tests/deps.py first: as root it installs PostgreSQL and pgTAP through apt when missing; otherwise it says
# in one line what to install (those tests then skip, or fail under CI=true).
test: $(STAMP)
	$(BIN)/python tests/deps.py
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# Property tests with many more examples and a new seed every run, each blueprint printed as tried.
# FUZZ_EXAMPLES=1000 make fuzz for a longer run; a failure prints its minimal blueprint.
FUZZ_EXAMPLES ?= 200
fuzz: $(STAMP)
	BLUEPRINT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) BLUEPRINT_FUZZ_RANDOM=1 BLUEPRINT_FUZZ_PRINT=1 \
		$(BIN)/python -m pytest tests/test_properties.py -s -q \
		--hypothesis-show-statistics --hypothesis-seed=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')

# Writes BENCHMARKS.md: tool speed and answer sizes, cold start, then each PostgreSQL benchmark's table.
# BENCH_ROWS=1000000 make bench for the policy benchmark at a million rows (default 100,000).
BENCH_ROWS ?= 100000
BENCH_OUT ?= BENCHMARKS.md
bench: $(STAMP)
	$(BIN)/python bench/tools_speed.py --out $(BENCH_OUT) > /dev/null
	@for b in "policy_speed.py --rows $(BENCH_ROWS)" "request_speed.py --rows $(BENCH_ROWS)" "access_speed.py" \
			"verify_speed.py" "audit_speed.py"; do \
		printf '\n## bench/%s\n\n```\n' "$$b" >> $(BENCH_OUT); \
		$(BIN)/python bench/$$b >> $(BENCH_OUT) || exit 1; \
		printf '```\n' >> $(BENCH_OUT); \
	done
	@cat $(BENCH_OUT)

clean:
	rm -rf $(VENV) build dist .pytest_cache
