# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv when it is missing and install the project into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

# Verilator's FST wave writer (the virtual board's --fst) needs the lz4 headers: Debian's
# liblz4-dev, installed here when missing and apt-get can run (as root, as on CI).
LZ4_H := /usr/include/lz4.h

$(STAMP): pyproject.toml
	@test -f $(LZ4_H) || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	  && (apt-get install -y -qq liblz4-dev >/dev/null 2>&1 \
	      || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq liblz4-dev >/dev/null 2>&1)); } \
	  || echo "note: liblz4-dev is missing; the virtual board's FST wave dumps will not build"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/spikeforge demo

# the 15 slowest tests at the end of the log: where CI's time goes
test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n 2 -q --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/golden_speed.py --json build/bench/golden_speed.json

clean:
	rm -rf build .pytest_cache
