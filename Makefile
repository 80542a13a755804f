# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench clean sandbox browser postgres java

# bubblewrap isolates participant code; the platform runs without it (and says so) where
# it cannot be installed, but refuses to evaluate submissions unsandboxed by default.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo apt-get install -y -qq bubblewrap >/dev/null; \
	  else echo "note: install bubblewrap (apt-get install bubblewrap) to sandbox sessions"; fi; }

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned, so the CPU build is used and nothing later pulls a CUDA one.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,korean,ray]"
	touch $(STAMP)

install: $(STAMP) sandbox

# The store tests also run against a real PostgreSQL server started in a temporary folder.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo apt-get install -y -qq postgresql >/dev/null; \
	  else echo "note: install postgresql to run the PostgreSQL store tests"; fi; }

# The web UI tests drive Debian's Chromium (never a downloaded browser), with Korean fonts.
browser:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else echo "note: install chromium and fonts-noto-cjk to run the browser tests"; fi; }

# Okt (KoNLPy) runs on the JVM.
java:
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	    sudo apt-get update -qq && sudo apt-get install -y -qq default-jre-headless >/dev/null; \
	  else echo "note: install a Java runtime (default-jre-headless) to use the Okt tokenizer"; fi; }

demo: install
	NSML=$(CURDIR)/$(BIN)/nsml bash examples/demo.sh

test: install browser postgres java
	bash tests/run.sh

bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/report_throughput.py
	$(BIN)/python benchmarks/submit_overhead.py
	$(BIN)/python benchmarks/cache_reuse.py
	$(BIN)/python benchmarks/scheduler.py
	$(BIN)/python benchmarks/limits_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache test-output
