# The two commands of the README:
#   make run    compile the built-in default end to end with its verification
#   make test   run every test (pytest, filecheck through lit, tutorials)
# Both set themselves up from nothing: apt packages, a venv, pinned installs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
APT    := graphviz
PYTEST_ARGS ?= -n 2

.PHONY: run test setup clean

run: $(STAMP)
	$(BIN)/streamdsl compile --csim

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v dot >/dev/null || { \
	  echo "installing apt packages: $(APT)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(APT) >/dev/null; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
