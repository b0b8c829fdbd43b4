# Two commands for people: `make demo` and `make test`. Both go through `make setup`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install dependencies only when pyproject.toml changes (keeps repeat runs quick).
STAMP  := $(VENV)/.deps-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: setup install demo test espeak clean

setup: $(STAMP) espeak install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check ".[test]"
	rm -f $(VENV)/.deps-* && touch $@

# The Debian package espeak-ng renders the corpus and the example audio.
espeak:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  echo "installing espeak-ng (Debian package)"; \
	  (apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null) || \
	  { echo "could not install espeak-ng: run 'sudo apt-get install espeak-ng'"; exit 1; }; }

# Always reinstall dragoman itself (not editable) so tests run against the installed package.
install: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall .

demo: setup
	$(BIN)/python examples/demo.py

test: setup
	$(BIN)/dragoman graph check graphs/*.yaml
	cd tests && ../$(BIN)/python -m pytest -q -n 2 --dist loadfile .

clean:
	rm -rf $(VENV) build *.egg-info
