# The README's commands. Each target creates .venv and installs what it needs first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DBT_SEND_ANONYMOUS_USAGE_STATS := False

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sleuth demo run $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(TEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) build *.egg-info
