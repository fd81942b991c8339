# CivicVault: `make serve` and `make test` work on a machine with Python 3.11 and make.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install serve shell test lint bench clean contracts node-deps browser

$(STAMP): setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "CivicVault needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

install: $(STAMP)

# `make serve PORT=8081 HOST=0.0.0.0` serves elsewhere. Set with `=`, so that only the make
# command line changes them: some shells export HOST as the machine's name.
HOST = 127.0.0.1
PORT = 8080

serve: $(STAMP)
	$(BIN)/civicvault init
	$(BIN)/civicvault demo --if-new
	$(BIN)/civicvault serve --host '$(HOST)' --port '$(PORT)'

# An interactive bash with the virtualenv active (`civicvault` on the PATH); `exit` leaves it.
shell: $(STAMP)
	@printf '%s\n' '[ -f ~/.bashrc ] && . ~/.bashrc' '. "$(CURDIR)/$(BIN)/activate"' \
		'echo "CivicVault shell: civicvault is on the PATH; exit to leave."' > $(VENV)/shellrc
	@exec bash --init-file $(VENV)/shellrc -i

# The suite runs on every core (pytest-xdist; a test file stays on one worker, so a file's module
# fixtures, such as a browser journey's served vault, start once). PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= auto
test: lint node-deps browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The browser tests drive Debian's Chromium (Playwright never downloads one here): installed with
# apt when it is missing and we are root; otherwise those tests are skipped with one line.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# Lint and types, before the suite: ruff (pyproject.toml) and mypy, strict for crypto/.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict crypto
	$(BIN)/mypy vault api

# Anchoring: solc-js and ganache, pinned in package-lock.json. Installed when npm
# exists (the anchoring tests start ganache; without Node they are skipped).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node-deps:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory node_modules/.package-lock.json; \
	else echo "npm not found: the anchoring tests will be skipped"; fi

# Rebuild vault/anchoring/CheckpointAnchor.json from contracts/CheckpointAnchor.sol.
contracts: node_modules/.package-lock.json
	node contracts/compile.js

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench

# The HTTP benchmark alone (bench/http.py): the vault against a plaintext API, a few minutes. PostgreSQL
# shapes need CIVICVAULT_BENCH_POSTGRES_URL (a database where it may create and drop schemas).
.PHONY: bench-http
bench-http: $(STAMP)
	$(BIN)/python -m bench.http

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info node_modules
