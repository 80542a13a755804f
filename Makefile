# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned, so the CPU build is used and nothing later pulls a CUDA one.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	NSML=$(CURDIR)/$(BIN)/nsml bash examples/demo.sh

test: install
	bash tests/run.sh

bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/report_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache test-output
