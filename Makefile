# Two entry points for a newcomer: `make serve` and `make test`. Both install into .venv first.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PORT    ?= 3000
HOST    ?= 127.0.0.1
export OMP_NUM_THREADS ?= 2
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: install browser qemu serve test test-fast lint bench soak clean

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

# qemu-user runs `mudraj predict` as an AVX2-only CPU (tests/serving/test_cpu_consistency.py); installed like chromium.
qemu:
	@if ! command -v qemu-x86_64 >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null; \
	  else echo "qemu-user missing: the AVX2 consistency test will be skipped"; fi; fi

test: install browser qemu
	$(BIN)/python -m pytest -q

# The contributor's loop: no training, no server, no Ray, no browser, no emulation (tests marked slow are left out).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# Benchmarks of the shipped model (minutes; results in bench/results/, figures in docs/img/, write-up in
# docs/benchmarks.md, each with the command that made it). Those that need a training run of your own
# (bench/throughput.py, bench/model_types.py --eager, bench/quant_consistency.py) are listed there.
bench: install
	@test -f build/corpus/test.jsonl || $(BIN)/mudraj corpus build
	$(BIN)/python bench/session_options.py --bundle models/mudraj-e5-small --data build/corpus/test.jsonl
	$(BIN)/python bench/archive_report.py
	$(BIN)/python bench/http_load.py --model models/mudraj-e5-small
	$(BIN)/python bench/plots.py

soak: install
	$(BIN)/python bench/http_load.py --model models/mudraj-e5-small --soak 600 --concurrency 16
	$(BIN)/python bench/plots.py

clean:
	rm -rf runs build .pytest_cache .hypothesis
