# Two entry points for a newcomer: `make serve` and `make test`. Both install into .venv first.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PORT    ?= 3000
HOST    ?= 127.0.0.1
export OMP_NUM_THREADS ?= 2
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: install browser serve test bench clean

$(BIN)/mudraj: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all]'
	@touch $@

install: $(BIN)/mudraj

serve: install
	$(BIN)/mudraj serve --host $(HOST) --port $(PORT)

# The browser test drives Debian's chromium; installed when we can (root), skipped with a reason otherwise.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium/chromedriver missing: the browser test will be skipped"; fi; fi

test: install browser
	$(BIN)/python -m pytest -q

clean:
	rm -rf runs build .pytest_cache .hypothesis
