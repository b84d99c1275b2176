# Everyday commands.  PYTHON picks the interpreter: make test PYTHON=python3.13
PYTHON ?= python3

.PHONY: test bench bench-quick check-c lint clean

# Install fastsync (compiling the extension) with its test tools, then run the suite.
test:
	$(PYTHON) -m pip install --quiet --no-cache-dir ".[test]"
	$(PYTHON) -m pytest

# Install fastsync and compare it with threading.
bench:
	$(PYTHON) -m pip install --quiet --no-cache-dir .
	$(PYTHON) bench/run.py

bench-quick:
	$(PYTHON) -m pip install --quiet --no-cache-dir .
	$(PYTHON) bench/run.py --quick

# The C layer's own tests (see csrc/Makefile for PLATFORM, SANITIZE, RUNNER).
check-c:
	$(MAKE) -C csrc check

lint:
	$(PYTHON) -m ruff check src tests bench setup.py
	MYPYPATH=src $(PYTHON) -m mypy src/fastsync tests/check_types.py

clean:
	rm -rf build dist src/*.egg-info src/fastsync/_compiled.c src/fastsync/*.so src/fastsync/*.html
	-$(MAKE) -C csrc clean
