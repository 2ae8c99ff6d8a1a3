# The two commands of the README:
#   make run    compile a GPT-2 decoder block end to end with its verification
#   make test   run every test (pytest, filecheck through lit, tutorials)
#   make mutation  mutation testing of the core modules (slow, not part of `make test`):
#                  the score per module and the surviving mutants; MODULES="timing cli" picks some,
#                  SAMPLE=0 judges every mutant instead of 100 per module (hours)
#   make survivors known bugs that once passed every test, put back one at a time: each must be
#                  killed by its named test (minutes; BUGS="converter_guard" picks some)
# They set themselves up from nothing: apt packages (graphviz draws the graphs, headless chromium
# checks report.html), a venv, pinned installs (with the `cluster` extra: Ray for `streamdsl build`).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
APT    := graphviz chromium
PYTEST_ARGS ?= -n 2

.PHONY: run test setup clean mutation survivors

SAMPLE ?= 100

run: $(STAMP)
	$(BIN)/streamdsl compile gpt2 --size tiny --max-context 64 --csim

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(STAMP)

mutation: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[mutation]'
	nice -n 19 $(BIN)/python mutation/run.py --sample $(SAMPLE) $(MODULES)

survivors: $(STAMP)
	nice -n 10 $(BIN)/python mutation/survivors.py $(BUGS)

$(STAMP): pyproject.toml
	@command -v dot >/dev/null && command -v chromium >/dev/null || { \
	  echo "installing apt packages: $(APT)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(APT) >/dev/null; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,cluster]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
