# The README's commands. Each target creates .venv and installs what it needs first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
# pip's notes about unreachable extra index folders on some machines are noise, not errors.
PIP_QUIET := grep -v "is ignored: it is neither a file nor a directory" || true

.PHONY: demo test bench integration install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | { $(PIP_QUIET); }
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sleuth demo run $(DEMO_ARGS)

# The browser tests drive Debian's chromium; ensure-chromium installs it when it can (root and
# apt-get) and otherwise says that those tests will skip.
test: $(STAMP)
	scripts/ensure-chromium
	$(BIN)/python -m pytest -q $(TEST_ARGS)

# Against real services this target sets up itself (Airflow 3 in its own venv, Prometheus).
integration: $(STAMP)
	$(BIN)/python -m pytest -q -m integration tests/integration $(TEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) build *.egg-info
