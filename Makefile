# Two entry points for a newcomer: `make serve` and `make test`. Both install into .venv first.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PORT    ?= 3000
HOST    ?= 127.0.0.1
export OMP_NUM_THREADS ?= 2
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: install serve test bench clean

$(BIN)/mudraj: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all]'
	@touch $@

install: $(BIN)/mudraj

serve: install
	$(BIN)/mudraj serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf runs build .pytest_cache .hypothesis
